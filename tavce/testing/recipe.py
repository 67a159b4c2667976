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

__all__ = ["reference_tensor", "reference_state_dict"]

_SPECTRAL_POWER_ITERATIONS = 30


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


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm().clamp_min(1e-12)


def reference_state_dict(shapes: Mapping[str, Iterable[int]], salt: int = 0) -> dict[str, torch.Tensor]:
    """Recipe tensors for every key of ``shapes`` (original key names), spectral-norm u/v settled.

    For each ``<p>.weight_orig`` with ``<p>.weight_u`` and ``<p>.weight_v`` beside it,
    u and v are replaced by 30 float64 power iterations on ``weight_orig`` reshaped
    to (out, -1), starting from the recipe u, as the recorded checkpoints have them.
    """
    state = {key: reference_tensor(key, shape, salt) for key, shape in shapes.items()}
    for key in [k for k in state if k.endswith(".weight_orig")]:
        prefix = key[: -len(".weight_orig")]
        if f"{prefix}.weight_u" not in state or f"{prefix}.weight_v" not in state:
            continue
        matrix = state[key].to(torch.float64).reshape(state[key].shape[0], -1)
        left = _unit(state[f"{prefix}.weight_u"].to(torch.float64))
        right = _unit(matrix.t() @ left)
        for _ in range(_SPECTRAL_POWER_ITERATIONS):
            right = _unit(matrix.t() @ left)
            left = _unit(matrix @ right)
        state[f"{prefix}.weight_u"] = left.to(torch.float32)
        state[f"{prefix}.weight_v"] = right.to(torch.float32)
    return state
