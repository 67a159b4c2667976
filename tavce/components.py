"""The tavce weights format: a set of named components in one folder.

Layout written by :func:`save_components`::

    folder/
      pipeline_config.json      {"library": "tavce", "version": ..., "components": {name: "module:Class"},
                                 "preprocessing": {...}, optional "provenance": {...}}
      <name>/config.json        the component's config dataclass
      <name>/model.safetensors  its state dict in tavce's own parameter names

Only classes defined inside the ``tavce`` package (or registered with
:func:`register_component_class`) are instantiated, so reading a folder never
imports code named by the file.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tavce
from tavce.errors import IncompatibleWeightsError, WeightsNotFoundError
from tavce.models.base import TavceModule

PIPELINE_CONFIG_NAME = "pipeline_config.json"

_REGISTERED: dict[str, type[TavceModule]] = {}


def register_component_class(cls: type[TavceModule]) -> type[TavceModule]:
    """Allow a component class defined outside tavce (e.g. a researcher's subclass) to be loaded by name."""
    _REGISTERED[class_path(cls)] = cls
    return cls


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve_class(path: str, source: Path) -> type[TavceModule]:
    if path in _REGISTERED:
        return _REGISTERED[path]
    module_name, _, qualname = path.partition(":")
    if not (module_name == "tavce" or module_name.startswith("tavce.")) or not qualname:
        raise IncompatibleWeightsError(
            f"{source}: component class {path!r} is not part of tavce; register it with "
            "tavce.components.register_component_class before loading"
        )
    try:
        cls = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as error:
        raise IncompatibleWeightsError(
            f"{source}: component class {path!r} does not exist in this tavce version "
            f"({tavce.__version__}); upgrade tavce"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, TavceModule)):
        raise IncompatibleWeightsError(f"{source}: {path!r} is not a tavce component class")
    return cls


def save_components(
    folder: str | Path,
    components: Mapping[str, TavceModule],
    preprocessing: Mapping[str, Any],
    *,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write every component and ``pipeline_config.json`` into ``folder``.

    ``provenance`` (optional, JSON-ready) records where the weights came from
    (official files, size, whether CERL is on); the model card is written from it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, component in components.items():
        component.save_pretrained(folder / name)
    config = {
        "library": "tavce",
        "version": tavce.__version__,
        "components": {name: class_path(type(component)) for name, component in components.items()},
        "preprocessing": dict(preprocessing),
    }
    if provenance is not None:
        config["provenance"] = dict(provenance)
    (folder / PIPELINE_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_pipeline_config(folder: str | Path) -> dict[str, Any]:
    """The parsed ``pipeline_config.json`` of a tavce folder."""
    path = Path(folder) / PIPELINE_CONFIG_NAME
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: not found; {folder} is not a tavce weights folder. Write one with "
            "`tavce convert` or pipe.save_pretrained()"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise IncompatibleWeightsError(f"{path}: not valid JSON ({error}); download it again") from error


def load_components(folder: str | Path) -> tuple[dict[str, TavceModule], dict[str, Any]]:
    """Rebuild every component of a folder written by :func:`save_components`.

    Returns:
        (components by name, preprocessing constants).
    """
    folder = Path(folder)
    config = read_pipeline_config(folder)
    components = {
        name: _resolve_class(path, folder).from_pretrained(folder / name)
        for name, path in config.get("components", {}).items()
    }
    return components, config.get("preprocessing", {})
