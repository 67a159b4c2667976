"""Base class of every tavce network: a typed config, swappable sub-components, safetensors save/load.

A component is an ``nn.Module`` whose constructor takes one frozen config
dataclass (``config_class``) and, as keyword arguments, the sub-components a
researcher may swap (``component_slots``: keyword -> attribute path, e.g. an
injected :class:`~tavce.models.audio_encoder.AudioEncoder`).
``save_pretrained(folder)`` writes ``config.json`` (the config, and each slot's
class and config) + ``model.safetensors`` in tavce's own parameter names;
``from_pretrained(folder)`` rebuilds the module from them, strictly.

Only classes defined inside the ``tavce`` package, or registered with
:func:`register_component_class`, are instantiated by name, so reading a folder
never imports code named by a file.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import torch
from torch import nn

from tavce.errors import ComponentNotSerializableError, IncompatibleWeightsError, WeightsNotFoundError

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "register_component_class",
    "class_path",
    "resolve_component_class",
    "config_to_dict",
    "config_from_dict",
    "TavceModule",
    "load_safetensors_strict",
    "module_device",
    "load_state_dict_strict",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

ModuleT = TypeVar("ModuleT", bound="TavceModule")

_REGISTERED: dict[str, type[TavceModule]] = {}


def register_component_class(cls: type[ModuleT]) -> type[ModuleT]:
    """Allow a component class defined outside tavce (e.g. a researcher's subclass) to be loaded by name."""
    _REGISTERED[class_path(cls)] = cls
    return cls


def class_path(cls: type) -> str:
    """``module:QualifiedName``, the form recorded in saved folders."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_component_class(path: str, source: str | Path) -> type[TavceModule]:
    """The component class recorded as ``path``: registered, or defined inside tavce.

    Raises:
        IncompatibleWeightsError: the class is outside tavce and not registered, or does not exist.
    """
    if path in _REGISTERED:
        return _REGISTERED[path]
    module_name, _, qualname = path.partition(":")
    if not (module_name == "tavce" or module_name.startswith("tavce.")) or not qualname:
        raise IncompatibleWeightsError(
            f"{source}: component class {path!r} is not part of tavce; register it with "
            "tavce.components.register_component_class before loading"
        )
    import tavce

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


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (nested configs become dicts, tuples lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _dataclass_in(annotation: Any) -> type | None:
    """The config dataclass an annotation names (``Config`` or ``Config | None``), else None."""
    if dataclasses.is_dataclass(annotation):
        return cast(type, annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [arg for arg in typing.get_args(annotation) if dataclasses.is_dataclass(arg)]
        return cast(type, found[0]) if len(found) == 1 else None
    return None


def config_from_dict(config_class: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass from its JSON form, nested configs included.

    The one place where JSON turns back into configs: a dict under a field typed as a
    config dataclass becomes that dataclass, and lists become tuples.

    Raises:
        IncompatibleWeightsError: a field this tavce version does not know.
    """
    hints = typing.get_type_hints(config_class)
    known = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise IncompatibleWeightsError(
            f"{config_class.__name__}: unknown config fields {unknown}; "
            "the weights were saved by a newer tavce, upgrade tavce."
        )
    converted = {}
    for name, value in values.items():
        nested = _dataclass_in(hints.get(name))
        if nested is not None and isinstance(value, Mapping):
            value = config_from_dict(nested, value)
        elif isinstance(value, list):
            value = tuple(value)
        converted[name] = value
    return config_class(**converted)


class TavceModule(nn.Module):
    """An ``nn.Module`` with a typed config and swappable sub-components that saves and loads itself.

    Subclasses set ``config_class``; those whose constructor accepts sub-components as
    keyword arguments list them in ``component_slots`` (keyword -> attribute path of the
    module held there), so that a swapped-in sub-component is saved with its own class
    and rebuilt on load.
    """

    config_class: ClassVar[type]
    component_slots: ClassVar[Mapping[str, str]] = {}
    keep_in_float32: ClassVar[tuple[str, ...]] = ("",)
    """Submodule paths that stay float32 when the pipeline runs in a half precision; ``""`` is the whole
    module (the default: small networks stay exact). A component that takes half precision lists only
    the parts that cannot (:func:`tavce.device.place_component`)."""

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.config_class()

    def describe(self) -> dict[str, Any]:
        """The JSON form of this module's construction: class, config and each slot's description.

        Raises:
            ComponentNotSerializableError: a slot holds a module that is not a :class:`TavceModule`.
        """
        slots = {}
        for keyword, path in self.component_slots.items():
            held = self.get_submodule(path)
            if not isinstance(held, TavceModule):
                raise ComponentNotSerializableError(
                    f"{type(self).__name__}.{path} is a {type(held).__name__}, not a TavceModule, so it cannot be "
                    "saved; subclass tavce.models.base.TavceModule with a config dataclass to make it saveable"
                )
            slots[keyword] = held.describe()
        return {"class": class_path(type(self)), "config": config_to_dict(self.config), "slots": slots}

    @classmethod
    def from_description(cls: type[ModuleT], description: Mapping[str, Any], source: str | Path) -> ModuleT:
        """A new module (untrained weights) built from :meth:`describe`'s output."""
        slots = {
            keyword: resolve_component_class(entry["class"], source).from_description(entry, source)
            for keyword, entry in description.get("slots", {}).items()
        }
        return cls(config_from_dict(cls.config_class, description["config"]), **slots)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed)."""
        from tavce._writes import write_atomically
        from tavce.hub import save_safetensors

        description = self.describe()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / CONFIG_NAME, json.dumps(description, indent=2) + "\n")
        save_safetensors(self.state_dict(), folder / WEIGHTS_NAME)

    @classmethod
    def from_pretrained(cls: type[ModuleT], folder: str | Path) -> ModuleT:
        """Build the module from a folder written by :meth:`save_pretrained` (strict load)."""
        from tavce.hub import load_json

        folder = Path(folder)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise WeightsNotFoundError(
                f"{config_path}: missing; pass a folder written by save_pretrained() "
                "or convert official weights with `tavce convert`."
            )
        module = cls.from_description(load_json(config_path), folder)
        load_safetensors_strict(module, folder / WEIGHTS_NAME, source=str(folder))
        return module.eval()


def module_device(component: Any) -> torch.device:
    """Where a component computes: its first parameter or buffer, else its ``device`` attribute, else the CPU."""
    if isinstance(component, nn.Module):
        for tensor in (*component.parameters(), *component.buffers()):
            return tensor.device
    return torch.device(getattr(component, "device", "cpu"))


def module_dtype(component: Any) -> torch.dtype:
    """The floating-point type a component computes in: its first floating parameter's, else float32."""
    if isinstance(component, nn.Module):
        for parameter in component.parameters():
            if parameter.is_floating_point():
                return parameter.dtype
    return torch.float32


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``module`` requiring the exact same keys and shapes.

    Raises:
        IncompatibleWeightsError: naming the missing, unexpected and mis-shaped keys.
    """
    _check_fit(module, {name: tuple(tensor.shape) for name, tensor in state_dict.items()}, source)
    module.load_state_dict(state_dict, strict=True)


def load_safetensors_strict(module: nn.Module, path: str | Path, source: str) -> None:
    """Copy a safetensors file into ``module`` tensor by tensor (exact keys and shapes required).

    Equivalent to :func:`load_state_dict_strict` with the whole file, but only one tensor of
    the file is in memory at a time beside the module's own.

    Raises:
        WeightsNotFoundError: the file does not exist.
        IncompatibleWeightsError: an invalid file, or missing, unexpected and mis-shaped keys.
    """
    from tavce.hub import open_safetensors

    with open_safetensors(path) as (shapes, read):
        _check_fit(module, shapes, source)
        with torch.no_grad():
            # keep_vars: the module's own tensors, whatever their layout (a state-dict hook may
            # return contiguous copies of re-laid-out weights, and a copy would be filled instead).
            for name, target in module.state_dict(keep_vars=True).items():
                read(name, out=target)


def _check_fit(module: nn.Module, shapes: Mapping[str, tuple[int, ...]], source: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    mismatched = sorted(
        f"{k}: file {shapes[k]} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(shapes)
        if shapes[k] != tuple(expected[k].shape)
    )
    if missing or unexpected or mismatched:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                problems.append(f"{label}: {shown}")
        raise IncompatibleWeightsError(
            f"{source}: weights do not fit {type(module).__name__} ({'; '.join(problems)}). "
            "Check that the file and the model configuration belong together."
        )
