"""Hinge GAN terms and discriminator feature matching (as face-vid2vid computes them; the TAVCE code does not show them).

All three take the ``{scale: DiscriminatorOutput}`` dictionaries of
:class:`~tavce.models.renderer.MultiScaleDiscriminator` and sum over its scales:

* generator:      L_G  = w · Σ_s −mean D_s(prediction)
* discriminator:  L_D  = w · Σ_s [mean max(0, 1 − D_s(real)) + mean max(0, 1 + D_s(fake))]
  (= −mean min(D(real) − 1, 0) − mean min(−D(fake) − 1, 0), the fake detached by the caller)
* feature matching: L_FM = Σ_s Σ_k w_k · mean|D_s,k(real) − D_s,k(prediction)|, over the
  outputs of the k discriminator blocks (the real side gets no gradient).

Patch logits are unbounded reals; every result is a scalar ≥ 0 except L_G (any sign).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.discriminator import DiscriminatorOutput

__all__ = ["feature_matching_loss", "hinge_discriminator_loss", "hinge_generator_loss"]

DiscriminatorOutputs = Mapping[float, DiscriminatorOutput]


def _same_scales(first: DiscriminatorOutputs, second: DiscriminatorOutputs) -> None:
    if set(first) != set(second):
        raise InvalidArgumentError(
            f"discriminator outputs at scales {sorted(first)} and {sorted(second)}: call the same discriminator on both"
        )


def _zero(outputs: DiscriminatorOutputs) -> torch.Tensor:
    """A scalar 0 on the outputs' device and dtype (the sums start from it)."""
    return next(iter(outputs.values())).prediction_map.new_zeros(())


def hinge_generator_loss(fake: DiscriminatorOutputs, weight: float = 1.0) -> torch.Tensor:
    """w · Σ_s −mean D_s(prediction); gradients flow into the prediction. Scalar."""
    return weight * sum((-output.prediction_map.mean() for output in fake.values()), _zero(fake))


def hinge_discriminator_loss(
    real: DiscriminatorOutputs, fake: DiscriminatorOutputs, weight: float = 1.0
) -> torch.Tensor:
    """w · Σ_s [mean relu(1 − D_s(real)) + mean relu(1 + D_s(fake))]; pass the fake from a detached prediction. Scalar ≥ 0."""
    _same_scales(real, fake)
    total = _zero(fake)
    for scale, real_output in real.items():
        total = total + F.relu(1 - real_output.prediction_map).mean() + F.relu(1 + fake[scale].prediction_map).mean()
    return weight * total


def feature_matching_loss(
    real: DiscriminatorOutputs, fake: DiscriminatorOutputs, block_weights: Sequence[float]
) -> torch.Tensor:
    """Σ_s Σ_k w_k · mean|D_s,k(real) − D_s,k(fake)| with the real features detached. Scalar ≥ 0.

    Raises:
        InvalidArgumentError: different scales, or not one weight per discriminator block.
    """
    _same_scales(real, fake)
    total = _zero(fake)
    for scale, real_output in real.items():
        fake_maps = fake[scale].feature_maps
        if len(block_weights) != len(fake_maps):
            raise InvalidArgumentError(
                f"feature matching: {len(block_weights)} weights for {len(fake_maps)} discriminator blocks; "
                "give one weight per block (losses.feature_matching)"
            )
        for weight, true, generated in zip(block_weights, real_output.feature_maps, fake_maps):
            if weight:
                total = total + weight * F.l1_loss(generated, true.detach())
    return total
