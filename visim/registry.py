"""Name -> component lookup, one registry per kind, with provenance and collision rules.

This module knows nothing of torch, of the plugin manager or of the config layer: it stores
what plugins register and resolves the names a config uses. Turning a params mapping into a
params instance is the job of the ``structure`` function the plugin loader gives each component
(the config layer's strict structurer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from visim.errors import EXIT_USAGE, VisimError
from visim.suggest import close_matches, suggestion

KINDS = (
    "metrics",
    "models",
    "losses",
    "datasets",
    "optimizers",
    "schedulers",
    "samplers",
    "transforms",
    "rerankers",
    "indexes",
)
SINGULAR = {
    "metrics": "metric",
    "models": "model",
    "losses": "loss",
    "datasets": "dataset",
    "optimizers": "optimizer",
    "schedulers": "scheduler",
    "samplers": "sampler",
    "transforms": "transform",
    "rerankers": "reranker",
    "indexes": "index",
}
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
# Aliases may also be the original engine's CamelCase names (``EuclideanDistance``).
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class ComponentError(VisimError):
    """Base class of registry errors (the CLI exits 2: a config or plugin names them wrongly)."""

    exit_code = EXIT_USAGE


class RegistrationError(ComponentError, ValueError):
    """A plugin called ``register`` with something invalid, or collided with a built-in."""


class UnknownComponentError(ComponentError, LookupError):
    """No component of that kind has that name."""

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


class AmbiguousComponentError(ComponentError, LookupError):
    """Several external plugins registered the same name."""

    def __str__(self) -> str:
        return self.args[0]


def normalize_kind(kind: str) -> str:
    """``metric`` / ``Metrics`` -> ``metrics``."""
    key = kind.strip().lower()
    for plural, singular in SINGULAR.items():
        if key in (plural, singular):
            return plural
    raise UnknownComponentError(f"unknown component kind {kind!r}; choose one of {', '.join(KINDS)}")


def canonical_dist(name: str) -> str:
    """PEP 503 form, so ``visim_foo``, ``Visim.Foo`` and ``visim-foo`` name one distribution."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def normalize_name(name: Any) -> str:
    """Forgive what hand-written configs and shells add: quotes, commas, spaces, case."""
    text = str(name).strip().strip(",").strip().strip("'\"").strip()
    return text.lower()


@attrs.frozen
class NoParams:
    """No parameters (the params class of a component registered without one)."""


def params_or_none(params: type | None) -> type:
    return NoParams if params is None else params


@attrs.frozen
class Component:
    """A registered, buildable thing: ``factory(params_instance, **context)``."""

    name: str
    kind: str
    factory: Callable[..., Any] = attrs.field(repr=False)
    params: type = attrs.field(default=None, converter=params_or_none, repr=False)
    aliases: tuple[str, ...] = ()
    doc: str | None = attrs.field(default=None, repr=False)
    plugin: str = ""
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    # structure(mapping, params_class, path) -> params instance; errors carry their paths.
    structure: Callable[[Any, type, str], Any] | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def summary(self) -> str:
        """First line of the doc (or of the factory's docstring)."""
        text = self.doc or self.factory.__doc__ or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}:{self.name}" if self.distribution else self.name

    def make_params(self, params: Any = None, path: str = "$") -> Any:
        """Turn ``None`` (defaults), a dict (validated as in a config) or an instance into params."""
        if isinstance(params, self.params):
            return params
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise TypeError(
                f"{SINGULAR[self.kind]} {self.name!r} takes a {self.params.__name__} "
                f"instance or a mapping, not {type(params).__name__}"
            )
        if self.structure is None:  # a component made by hand: the params class checks itself
            return self.params(**params)
        return self.structure(dict(params), self.params, path)

    def build(self, params: Any = None, /, **context: Any) -> Any:
        """Build the component. ``params`` is an instance, a plain dict, or None for defaults."""
        return self.factory(self.make_params(params), **context)


def check_registration(kind: str, name: Any, factory: Any, params: Any, aliases: Any) -> None:
    """Everything ``register()`` promises to reject, with a message a plugin author can act on."""
    what = SINGULAR[kind]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RegistrationError(f"invalid {what} name {name!r}: must match {NAME_RE.pattern}")
    if not callable(factory):
        raise RegistrationError(f"{what} {name!r}: factory must be callable, got {factory!r}")
    if params is None:  # a component without parameters
        return check_aliases(what, name, aliases)
    if not (isinstance(params, type) and attrs.has(params)):
        raise RegistrationError(f"{what} {name!r}: params must be an attrs class, got {params!r}")
    if "name" in attrs.fields_dict(params):
        raise RegistrationError(
            f"{what} {name!r}: params class {params.__name__} may not have a field called 'name' "
            "(a config uses 'name' to pick the component)"
        )
    check_aliases(what, name, aliases)


