"""visim's errors: each knows the one-line report a user sees and the exit code it means.

``visim.cli.main`` is the only place that turns them into stderr lines and exit codes; a
command raises, it never prints an error and returns a code. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class VisimError(Exception):
    """An error reported without a traceback: ``<prog>: error: <message>``, exit ``exit_code``.

    Subclasses set ``exit_code``: 2 for what the user asked wrongly (config, usage, a missing
    or unfitting checkpoint), 1 for a job that failed on its way (bad data, a full disk).
    """

    exit_code = EXIT_FAILURE
    prog = "visim"
    # Whether run.log keeps the traceback: for failures inside a job (a component's bug, bad
    # data), not for what the user asked wrongly.
    log_traceback = False

    def report(self, source: str | None = None) -> str:
        """The text for stderr; ``source`` names the config the command read, if any."""
        return f"{self.prog}: error: {self}"


class UsageError(VisimError):
    """The command was asked something it cannot do (an option, a missing config section)."""

    exit_code = EXIT_USAGE


class JobFailed(VisimError):
    """A job stopped on something outside visim: bad data, missing files, a diverging loss."""

    log_traceback = True

    @classmethod
    def of(cls, exc: BaseException) -> JobFailed:
        return cls(f"{type(exc).__name__}: {exc}")


class TrainingDiverged(VisimError, FloatingPointError):
    """The training loss became NaN or infinite: the run stops (exit 1), its last good
    checkpoint kept. The message names epoch, step, the last finite loss and what to try."""


@contextmanager
def job_failures() -> Iterator[None]:
    """Inside, an OSError, ValueError or RuntimeError that is not visim's becomes a
    :class:`JobFailed` (exit 1) naming its type; visim's own errors pass unchanged."""
    try:
        yield
    except VisimError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise JobFailed.of(exc) from exc
