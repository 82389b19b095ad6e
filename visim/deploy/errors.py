"""Errors of the export job; each is reported as one line by ``visim export`` (exit 1)."""

from __future__ import annotations

from visim.errors import VisimError


class ExportError(VisimError, RuntimeError):
    """A model, transform or file that cannot be exported, loaded or checked (exit 1)."""

    log_traceback = True


class MissingExtraError(ExportError):
    """An optional dependency of the export is not installed."""

    def __init__(self, what: str, modules: list[str]) -> None:
        super().__init__(f"{what} needs {', '.join(modules)}: pip install 'visim[export]'")
