"""Spectral normalisation: kept for training, folded into plain weights for inference.

The SPADE decoder's convolutions were trained with ``torch.nn.utils.spectral_norm``,
so official checkpoints store ``weight_orig``, ``weight_u`` and ``weight_v`` instead
of ``weight``. In eval mode that wrapper runs no power iteration: the effective
weight is ``weight_orig / σ`` with ``σ = uᵀ·(W·v)``, W being ``weight_orig``
reshaped to (out, -1) (reference-pipeline.md §4.6, quirk 11). The weight never
changes during inference, so :func:`fold_spectral_norm` divides once at load time
and inference networks are plain convolutions (no per-call σ, no hooks).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

ORIGINAL_WEIGHT = ".weight_orig"
LEFT_VECTOR = ".weight_u"
RIGHT_VECTOR = ".weight_v"


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
