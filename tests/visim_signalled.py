"""Test-only: ``visim`` that does something to itself at one chosen moment of a run.

    python tests/visim_signalled.py WHEN ACTION visim-arguments...

WHEN is ``step=N`` (right after this process's N-th optimizer step) or ``write=NAME#K``
(inside the K-th atomic write of a file named NAME: its bytes are in the temporary file, not
yet renamed over NAME). ACTION is a signal this process sends itself (``SIGTERM``), several
in a row (``SIGINT,SIGINT``), or ``wait:PATH`` (create ``PATH.ready``, then wait until PATH
exists); ``ACTION@R`` does it only on torchrun rank R.

The reliability tests use it to stop a ``visim`` process at an exact point, with no sleeping
and no hook in visim itself: it patches visim's atomic writes and optimizer step before
``visim.cli.main`` runs. They call ``main(argv)`` in a child forked from the test process
(tests/helpers.py ``Forked``), which patches only that child.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path


def act(action: str) -> None:
    action, _, rank = action.partition("@")
    if rank and os.environ.get("RANK", "0") != rank:
        return
    if action.startswith("wait:"):
        go = Path(action.removeprefix("wait:"))
        Path(f"{go}.ready").write_text(str(os.getpid()))
        deadline = time.monotonic() + 300
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    for name in action.split(","):
        os.kill(os.getpid(), getattr(signal, name))


def at_step(n: int, action: str) -> None:
    from visim.engine.engine import VisualSimilarityEngine

    step = VisualSimilarityEngine.backward_step
    count = [0]

    def counted_step(self, loss):
        step(self, loss)
        count[0] += 1
        if count[0] == n:
            act(action)

    VisualSimilarityEngine.backward_step = counted_step


def at_write(name: str, k: int, action: str) -> None:
    import visim.outputs.atomic as atomic

    write = atomic.atomic_write
    count = [0]

    @contextmanager
    def watched_write(path, mode="wb"):
        with write(path, mode) as handle:
            yield handle
            if Path(path).name == name:
                count[0] += 1
                if count[0] == k:
                    handle.flush()  # the whole file is in the temporary: a kill now orphans it
                    act(action)

    atomic.atomic_write = watched_write  # write_text looks it up here at each call
    import visim.engine.checkpoint as checkpoint  # imported it by name: patch its copy too

    checkpoint.atomic_write = watched_write


def main(argv: list[str] | None = None) -> int:
    when, action, *argv = sys.argv[1:] if argv is None else argv
    kind, _, where = when.partition("=")
    if kind == "step":
        at_step(int(where), action)
    elif kind == "write":
        name, _, k = where.partition("#")
        at_write(name, int(k or 1), action)
    else:
        raise SystemExit(f"unknown moment {when!r}")
    from visim.cli import main as visim

    return visim(argv)


if __name__ == "__main__":
    sys.exit(main())
