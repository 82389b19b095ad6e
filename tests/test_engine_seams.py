"""The engine's seams: what it is given, what it creates, what it writes to run.log."""

from __future__ import annotations

from tests.helpers import tiny_config
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.engine.engine import VisualSimilarityEngine
from visim.outputs.report import format_results


def evaluator(tmp_path, run_dir, quiet=True):
    return build_engine(config_from_dict(tiny_config(tmp_path)), train=False, run_dir=run_dir, quiet=quiet)


def test_every_attribute_exists_from_the_constructor_on(tmp_path):
    engine = evaluator(tmp_path, tmp_path / "run")
    before = set(vars(engine))
    assert engine.last_result is None and engine.last_query is None and engine.last_gallery is None
    engine.test()
    engine.close()
    assert set(vars(engine)) == before
    assert len(engine.last_query) == len(engine.query_loader.dataset)
    assert len(engine.last_gallery) == len(engine.gallery_loader.dataset)


def test_loaders_are_given_to_the_constructor_and_named_query_and_gallery(tmp_path):
    engine = evaluator(tmp_path, None)
    assert engine.loaders is not None and engine.loaders.query is engine.query_loader
    assert engine.test_dl is engine.query_loader and engine.val_dl is engine.gallery_loader
    engine.test_dl, engine.val_dl = engine.gallery_loader, engine.query_loader  # the original's names stay writable
    assert engine.query_loader is engine.loaders.gallery and engine.gallery_loader is engine.loaders.query
    assert not hasattr(engine, "params_train") and not hasattr(engine, "params_test")


def test_run_log_holds_what_was_printed_and_only_this_runs_lines(tmp_path, capsys):
    first = evaluator(tmp_path, tmp_path / "a", quiet=False)
    second = evaluator(tmp_path, tmp_path / "b", quiet=False)
    results = first.test()
    second.log("only b")
    first.close()
    second.close()
    printed = capsys.readouterr().out
    assert format_results(results) + "\n" in printed and "only b\n" in printed
    assert (tmp_path / "a" / "run.log").read_text() == format_results(results) + "\n"
    assert (tmp_path / "b" / "run.log").read_text() == "only b\n"
    first.log("after close")  # printed, no longer recorded
    assert "after close" not in (tmp_path / "a" / "run.log").read_text()


def test_the_configs_threads_set_torchs_thread_count_and_null_leaves_it(tmp_path, monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)  # this test process keeps its one
    for threads in (None, 3):
        build_engine(config_from_dict({**tiny_config(tmp_path), "threads": threads}), train=False).close()
    engine = build_engine(config_from_dict(tiny_config(tmp_path)), train=False)
    VisualSimilarityEngine({**tiny_config(tmp_path), "threads": 2}, engine.model, engine.query_loader, engine.gallery_loader)
    assert calls == [3, 2]  # also when the engine is constructed directly, as the original API does
