"""The plugin manager: built-in plugin modules and ``visim`` entry points, loaded the same way.

Each plugin's hook implementations are called one plugin at a time and its registrations are
staged, then committed together: a plugin that raises, has a bad hook signature, misspells a
hook or registers something invalid is reported and left out whole, and the rest still loads.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from importlib import metadata
from typing import Any

import attrs
import pluggy

from visim import hookspecs
from visim.config.errors import ValidationException
from visim.config.rules import check_rule_names
from visim.errors import EXIT_USAGE, VisimError
from visim.registry import (
    KINDS,
    SINGULAR,
    Component,
    ComponentError,
    RegistrationError,
    Registries,
    Rule,
    canonical_dist,
    check_registration,
)

ENTRY_POINT_GROUP = "visim"
# Built-ins are ordinary plugins, registered through the same hooks as everyone else's.
DEFAULT_PLUGINS = (
    "visim.optim",
    "visim.config.rules",
    "visim.metrics",
    "visim.models",
    "visim.losses",
    "visim.data",
    "visim.rerank",
    "visim.index",
)
HOOK_KINDS = {f"register_{kind}": kind for kind in KINDS}
RULE_HOOK = "register_rules"


class PluginError(VisimError, RuntimeError):
    """A plugin failed to load while ``VISIM_STRICT_PLUGINS=1``."""

    exit_code = EXIT_USAGE


@attrs.define
class PluginInfo:
    """What ``visim plugins`` shows about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    status: str = "ok"  # ok | failed | blocked | incompatible
    reason: str | None = None
    hooks: list[str] = attrs.Factory(list)
    # kind ("metrics", ..., and "rules") -> names this plugin registered
    components: dict[str, list[str]] = attrs.Factory(dict)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class PluginState:
    """The loaded plugins: pluggy's manager, the filled registries, and one info per plugin."""

    manager: pluggy.PluginManager
    registries: Registries
    plugins: list[PluginInfo]


def csv_env(name: str, environ: os._Environ | dict) -> set[str] | None:
    value = environ.get(name)
    if value is None:
        return None
    return {canonical_dist(part) for part in value.split(",") if part.strip()}


def structure_params(data: Any, cls: type, path: str) -> Any:
    """How every registered component turns a params mapping into its params class: the config
    layer's strict structurer (imported on first use; the registry itself knows no config)."""
    from visim.config.converter import structure

    return structure(data, cls, path)


def visim_version() -> str:
    from visim import __version__

    return __version__


def unmet_visim_requirement(dist: metadata.Distribution | None) -> str | None:
    """The distribution's ``Requires-Dist`` on visim when the running visim does not meet it.

    Only requirements that apply here count (``visim>=1; extra == 'dev'`` does not); a
    pre-release visim is judged by its version like any other.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    for line in (dist.requires or []) if dist else []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # not ours to judge; pip would have refused it
        if canonical_dist(requirement.name) != "visim":
            continue
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        if not requirement.specifier.contains(visim_version(), prereleases=True):
            return str(requirement)
    return None


def reraise_interrupt(exc: BaseException) -> None:
    """Ctrl+C stays Ctrl+C; any other BaseException of a plugin (``sys.exit()`` at import
    included) is that plugin's failure, not the command's exit."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc


def describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def is_strict(environ) -> bool:
    return environ.get("VISIM_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes", "on")


