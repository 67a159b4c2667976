"""Spectral normalisation: kept for training, folded into plain weights for inference.

The SPADE decoder's convolutions were trained with ``torch.nn.utils.spectral_norm``,
so official checkpoints store ``weight_orig``, ``weight_u`` and ``weight_v`` instead
of ``weight``. In eval mode that wrapper runs no power iteration: the effective
weight is ``weight_orig / σ`` with ``σ = uᵀ·(W·v)``, W being ``weight_orig``
reshaped to (out, -1), the stored vectors used as they are. The weight never
changes during inference, so :func:`fold_spectral_norm` divides once at load time
and inference networks are plain convolutions (no per-call σ, no hooks).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = [
    "ORIGINAL_WEIGHT",
    "LEFT_VECTOR",
    "RIGHT_VECTOR",
    "POWER_ITERATIONS",
    "spectral_vectors",
    "spectral_sigma",
    "fold_spectral_norm",
    "maybe_spectral",
]

ORIGINAL_WEIGHT = ".weight_orig"
LEFT_VECTOR = ".weight_u"
RIGHT_VECTOR = ".weight_v"


POWER_ITERATIONS = 30
"""Power iterations of :func:`spectral_vectors`: float64 converges far below float32 precision by then."""


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm().clamp_min(1e-12)


def spectral_vectors(
    weight: torch.Tensor, left: torch.Tensor | None = None, iterations: int = POWER_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Settled spectral-norm vectors (u, v) of ``weight``: float64 power iterations on W.

    W is ``weight`` reshaped to (out, -1). Starting from ``left`` (out,) (default: ones),
    each iteration sets v = unit(Wᵀu), then u = unit(W·v), as ``torch.nn.utils.spectral_norm``
    does, so σ = uᵀ·(W·v) approaches W's largest singular value.

    Returns:
        u (out,) and v (in,), float64 unit vectors.
    """
    matrix = weight.to(torch.float64).reshape(weight.shape[0], -1)
    left = _unit(torch.ones(matrix.shape[0], dtype=torch.float64) if left is None else left.to(torch.float64))
    right = _unit(matrix.t() @ left)
    for _ in range(iterations):
        right = _unit(matrix.t() @ left)
        left = _unit(matrix @ right)
    return left, right


def spectral_sigma(weight: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """σ = uᵀ·(W·v) from the stored vectors, W = ``weight`` reshaped to (out, -1). Scalar tensor."""
    return torch.dot(left, torch.mv(weight.reshape(weight.shape[0], -1), right))


def fold_spectral_norm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every ``<p>.weight_orig`` / ``weight_u`` / ``weight_v`` triple by ``<p>.weight = W/σ``.

    Other entries pass through unchanged. σ is computed in float64 and the folded
    weight is returned in the dtype of ``weight_orig``.
    """
    folded = dict(state_dict)
    for key in [k for k in state_dict if k.endswith(ORIGINAL_WEIGHT)]:
        prefix = key[: -len(ORIGINAL_WEIGHT)]
        left_key, right_key = prefix + LEFT_VECTOR, prefix + RIGHT_VECTOR
        if left_key not in state_dict or right_key not in state_dict:
            continue
        weight = state_dict[key]
        sigma = spectral_sigma(
            weight.to(torch.float64),
            state_dict[left_key].to(torch.float64),
            state_dict[right_key].to(torch.float64),
        )
        folded[prefix + ".weight"] = (weight.to(torch.float64) / sigma).to(weight.dtype)
        for stale in (key, left_key, right_key):
            del folded[stale]
    return folded


def maybe_spectral(conv: nn.Conv2d, enabled: bool) -> nn.Module:
    """``conv`` wrapped in spectral normalisation when ``enabled`` (training), else as is (inference)."""
    return nn.utils.spectral_norm(conv) if enabled else conv