def check_aliases(what: str, name: str, aliases: Any) -> None:
    if isinstance(aliases, str) or not all(isinstance(a, str) and ALIAS_RE.match(a) for a in aliases):
        raise RegistrationError(f"{what} {name!r}: aliases must be a tuple of names, got {aliases!r}")


class Registry:
    """The components of one kind. Lookups ignore case; ``dist:name`` picks a distribution."""

    def __init__(self, kind: str) -> None:
        self.kind = normalize_kind(kind)
        self._by_key: dict[str, list[Component]] = {}
        self._components: list[Component] = []

    @property
    def what(self) -> str:
        return SINGULAR[self.kind]

    def keys_of(self, component: Component) -> list[str]:
        return list(dict.fromkeys(k.lower() for k in (component.name, *component.aliases)))

    def check(self, component: Component) -> None:
        """Raise RegistrationError if adding ``component`` would shadow a built-in."""
        for key in self.keys_of(component):
            for other in self._by_key.get(key, []):
                if other.plugin == component.plugin:
                    raise RegistrationError(
                        f"{self.what} {key!r} registered twice by plugin {component.plugin!r}"
                    )
                if other.builtin:
                    raise RegistrationError(
                        f"{self.what} {key!r} is built into visim; distribution "
                        f"{component.distribution or component.plugin!r} may not shadow it"
                    )
                if component.distribution and other.distribution == component.distribution:
                    # 'dist:name' could not tell these two apart.
                    raise RegistrationError(
                        f"{self.what} {key!r} is already registered by plugin {other.plugin!r} "
                        f"of the same distribution {component.distribution!r}"
                    )

    def add(self, component: Component) -> None:
        self.check(component)
        self._components.append(component)
        for key in self.keys_of(component):
            self._by_key.setdefault(key, []).append(component)

    def __iter__(self) -> Iterator[Component]:
        return iter(sorted(self._components, key=lambda c: (c.name, c.distribution or "")))

    def __len__(self) -> int:
        return len(self._components)

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)
        except ComponentError:
            return False
        return True

    def names(self) -> list[str]:
        """The canonical names, sorted (aliases not included)."""
        return sorted({c.name for c in self._components})

    def get(self, name: Any) -> Component:
        """The component called ``name`` (or an alias; any case; ``dist:name`` picks one).

        Raises :class:`UnknownComponentError` (with suggestions) or
        :class:`AmbiguousComponentError` (when several distributions registered the name).
        """
        key = normalize_name(name)
        dist = None
        if ":" in key:
            dist, key = (part.strip() for part in key.split(":", 1))
        matches = self._by_key.get(key, [])
        if dist is not None:
            by_dist = [c for c in matches if canonical_dist(c.distribution or "") == canonical_dist(dist)]
            if matches and not by_dist:
                offered = ", ".join(sorted(f"'{c.qualified_name}'" for c in matches))
                raise UnknownComponentError(
                    f"distribution {dist!r} registers no {self.what} {key!r}; "
                    f"it is offered as {offered}"
                )
            matches = by_dist
        if len(matches) == 1:
            return matches[0]
        if matches:
            options = ", ".join(f"'{c.qualified_name}'" for c in matches)
            raise AmbiguousComponentError(
                f"{self.what} {key!r} is registered by several plugins "
                f"({', '.join(sorted(str(c.distribution) for c in matches))}); "
                f"name one of {options}"
            )
        raise UnknownComponentError(self.unknown_message(name, key))

    def unknown_message(self, name: Any, key: str) -> str:
        close = close_matches(key, self._by_key)
        hint = suggestion(dict.fromkeys(self._by_key[k][0].name for k in close))
        return (
            f"unknown {self.what} {str(name).strip()!r}{hint} "
            f"(run 'visim components {self.kind}' to list them)"
        )


class Registries:
    """One :class:`Registry` per kind, as attributes (``registries.metrics``), plus rules."""

    def __init__(self) -> None:
        for kind in KINDS:
            setattr(self, kind, Registry(kind))
        # Named validation rules: name -> (check, unary, doc, plugin).
        self.rules: dict[str, Rule] = {}

    def __getitem__(self, kind: str) -> Registry:
        return getattr(self, normalize_kind(kind))

    def __iter__(self) -> Iterator[Registry]:
        return (getattr(self, kind) for kind in KINDS)


@attrs.frozen
class Rule:
    """A named validation rule: ``check(value)`` when unary, else ``check(value, data)``."""

    name: str
    check: Callable[..., bool] = attrs.field(repr=False)
    unary: bool = False
    doc: str | None = attrs.field(default=None, repr=False)
    plugin: str = ""