class _Loader:
    def __init__(self, environ, extra_plugins: Iterable[tuple[str, object]]) -> None:
        self.environ = environ
        self.extra_plugins = list(extra_plugins)
        self.pm = pluggy.PluginManager("visim")
        self.pm.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.infos: list[PluginInfo] = []

    # -- discovery -------------------------------------------------------------------------
    def load(self) -> PluginState:
        # Whatever a plugin prints while it loads goes to stderr: stdout belongs to the command
        # (``visim plugins --json`` must stay valid JSON).
        with redirect_stdout(sys.stderr):
            return self.load_all()

    def load_all(self) -> PluginState:
        from visim import __version__

        for module_name in DEFAULT_PLUGINS:
            info = PluginInfo(module_name, "visim", __version__, builtin=True)
            # A broken built-in is our bug: let it raise.
            self.add(info, importlib.import_module(module_name), isolate=False)
        for name, plugin in self.extra_plugins:
            self.add(PluginInfo(name, None, None, builtin=False), plugin)
        for ep in self.entry_points():
            self.add_entry_point(ep)
        self.pm.check_pending()
        return PluginState(self.pm, self.registries, self.infos)

    def entry_points(self) -> list[metadata.EntryPoint]:
        seen, found = set(), []
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            key = (ep.dist.name if ep.dist else None, ep.name, ep.value)
            if key not in seen:  # the same dist-info can be on sys.path twice
                seen.add(key)
                found.append(ep)
        return sorted(found, key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))

    def add_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist else None
        info = PluginInfo(ep.name, dist, ep.dist.version if ep.dist else None, builtin=False)
        allowed = csv_env("VISIM_LOAD_PLUGINS", self.environ)
        disabled = csv_env("VISIM_DISABLE_PLUGINS", self.environ) or set()
        names = {canonical_dist(dist or ""), canonical_dist(ep.name)}
        if (allowed is not None and not names & allowed) or names & disabled:
            info.status, info.reason = "blocked", "filtered by VISIM_LOAD_PLUGINS / VISIM_DISABLE_PLUGINS"
            self.infos.append(info)
            return
        unmet = unmet_visim_requirement(ep.dist)
        if unmet:
            self.fail(info, f"requires {unmet}, this is visim {visim_version()}", status="incompatible")
            return
        try:
            plugin = ep.load()
        except BaseException as exc:  # any failure of foreign code is isolated, even sys.exit()
            reraise_interrupt(exc)
            self.fail(info, f"import failed: {describe(exc)}")
            return
        self.add(info, plugin)

    # -- registration ----------------------------------------------------------------------
    def add(self, info: PluginInfo, plugin: object, isolate: bool = True) -> None:
        if self.pm.has_plugin(info.name):
            info.name = f"{info.distribution}:{info.name}"
        if self.pm.is_registered(plugin):  # e.g. two entry points naming one module
            self.fail(info, f"the same object is already registered as plugin {self.pm.get_name(plugin)!r}")
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # pluggy's PluginValidationError: bad hook signature
            if not isolate:
                raise
            # pluggy's message spans three lines; a warning should be one.
            self.fail(info, f"invalid hook implementation: {'; '.join(str(exc).splitlines())}")
            return
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        unknown = [c.name for c in self.pm.get_hookcallers(plugin) or [] if not c.has_spec()]
        try:
            if unknown:
                known = ", ".join(sorted([*HOOK_KINDS, RULE_HOOK]))
                raise RegistrationError(f"unknown hook(s) {', '.join(unknown)}; known hooks: {known}")
            components, rules = self.collect(info, plugin)
            self.commit(info, components, rules)
        except BaseException as exc:
            reraise_interrupt(exc)
            self.pm.unregister(plugin)
            if not isolate:
                raise
            self.fail(info, describe(exc) if not isinstance(exc, ComponentError) else str(exc))
            return
        self.infos.append(info)

    def impls_of(self, plugin: object) -> Iterator[tuple[str, pluggy.HookImpl]]:
        for caller in self.pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    yield caller.name, impl

    def collect(self, info: PluginInfo, plugin: object) -> tuple[list[Component], list[Rule]]:
        components: list[Component] = []
        rules: list[Rule] = []
        for hook_name, impl in self.impls_of(plugin):
            if hook_name == RULE_HOOK:
                register = self.rule_register(info, rules)
            else:
                register = self.component_register(info, HOOK_KINDS[hook_name], components)
            impl.function(*([register] if impl.argnames else []))
        return components, rules

    def component_register(self, info: PluginInfo, kind: str, out: list[Component]):
        def register(name, factory, params=None, aliases=(), doc=None):
            # Any iterable of names will do (a list, a generator); a bare string will not.
            if not isinstance(aliases, str) and isinstance(aliases, Iterable):
                aliases = tuple(aliases)
            check_registration(kind, name, factory, params, aliases)
            out.append(
                Component(
                    name=name,
                    kind=kind,
                    factory=factory,
                    params=params,
                    aliases=aliases,
                    doc=doc,
                    plugin=info.name,
                    distribution=info.distribution,
                    version=info.version,
                    builtin=info.builtin,
                    structure=structure_params,
                )
            )

        return register

    def rule_register(self, info: PluginInfo, out: list[Rule]):
        def register(name, check, unary=False, doc=None):
            if not isinstance(name, str) or not name.strip() or not callable(check):
                raise RegistrationError(f"invalid rule registration {name!r}: needs a name and a callable")
            out.append(Rule(name.strip().lower(), check, bool(unary), doc, info.name))

        return register

    def commit(self, info: PluginInfo, components: list[Component], rules: list[Rule]) -> None:
        # Check everything first so that a plugin lands whole or not at all.
        for component in components:
            self.registries[component.kind].check(component)
        staged = Registries()
        for component in components:
            staged[component.kind].add(component)  # duplicates inside one plugin
        for rule in rules:
            if rule.name in self.registries.rules and not info.builtin:
                raise RegistrationError(f"rule {rule.name!r} is already registered by {self.registries.rules[rule.name].plugin}")
        # A misspelt rule name in a params class fails its plugin now, not when a config uses it.
        known_rules = {**self.registries.rules, **{rule.name: rule for rule in rules}}
        for component in components:
            if component.params is not None:
                try:
                    check_rule_names(component.params, known_rules)
                except ValidationException as exc:
                    raise RegistrationError(f"{SINGULAR[component.kind]} {component.name!r}: {exc}") from None
        for component in components:
            self.registries[component.kind].add(component)
            info.components.setdefault(component.kind, []).append(component.name)
        for rule in rules:
            self.registries.rules[rule.name] = rule
            info.components.setdefault("rules", []).append(rule.name)

    def fail(self, info: PluginInfo, reason: str, status: str = "failed") -> None:
        info.status, info.reason = status, reason
        self.infos.append(info)
        where = f" ({info.distribution})" if info.distribution else ""
        outcome = "failed to load" if status == "failed" else f"is {status}"
        message = f"plugin {info.name!r}{where} {outcome}: {reason}"
        if is_strict(self.environ):
            raise PluginError(f"{message} (VISIM_STRICT_PLUGINS=1)")
        print(
            f"visim: warning: {message}; it is ignored (VISIM_STRICT_PLUGINS=1 makes this fatal)",
            file=sys.stderr,
        )


