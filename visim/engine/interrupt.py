"""Ctrl+C during training: the first SIGINT asks for a clean stop, the second aborts at once."""

from __future__ import annotations

import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after the engine saved its state in answer to a SIGINT (exit code 130)."""


class GracefulInterrupt:
    """A context manager that turns the first SIGINT into a flag the training loop polls."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl+C: the user means it
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nvisim: interrupt received, finishing the current batch and saving "
            "(press Ctrl+C again to abort at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
