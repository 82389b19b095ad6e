"""Stopping a run cleanly: Ctrl+C, and the signals clusters send before they kill a job.

The first SIGINT, SIGTERM (what SLURM and Kubernetes send before SIGKILL) or SIGUSR1 (a common
preemption warning) becomes a flag the training loop polls; the loop then saves and raises
:class:`TrainingInterrupted`, whose exit code says which signal stopped the run (128 + its
number: 130 for SIGINT, 143 for SIGTERM). A second SIGINT aborts at once.
"""

from __future__ import annotations

import signal
import sys
import threading

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after the engine saved its state in answer to a stop signal."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


class GracefulInterrupt:
    """A context manager that turns the first stop signal into a flag the training loop polls."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @requested.setter
    def requested(self, value: bool) -> None:  # tests and callers may raise the flag by hand
        self.signum = signal.SIGINT if value else None

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:  # Ctrl+C again: the user means it
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        if self.requested:
            return
        self.signum = signum
        print(
            f"\nvisim: {signal.Signals(signum).name} received, finishing the current step and saving "
            "(press Ctrl+C again to abort at once)",
            file=sys.stderr,
            flush=True,
        )

    def interrupted(self, message: str) -> TrainingInterrupted:
        """The exception to raise once the state is saved, carrying the signal's exit code."""
        return TrainingInterrupted(message, self.signum or signal.SIGINT)

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
