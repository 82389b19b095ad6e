"""visim.outputs.atomic: every file a run writes is all or nothing."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import visim
from visim.outputs.atomic import atomic_write, remove_orphans, write_text


def test_write_text_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "new" / "results.json"  # missing folders are made
    write_text(target, "first\n")
    write_text(target, "second ü\n")
    assert target.read_text(encoding="utf-8") == "second ü\n"
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_write_keeps_the_previous_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "config.yaml"
    write_text(target, "name: before\n")
    with pytest.raises(type(error)):
        with atomic_write(target, "w") as handle:
            handle.write("name: half")
            raise error
    assert target.read_text() == "name: before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_remove_orphans_deletes_only_what_a_killed_atomic_write_leaves(tmp_path):
    write_text(tmp_path / "checkpoints" / "last.pt", "weights")
    orphan = tmp_path / "checkpoints" / f".last.pt.{os.getpid()}.0123abcd.tmp"  # atomic_write's naming
    orphan.write_text("weights of a write killed before its rename")
    others = [".results.json.tmp", "notes.tmp", ".x.12.nothex!.tmp", "results.json"]
    for name in others:
        (tmp_path / name).write_text("keep")
    assert remove_orphans(tmp_path) == [orphan]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(["last.pt", *others])


def test_the_orphan_pattern_is_the_name_atomic_write_gives_its_temporaries(tmp_path, monkeypatch):
    import visim.outputs.atomic as atomic

    renamed = []
    monkeypatch.setattr(atomic.os, "replace", lambda source, target: renamed.append(Path(source).name))
    write_text(tmp_path / "results.json", "{}")
    (name,) = renamed
    assert atomic.TEMPORARY.fullmatch(name) and name.startswith(".results.json.")


def test_binary_mode_and_permissions_follow_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "grid.png") as handle:
            handle.write(b"\x89PNG")
    finally:
        os.umask(umask)
    assert (tmp_path / "grid.png").read_bytes() == b"\x89PNG"
    assert (tmp_path / "grid.png").stat().st_mode & 0o777 == 0o644  # as open() makes it, not 0o600


def test_only_text_or_binary_writes():
    with pytest.raises(ValueError, match="mode"):
        atomic_write("x", "a").__enter__()  # refused before any file is opened


def direct_writes(source: str) -> list[str]:
    """Calls that write a file other than through atomic_write: Path.write_text/bytes,
    os.replace/rename, open() for writing."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("write_text", "write_bytes", "replace", "rename") and isinstance(func, ast.Attribute):
            owner = getattr(func.value, "id", "")
            if name.startswith("write") or owner == "os":
                found.append(f"{name} (line {node.lineno})")
        elif name == "open" and isinstance(func, ast.Name):
            modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
            if any(set(str(m)) & set("wax+") for m in modes):
                found.append(f"open (line {node.lineno})")
    return found


def test_every_file_visim_writes_goes_through_atomic_write():
    package = Path(visim.__file__).parent
    offenders = {
        str(path.relative_to(package)): hits
        for path in sorted(package.rglob("*.py"))
        if path.name != "atomic.py" and (hits := direct_writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_scan_sees_a_direct_write():
    assert direct_writes("p.write_text('x')\nos.replace(a, b)\nopen(p, 'a')\nopen(p)") == [
        "write_text (line 1)",
        "replace (line 2)",
        "open (line 3)",
    ]
