"""Component references in a config: ``metric: cosine`` or ``metric: {name: minkowski, p: 3}``.

A reference is structured into the named component's own params class, so a mistake in a
component's params is reported at its full path (``$.test.metric.p``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from visim.config.errors import ConfigError, Problem
from visim.registry import SINGULAR, Component, ComponentError


@attrs.frozen
class ComponentRef:
    """A resolved reference: the name as written (``dist:name`` kept) and the params instance."""

    kind: ClassVar[str] = ""
    name: str
    params: Any = attrs.field(eq=True)

    def component(self) -> Component:
        from visim.plugins import get_registry

        return get_registry()[self.kind].get(self.name)

    def build(self, **context: Any) -> Any:
        return self.component().build(self.params, **context)

    @classmethod
    def of(cls, name: str, **params: Any) -> ComponentRef:
        """Build a reference in code: ``MetricRef.of("minkowski", p=3)``."""
        return structure_ref({"name": name, **params} if params else name, cls, "$")


def structure_ref(value: Any, cls: type[ComponentRef], path: str) -> ComponentRef:
    from visim.config.converter import describe, structure
    from visim.plugins import get_registry

    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        name, params, name_path = value, {}, path
    elif isinstance(value, Mapping):
        if "name" not in value:
            raise ConfigError(Problem(f"a {cls.what()} reference needs a 'name'", path))
        name, name_path = value["name"], f"{path}.name"
        params = {k: v for k, v in value.items() if k != "name"}
        if not isinstance(name, str):
            raise ConfigError(Problem(f"expected str, got {describe(name)}", name_path))
    else:
        raise ConfigError(
            Problem(
                f"expected a {cls.what()} name or a mapping with 'name', got {describe(value)}",
                path,
            )
        )
    try:
        component = get_registry()[cls.kind].get(name)
    except ComponentError as exc:
        raise ConfigError(Problem(str(exc), name_path)) from None
    written = name.strip().strip("'\"").strip()
    canonical = f"{component.distribution}:{component.name}" if ":" in written else component.name
    return cls(canonical, structure(params, component.params, path))


def ref_type(kind: str) -> type[ComponentRef]:
    singular = SINGULAR[kind]
    cls = type(f"{singular.capitalize()}Ref", (ComponentRef,), {"kind": kind})
    cls.what = classmethod(lambda c: singular)  # type: ignore[attr-defined]
    return attrs.frozen(cls)


ComponentRef.what = classmethod(lambda c: "component")  # type: ignore[attr-defined]
MetricRef = ref_type("metrics")
ModelRef = ref_type("models")
LossRef = ref_type("losses")
DatasetRef = ref_type("datasets")
OptimizerRef = ref_type("optimizers")
SchedulerRef = ref_type("schedulers")
SamplerRef = ref_type("samplers")
TransformRef = ref_type("transforms")
RerankerRef = ref_type("rerankers")
