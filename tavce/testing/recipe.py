"""The deterministic weights recipe the golden cases were recorded with.

``reference_tensor`` / ``reference_state_dict``: the same (key, shape, salt) gives
the same tensor on any machine with PyTorch, so a checkpoint can be rebuilt under
its original key names without downloading anything.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping

import torch

from tavce.models.renderer.spectral import spectral_vectors

__all__ = ["reference_tensor", "reference_state_dict"]

_SPECTRAL_POWER_ITERATIONS = 30  # part of the recipe the golden cases were recorded with


def reference_tensor(key: str, shape: Iterable[int], salt: int = 0) -> torch.Tensor:
    """The recipe tensor for one state-dict entry (float32, or int64 for ``num_batches_tracked``)."""
    shape = tuple(int(s) for s in shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()) ^ salt)
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
    if leaf == "running_mean":
        values = 0.1 * uniform
    elif leaf == "running_var":
        values = 1 + 0.25 * (uniform + 1)
    elif len(shape) >= 2:
        fan_in = math.prod(shape) // shape[0]
        values = uniform * math.sqrt(3.0 / fan_in)
    elif len(shape) == 1:
        values = 0.1 * uniform if leaf == "bias" else 1 + 0.1 * uniform
    else:
        values = 0.1 * uniform
    return values.to(torch.float32)


def reference_state_dict(shapes: Mapping[str, Iterable[int]], salt: int = 0) -> dict[str, torch.Tensor]:
    """Recipe tensors for every key of ``shapes`` (original key names), spectral-norm u/v settled.

    For each ``<p>.weight_orig`` with ``<p>.weight_u`` and ``<p>.weight_v`` beside it,
    u and v are replaced by :func:`~tavce.models.renderer.spectral.spectral_vectors` of
    ``weight_orig`` (30 float64 power iterations), starting from the recipe u, as the
    recorded checkpoints have them.
    """
    state = {key: reference_tensor(key, shape, salt) for key, shape in shapes.items()}
    for key in [k for k in state if k.endswith(".weight_orig")]:
        prefix = key[: -len(".weight_orig")]
        if f"{prefix}.weight_u" not in state or f"{prefix}.weight_v" not in state:
            continue
        left, right = spectral_vectors(state[key], state[f"{prefix}.weight_u"], _SPECTRAL_POWER_ITERATIONS)
        state[f"{prefix}.weight_u"] = left.to(torch.float32)
        state[f"{prefix}.weight_v"] = right.to(torch.float32)
    return state
