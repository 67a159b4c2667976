"""The file form of the training settings: one reader and one writer for both stages (JSON, or YAML with PyYAML).

A settings file holds any subset of a config dataclass's fields (nested configs as
mappings, tuples as lists); missing fields keep their defaults. Every problem — a
missing or malformed file, an unknown field, a value of the wrong type, a value the
config refuses — is one :class:`~tavce.errors.ConfigError` naming the file, the field
(dotted for nested configs, e.g. ``losses.l1``) and the valid names or values.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from tavce.errors import ConfigError, InvalidArgumentError

__all__ = ["config_from_mapping", "load_config", "save_config"]

ConfigT = TypeVar("ConfigT")

_YAML_SUFFIXES = (".yaml", ".yml")


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as error:  # PyYAML is not a tavce dependency
        raise ConfigError(
            "YAML settings files need PyYAML (`pip install pyyaml`); or write the settings as .json"
        ) from error
    return yaml


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in _YAML_SUFFIXES


def save_config(config: Any, path: str | Path) -> Path:
    """Write a config dataclass as JSON, or YAML for a ``.yaml`` / ``.yml`` path; returns the path."""
    path = Path(path)
    values = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples become lists
    text = _yaml().safe_dump(values, sort_keys=False) if _is_yaml(path) else json.dumps(values, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_config(config_class: type[ConfigT], path: str | Path) -> ConfigT:
    """Read a settings file written by :func:`save_config` or by hand.

    Raises:
        ConfigError: the file is missing or not JSON / YAML, or a field is unknown, of the wrong
            type or refused by the config (the message names the file and the field).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: settings file not found; check the path (or write one with save_config)")
    text = path.read_text()
    if _is_yaml(path):
        yaml = _yaml()
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error}); fix the syntax") from error
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON ({error}); fix the syntax") from error
    return config_from_mapping(config_class, values, source=str(path))


def config_from_mapping(config_class: type[ConfigT], values: Any, *, source: str, prefix: str = "") -> ConfigT:
    """Build ``config_class`` from a mapping of its fields (nested configs as mappings, lists for tuples).

    Raises:
        ConfigError: naming ``source`` and the field, with the valid field names or the expected type.
    """
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{source}: {where} must be a mapping of {config_class.__name__} fields, got {type(values).__name__}"
        )
    fields = {item.name: item for item in dataclasses.fields(cast(Any, config_class))}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(prefix + name for name in unknown)}; "
            f"valid fields{' of ' + where if prefix else ''}: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(config_class)
    converted = {}
    for name, value in values.items():
        nested = _config_class_in(hints[name])
        if nested is not None and isinstance(value, Mapping):
            value = config_from_mapping(nested, value, source=source, prefix=f"{prefix}{name}.")
        elif isinstance(value, list):
            value = tuple(value)
        expected = _scalar_types(hints[name])
        if expected and (not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)):
            names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in expected)
            raise ConfigError(f"{source}: {prefix}{name}={value!r}: expected {names}")
        converted[name] = value
    try:
        return config_class(**converted)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (InvalidArgumentError, TypeError) as error:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or config_class.__name__}: {error}") from None


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _config_class_in(annotation: Any) -> type | None:
    """The config dataclass a field's annotation names (``Config`` or ``Config | None``), else None."""
    found = [member for member in _union_members(annotation) if dataclasses.is_dataclass(member)]
    return cast(type, found[0]) if len(found) == 1 else None


def _scalar_types(annotation: Any) -> tuple[type, ...]:
    """The accepted Python types of a scalar field (``int`` also accepted for ``float``), else () (not checked)."""
    members = _union_members(annotation)
    if not all(member in (int, float, bool, str, type(None)) for member in members):
        return ()
    accepted = set(members)
    if float in accepted:
        accepted.add(int)
    return tuple(accepted)