_state: PluginState | None = None
_extra_plugins: list[tuple[str, object]] = []


def load_plugins(environ=None, extra_plugins: Iterable[tuple[str, object]] = ()) -> PluginState:
    """Load every plugin afresh (no caching): built-ins, ``extra_plugins``, entry points."""
    return _Loader(os.environ if environ is None else environ, extra_plugins).load()


def get_state() -> PluginState:
    """The plugins, loaded on first use and kept until :func:`reset`."""
    global _state
    if _state is None:
        _state = load_plugins(extra_plugins=_extra_plugins)
    return _state


def get_registry() -> Registries:
    """The registries of every kind (same as :func:`visim.get_registry`)."""
    return get_state().registries


def get_plugin_manager() -> pluggy.PluginManager:
    """The ``pluggy.PluginManager`` holding every plugin that loaded."""
    return get_state().manager


def reset() -> None:
    """Forget the loaded plugins; the next lookup loads them again (tests, new sys.path)."""
    global _state
    _state = None


@contextmanager
def plugin_registered(plugin: object, name: str | None = None) -> Iterator[PluginState]:
    """Register ``plugin`` (a module or object with hookimpls) for the duration of the block."""
    entry = (name or getattr(plugin, "__name__", type(plugin).__name__), plugin)
    _extra_plugins.append(entry)
    reset()
    try:
        yield get_state()
    finally:
        _extra_plugins.remove(entry)
        reset()
