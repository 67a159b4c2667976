"""The tavce weights format: the pipeline's named components in one folder.

Layout written by :func:`save_components`::

    folder/
      pipeline_config.json      {"library": "tavce", "version": ..., "components": {name: "module:Class"},
                                 "preprocessing": {...}, optional "provenance": {...}}
      <name>/config.json        the component's class, config and swapped sub-components
      <name>/model.safetensors  its state dict in tavce's own parameter names

Only classes defined inside the ``tavce`` package (or registered with
:func:`register_component_class`) are instantiated, so reading a folder never
imports code named by the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tavce
from tavce._writes import write_atomically
from tavce.errors import ComponentNotSerializableError, IncompatibleWeightsError, WeightsNotFoundError
from tavce.hub import load_json
from tavce.models.base import TavceModule, class_path, register_component_class, resolve_component_class

__all__ = [
    "COMPONENT_NAMES",
    "OPTIONAL_COMPONENTS",
    "PIPELINE_CONFIG_NAME",
    "load_components",
    "read_pipeline_config",
    "register_component_class",
    "save_components",
]

PIPELINE_CONFIG_NAME = "pipeline_config.json"

COMPONENT_NAMES = ("preprocessor", "audio2coeff", "renderer", "metric", "enhancer")
"""The pipeline's components, in data-flow order: each is a constructor argument of
:class:`~tavce.TalkingHeadPipeline` and a sub-folder of a weights folder."""

OPTIONAL_COMPONENTS = frozenset({"metric", "enhancer"})
"""Components a pipeline may lack: the TAVC metric is needed only by a renderer with CERL; the
face enhancer is an optional last step."""


def save_components(
    folder: str | Path,
    components: Mapping[str, Any],
    preprocessing: Mapping[str, Any],
    *,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write every component and ``pipeline_config.json`` into ``folder``.

    Every component is checked before anything is written, so a pipeline holding one
    that cannot be saved leaves no half-written folder.

    Args:
        components: name -> component; None values (absent optional components) are skipped.
        preprocessing: constants recorded beside the weights (crop size, mel settings).
        provenance: optional, JSON-ready record of where the weights came from (for the model card).

    Raises:
        ComponentNotSerializableError: a component (or a sub-component in one of its slots) is
            not a :class:`~tavce.models.base.TavceModule`.
    """
    present = {name: component for name, component in components.items() if component is not None}
    for name, component in present.items():
        if not isinstance(component, TavceModule):
            raise ComponentNotSerializableError(
                f"component {name!r} is a {type(component).__name__}, which save_pretrained cannot write; make it "
                "a tavce.models.base.TavceModule subclass with a config dataclass (docs/components.md), or save "
                "the other components and pass this one to from_pretrained(..., " + f"{name}=...) when loading"
            )
        component.describe()  # raises for a slot holding a module that cannot be saved
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, component in present.items():
        component.save_pretrained(folder / name)
    config = {
        "library": "tavce",
        "version": tavce.__version__,
        "components": {name: class_path(type(component)) for name, component in present.items()},
        "preprocessing": dict(preprocessing),
    }
    if provenance is not None:
        config["provenance"] = dict(provenance)
    # Written last and atomically: a folder with pipeline_config.json is complete.
    write_atomically(folder / PIPELINE_CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return folder


def read_pipeline_config(folder: str | Path) -> dict[str, Any]:
    """The parsed ``pipeline_config.json`` of a tavce folder."""
    path = Path(folder) / PIPELINE_CONFIG_NAME
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: not found; {folder} is not a tavce weights folder. Write one with "
            "`tavce convert` or pipe.save_pretrained()"
        )
    return load_json(path)


def load_components(
    folder: str | Path, skip: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, TavceModule], dict[str, Any]]:
    """Rebuild the components of a folder written by :func:`save_components`.

    Args:
        skip: names not to load (the caller supplies its own).

    Returns:
        (components by name, preprocessing constants).

    Raises:
        IncompatibleWeightsError: the folder names a component the pipeline does not have
            (written by another tavce version) or a class that cannot be loaded.
    """
    folder = Path(folder)
    config = read_pipeline_config(folder)
    recorded = config.get("components", {})
    unknown = sorted(set(recorded) - set(COMPONENT_NAMES))
    if unknown:
        raise IncompatibleWeightsError(
            f"{folder}: components {unknown} are not pipeline components ({', '.join(COMPONENT_NAMES)}); the folder "
            f"was written by tavce {config.get('version', '?')}. Convert the official files again with "
            "`tavce convert`, or re-save it with that tavce version's components"
        )
    components = {
        name: resolve_component_class(path, folder).from_pretrained(folder / name)
        for name, path in recorded.items()
        if name not in skip
    }
    return components, config.get("preprocessing", {})
