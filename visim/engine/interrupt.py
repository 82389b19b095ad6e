"""Stopping a command cleanly: Ctrl+C, and the signals clusters send before they kill a job.

SIGINT (Ctrl+C), SIGTERM (what SLURM and Kubernetes send before SIGKILL) and SIGUSR1 (a common
preemption warning) end a command with exit code 128 + the signal's number (130, 143, 138)
and one line on stderr, never a traceback:

- outside training (:func:`stop_signals_raise`, installed by ``visim.cli.main``) a signal
  raises :class:`Interrupted` where the program is, like Ctrl+C; writes in flight are atomic,
  so they leave the previous file and no temporary behind;
- inside training (:class:`GracefulInterrupt`) the first signal only raises a flag that the
  loop polls after every step and every epoch; the engine then stops at a consistent state
  and raises :class:`TrainingInterrupted` saying where that state is. A second Ctrl+C aborts
  at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name)
)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupted(KeyboardInterrupt):
    """A stop signal ended the command; ``exit_code`` is 128 + the signal's number."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


class TrainingInterrupted(Interrupted):
    """Raised by the engine once it stopped at a consistent state in answer to a stop signal."""


# Whether the command is already stopping for a signal. A second SIGTERM (torchrun's, sent to
# every worker once one exits) must not cut short the clean-up and the line that says where
# the state is.
_stopping = False


def _raise_interrupted(signum, frame) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise Interrupted(f"stopped by {signal_name(signum)}", signum)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Inside, SIGTERM and SIGUSR1 raise :class:`Interrupted` as SIGINT raises KeyboardInterrupt
    (by default they would kill the process on the spot: no message, no cleanup), once."""
    global _stopping
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stopping = False
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in SIGNALS if signum != signal.SIGINT}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
            raise Interrupted("aborted by a second Ctrl+C; the checkpoints written before are kept", signum)
        if self.requested:
            return
        self.signum = signum
        if sys.stderr.isatty():  # someone is watching: say the stop is coming (a batch log gets one line, at the end)
            print(
                f"\nvisim: {signal_name(signum)} received, stopping after the current step "
                "(press Ctrl+C again to abort at once)",
                file=sys.stderr,
                flush=True,
            )

    def interrupted(self, message: str) -> TrainingInterrupted:
        """The exception to raise once the state is consistent, carrying the signal's exit code."""
        global _stopping
        _stopping = True
        return TrainingInterrupted(message, self.signum or signal.SIGINT)

    def __enter__(self) -> GracefulInterrupt:
        self.signum = None  # a new training session (a caller may train again after a stop)
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
