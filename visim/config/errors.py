"""Config errors: every problem found, one line each, ``<message> @ $.<path>``."""

from __future__ import annotations

import attrs

from visim.errors import EXIT_USAGE, VisimError


@attrs.frozen
class Problem:
    message: str
    path: str = "$"

    def __str__(self) -> str:
        return f"{self.message} @ {self.path}"


class ConfigError(VisimError, ValueError):
    """An invalid config. ``problems`` lists every problem found, each with its path."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def report(self, source: str = "config") -> str:
        n = len(self.problems)
        lines = [f"{source}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class InvalidParameterException(ConfigError):
    """A value breaks a validation rule.

    Paths are rooted at what was validated: ``$.epochs`` for an attrs field validator (the
    converter re-roots it at the field's place in the config), ``$.params.device`` for
    :func:`visim.config.rules.validate_params`.
    """


class ValidationException(ValueError):
    """A validation itself is malformed: an unknown rule, or a rule given missing or bad data.

    This is a mistake of whoever wrote the validation (schema, plugin), not of the config.
    """
