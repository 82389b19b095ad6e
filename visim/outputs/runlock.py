"""One process at a time per run directory.

Two ``--resume auto`` of one run would both append epochs, checkpoints and event files to the
same directory. The first process writes ``<run_dir>/.lock`` (its pid, host and start time);
a second one is refused with one line naming the holder. A lock whose process is gone (a dead
pid on this host: kill -9, a crashed node restarted) is stale and taken over with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from visim.errors import EXIT_USAGE, VisimError

LOCK_NAME = ".lock"


class RunLockedError(VisimError):
    """Another live process holds the run directory (exit code 2)."""

    exit_code = EXIT_USAGE


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(run_dir):`` holds the directory for the block (a no-op for ``None``)."""

    def __init__(self, run_dir: str | Path | None) -> None:
        self.path = Path(run_dir) / LOCK_NAME if run_dir is not None else None
        self.record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self.held = False

    def __enter__(self) -> RunLock:
        if self.path is not None:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        for _ in range(3):  # a lock released between our two looks: try again
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is None:
                    continue
                if not self.is_stale(holder):
                    raise RunLockedError(
                        f"run directory {self.path.parent} is in use by pid {holder.get('pid')} on "
                        f"{holder.get('host')} (since {time.ctime(holder.get('started', 0))}); wait for "
                        f"it to finish, or delete {self.path} if that process no longer exists"
                    ) from None
                print(
                    f"visim: warning: taking over the stale lock of pid {holder.get('pid')} "
                    f"(no longer running) on {self.path.parent}",
                    file=sys.stderr,
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(self.record, handle)
            self.held = True
            return
        raise RunLockedError(f"could not lock run directory {self.path.parent}: another process keeps taking it")

    def holder(self) -> dict | None:
        """The lock's record; ``{}`` when unreadable (half written: treated as live), None when gone."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return record if isinstance(record, dict) else {}

    def is_stale(self, holder: dict) -> bool:
        pid = holder.get("pid")
        if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
            return False  # another machine's process: we cannot tell, so it is not ours to take
        return not alive(pid)

    def release(self) -> None:
        if self.held and self.holder() == self.record:
            self.path.unlink(missing_ok=True)
        self.held = False
