"""CAR, the correlation-aware regulariser of TAVCE stage 2 (paper Eq. 6).

The generated frame's mouth should move away from the previous *real* frame's
mouth the way the audio changes between the two frames. Our definition (the
released TAVCE code returns the two flattened matrices but no trainer reduces
them):

    L_CAR = weight · mean_b[1 − S(vec R_a, vec R̂_v)] = weight · mean_b[1 − cos²(δa, δv̂)],

δa = a_{t−1} − a_t from the frozen audio encoder, δv̂ = v(previous real mouth) −
v(generated mouth) from the frozen mouth encoder, S the cosine with
``F.cosine_embedding_loss``'s eps, weight 0.1. Gradients reach the generator only
through the generated mouth crop; the encoders stay frozen and in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.tavc import TemporalCorrelationMetric

__all__ = ["DEFAULT_CAR_WEIGHT", "CARLoss"]

DEFAULT_CAR_WEIGHT = 0.1


class CARLoss(nn.Module):
    """Correlation-aware regularisation over a frozen TAVC metric.

    Args:
        metric: the stage-1 metric (e.g. :class:`~tavce.models.tavc.TAVCMetric`);
            its parameters are frozen and, if it is a module, it is kept in eval mode.
        weight: loss weight (``cmtc: 0.1`` in TAVCE's config).
    """

    def __init__(self, metric: TemporalCorrelationMetric, weight: float = DEFAULT_CAR_WEIGHT) -> None:
        super().__init__()
        self.metric = metric
        self.weight = weight
        if isinstance(metric, nn.Module):
            metric.requires_grad_(False)
            metric.eval()

    def train(self, mode: bool = True) -> CARLoss:
        """The metric stays in eval mode (running BatchNorm statistics) whatever the trainer sets."""
        super().train(mode)
        if isinstance(self.metric, nn.Module):
            self.metric.eval()
        return self

    def audio_relationship(self, previous_windows: torch.Tensor, current_windows: torch.Tensor) -> torch.Tensor:
        """(B, D) target relationship of windows t−1 and t, without gradient (also CERL's input)."""
        with torch.no_grad():
            return self.metric.audio_relationship(previous_windows, current_windows)

    def forward(
        self, audio_relationship: torch.Tensor, previous_mouths: torch.Tensor, generated_mouths: torch.Tensor
    ) -> torch.Tensor:
        """Scalar loss.

        Args:
            audio_relationship: (B, D) factors δa (detached here).
            previous_mouths: (B, 3, S, S) mouth crops of the previous real frames, in [−1, 1] (detached here).
            generated_mouths: (B, 3, S, S) mouth crops of the generated frames, in [−1, 1]
                (see :func:`tavce.preprocess.mouth.crop_mouths`, differentiable).
        """
        if previous_mouths.shape != generated_mouths.shape or previous_mouths.shape[0] != audio_relationship.shape[0]:
            raise InvalidArgumentError(
                f"CARLoss: previous_mouths {tuple(previous_mouths.shape)} and generated_mouths "
                f"{tuple(generated_mouths.shape)} must have the same shape and as many rows as "
                f"audio_relationship {tuple(audio_relationship.shape)}"
            )
        visual_relationship = self.metric.visual_relationship(previous_mouths.detach(), generated_mouths)
        similarity = self.metric.similarity(audio_relationship.detach(), visual_relationship)
        return self.weight * (1 - similarity).mean()
