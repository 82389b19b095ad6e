"""The demo table in README.md and the docs is what ``make demo`` prints at its seed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.helpers import run_forked
from visim.cli import main

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("demo_figures", ROOT / "docs" / "demo_figures.py")
demo_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_figures)

PRINTED = """\
Results (%)
Rank-1  Rank-5  Rank-10    mAP   mINP  valid  skipped
------  ------  -------  -----  -----  -----  -------
 80.11   93.92    95.58  28.31  14.68    181        0
Results (epoch 2, %)
Rank-1  Rank-5  Rank-10    mAP   mINP  valid  skipped
------  ------  -------  -----  -----  -----  -------
 87.85   97.24    98.90  38.78  14.98    181        0
"""


def test_the_first_and_last_printed_tables_are_before_and_after():
    before, after = demo_figures.before_and_after(PRINTED)
    assert (before["Rank-1"], before["mAP"]) == ("80.11", "28.31")
    assert (after["Rank-5"], after["mINP"]) == ("97.24", "14.98")
    with pytest.raises(ValueError, match="found 1"):
        demo_figures.before_and_after(PRINTED.split("Results (epoch")[0])


def test_the_readme_block_is_replaced_in_place():
    text = "intro\n<!-- demo-table:start -->\nold\n<!-- demo-table:end -->\noutro\n"
    assert demo_figures.with_readme_table(text, "new") == text.replace("old", "new")


@pytest.mark.slow
def test_readme_and_docs_tables_equal_what_the_demo_prints(tmp_path, monkeypatch):
    # The demo's own process, forked from this one (whose torch already runs one thread, the
    # demo config's count): `make demo` less the seconds of a second start-up of torch.
    monkeypatch.chdir(ROOT)  # the demo's config path is relative, as in the Makefile
    demo = run_forked(main, demo_figures.demo_args(tmp_path))
    assert demo.returncode == 0, demo.stderr
    before, after = demo_figures.before_and_after(demo.stdout)
    readme = demo_figures.README.read_text()
    assert demo_figures.readme_table(readme) == demo_figures.markdown_table(before, after)
    assert demo_figures.DOCS_TABLE.read_text() == demo_figures.rst_table(before, after)
