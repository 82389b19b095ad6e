"""Reading experiment configs: YAML file -> overrides -> :class:`Experiment`, and back to YAML.

Every failure is a :class:`ConfigError`: a file that cannot be read, YAML that does not parse
(file, line and column named), an empty file or one that is not a mapping, a malformed
``--set`` override, and every problem the schema finds.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

from visim.config.converter import describe, structure, unstructure
from visim.config.errors import ConfigError, Problem
from visim.config.schema import Experiment

# YAML 1.1 (PyYAML) reads ``3e-4`` as a string; configs are full of such learning rates.
# This is the YAML 1.2 float pattern: ``3e-4``, ``1E5``, ``.5``, ``.inf``, ``.nan``.
FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
FLOAT_TAG = "tag:yaml.org,2002:float"


class NestedTooDeeply(Exception):
    """Raised by :class:`ConfigLoader` past ``MAX_CONFIG_DEPTH``; becomes a ConfigError."""


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``3e-4`` as a float, rejects duplicate keys and stops at
    ``MAX_CONFIG_DEPTH`` levels of nesting (PyYAML's scanner is quadratic in the depth of
    ``[[[...`` and its composer recursive)."""

    depth = 0

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_CONFIG_DEPTH:
            raise NestedTooDeeply
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_CONFIG_DEPTH:
                raise NestedTooDeeply
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # unhashable: the base class reports it with its position
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given on line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(FLOAT_TAG, FLOAT_RE, list("-+0123456789."))


# A config is a few dozen values. These bounds refuse hostile files quickly and in bounded
# memory: a huge file, and a "billion laughs" of nested aliases that a few lines of YAML expand
# into billions of values (safe_load shares them, but every consumer walks them all).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_DEPTH = 100


def expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` holds with every alias expanded (each node measured once)."""
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a recursive alias counts as a leaf while it is being measured
        children = node.value if isinstance(node.value, list) else []
        items = [part for child in children for part in (child if isinstance(child, tuple) else (child,))]
        sizes[id(node)] = min(1 + sum(expanded_size(item, sizes) for item in items), MAX_CONFIG_VALUES + 1)
    return sizes[id(node)]


def load_bounded(text: str, source: str) -> Any:
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and expanded_size(node, {}) > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{source} expands to more than {MAX_CONFIG_VALUES} values (through YAML aliases?); "
                "a config holds settings, not data"
            )
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` semantics (plus the fixes above); errors name source, line, column."""
    try:
        return load_bounded(text, source)
    except (NestedTooDeeply, RecursionError):
        raise ConfigError(f"{source} is nested too deeply to be a config (more than {MAX_CONFIG_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error in {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error in {source}: {exc}") from None


def read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB; a config holds settings, not data")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None


def load_config_data(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """The config file's data, with ``overrides`` (``key.path=value``) applied."""
    path = Path(path)
    data = parse_yaml(read_text(path), str(path))
    if data is None:
        raise ConfigError(f"config file is empty: {path} (it needs at least data, model and test)")
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"the top level of {path} must be a mapping of settings, got {describe(data)}"
        )
    return apply_overrides(data, overrides)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Experiment:
    """Load, override and validate a config file; every problem is reported at once."""
    return config_from_dict(load_config_data(path, overrides))


def config_from_dict(data: Any) -> Experiment:
    """Structure plain data (as YAML gives it) into a validated :class:`Experiment`."""
    if not isinstance(data, (Mapping, Experiment)):
        raise ConfigError(f"a config must be a mapping of settings, got {describe(data)}")
    return structure(data, Experiment)


class ConfigDumper(yaml.SafeDumper):
    """Block-style mappings; lists of scalars on one line (``image_size: [64, 32]``)."""

    def represent_list(self, data):
        flat = all(not isinstance(item, (list, dict)) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


ConfigDumper.add_representer(list, ConfigDumper.represent_list)


def dump_config(config: Experiment) -> str:
    """The fully resolved config as YAML, every default included; loads back to ``config``."""
    return yaml.dump(
        unstructure(config),
        Dumper=ConfigDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )


# -- overrides -------------------------------------------------------------------------------
def apply_overrides(data: Mapping, overrides: Iterable[str] = ()) -> dict:
    """A copy of ``data`` with each ``key.path=value`` set; the value is read as YAML.

    Missing intermediate mappings are created. A component given by a bare name
    (``metric: euclidean``) becomes ``{name: euclidean}`` when one of its params is set.
    An item of a list is addressed by its index: ``test.topk_cmc.0=3``.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    result = copy.deepcopy(dict(data))
    problems = []
    for override in overrides or ():
        try:
            apply_override(result, override)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return result


def parse_override(override: str) -> tuple[list[str], Any]:
    key, sep, raw = str(override).partition("=")
    keys = [part.strip() for part in key.split(".")]
    if not sep or not all(keys):
        raise ConfigError(
            f"invalid override {override!r}: expected KEY.PATH=VALUE, e.g. train.epochs=3"
        )
    try:
        value = parse_yaml(raw, f"override {override!r}")
    except ConfigError as exc:
        raise ConfigError(Problem(exc.problems[0].message, "$." + ".".join(keys))) from None
    return keys, value


def apply_override(data: MutableMapping, override: str) -> None:
    keys, value = parse_override(override)
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = "$." + ".".join(keys[: depth + 1])
        if isinstance(node, MutableMapping):
            if last:
                node[key] = value
            elif not isinstance(node.get(key), (MutableMapping, list)):
                node[key] = promoted(node.get(key), override, where)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            key = int(key)
            if last:
                node[key] = value
            elif not isinstance(node[key], (MutableMapping, list)):
                node[key] = promoted(node[key], override, where)
        else:
            parent = "$." + ".".join(keys[:depth]) if depth else "$"
            raise ConfigError(
                Problem(f"cannot apply override {override!r}: {parent} is {describe(node)}", where)
            )
        if not last:
            node = node[key]


def promoted(current: Any, override: str, where: str) -> dict:
    """What an intermediate key becomes so that a deeper key can be set in it."""
    if current is None:
        return {}
    if isinstance(current, str):  # a component given by its bare name
        return {"name": current}
    raise ConfigError(
        Problem(f"cannot apply override {override!r}: {where} is {describe(current)}", where)
    )
