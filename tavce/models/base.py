"""Base class of every tavce network: a typed config plus safetensors save/load.

A component is an ``nn.Module`` whose constructor takes one frozen config
dataclass (``config_class``). ``save_pretrained(folder)`` writes
``config.json`` + ``model.safetensors`` in tavce's own parameter names;
``from_pretrained(folder)`` rebuilds the module from them, strictly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from tavce.errors import IncompatibleWeightsError, WeightsNotFoundError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

ModuleT = TypeVar("ModuleT", bound="TavceModule")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(config_class: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass; list values become tuples where the field default is a tuple."""
    known = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise IncompatibleWeightsError(
            f"{config_class.__name__}: unknown config fields {unknown}; "
            "the weights were saved by a newer tavce, upgrade tavce."
        )
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config_class(**converted)


class TavceModule(nn.Module):
    """An ``nn.Module`` with a typed config that saves and loads itself."""

    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed)."""
        from tavce.hub import save_safetensors

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"class": type(self).__name__, "config": config_to_dict(self.config)}
        (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n")
        save_safetensors(self.state_dict(), folder / WEIGHTS_NAME)

    @classmethod
    def from_pretrained(cls: type[ModuleT], folder: str | Path) -> ModuleT:
        """Build the module from a folder written by :meth:`save_pretrained` (strict load)."""
        from tavce.hub import load_safetensors

        folder = Path(folder)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise WeightsNotFoundError(
                f"{config_path}: missing; pass a folder written by save_pretrained() "
                "or convert official weights with `tavce convert`."
            )
        payload = json.loads(config_path.read_text())
        module = cls(config_from_dict(cls.config_class, payload["config"]))
        load_state_dict_strict(module, load_safetensors(folder / WEIGHTS_NAME), source=str(folder))
        return module.eval()


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``module`` requiring the exact same keys and shapes.

    Raises:
        IncompatibleWeightsError: naming the missing, unexpected and mis-shaped keys.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
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
    module.load_state_dict(state_dict, strict=True)
