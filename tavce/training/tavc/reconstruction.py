"""The stage-1 auxiliary reconstruction term of the original code.

Not in the paper. Two generators predict each mouth crop of the
adjacent pair from the other crop and the audio relationship:

    x̂_{i+1} = G₁(R_a, mouth_i),   x̂_i = G₂(R_a, mouth_{i+1}),
    L_rec = mean_b LPIPS(x̂_{i+1}, mouth_{i+1}) + mean_b LPIPS(x̂_i, mouth_i).

It trains the generators and, through R_a, the audio encoder (not the mouth
encoder: the crops enter as data). The generators are discarded after stage 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.cerl import channel_weights
from tavce.training.perceptual import PerceptualDistance

__all__ = ["ReconstructionGeneratorConfig", "ReconstructionLoss", "RelationshipGenerator"]


@dataclass(frozen=True)
class ReconstructionGeneratorConfig:
    """Sizes of an auxiliary generator; the defaults are the original's.

    Attributes:
        base_channels: width after the stem; each of the ``downsamplings`` doubles it (64 → 512).
        downsamplings: stride-2 convolutions (112 → 14 with 3).
        blocks_before_fusion, blocks_after_fusion: residual blocks around the relationship fusion (5, 4).
    """

    base_channels: int = 64
    downsamplings: int = 3
    blocks_before_fusion: int = 5
    blocks_after_fusion: int = 4


def _norm(channels: int) -> nn.InstanceNorm2d:
    # The original's InstanceNorm: no affine, running statistics tracked (used in eval mode only).
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=True)


class ResidualBlock(nn.Module):
    """x + IN(conv3×3(ReLU(IN(conv3×3(x))))) with reflection padding."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )  # fmt: skip

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.body(features)


class RelationshipGenerator(nn.Module):
    """Mouth crop (B, 3, S, S) in [−1, 1] + audio relationship factor (B, D) -> crop (B, 3, S, S) in [−1, 1].

    Encoder (stem 7×7, ``downsamplings`` stride-2 convs, residual blocks), relationship
    fusion F ← F + proj₂(w ⊙ proj₁(F)) with w the diagonal of the row-normalised
    relationship (CERL's gate, :func:`~tavce.models.renderer.cerl.channel_weights`),
    residual blocks, transposed-conv decoder, 7×7 conv and tanh.
    """

    def __init__(self, relationship_dim: int, config: ReconstructionGeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config or ReconstructionGeneratorConfig()
        self.relationship_dim = relationship_dim
        width = self.config.base_channels
        encoder: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7), _norm(width), nn.ReLU()]
        for _ in range(self.config.downsamplings):
            encoder += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), _norm(2 * width), nn.ReLU()]
            width *= 2
        encoder += [ResidualBlock(width) for _ in range(self.config.blocks_before_fusion)]
        self.encoder = nn.Sequential(*encoder)
        self.project_in = nn.Sequential(nn.Conv2d(width, relationship_dim, 1, bias=False), _norm(relationship_dim))
        self.project_out = nn.Sequential(nn.Conv2d(relationship_dim, width, 1, bias=False), _norm(width))
        decoder: list[nn.Module] = [ResidualBlock(width) for _ in range(self.config.blocks_after_fusion)]
        for _ in range(self.config.downsamplings):
            decoder += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                _norm(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        decoder += [nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    def forward(self, mouths: torch.Tensor, relationship: torch.Tensor) -> torch.Tensor:
        if relationship.ndim != 2 or relationship.shape != (mouths.shape[0], self.relationship_dim):
            raise InvalidArgumentError(
                f"RelationshipGenerator: relationship must be (B, {self.relationship_dim}) for {mouths.shape[0]} "
                f"crops, got {tuple(relationship.shape)}"
            )
        features = self.encoder(mouths)
        weights = channel_weights(relationship, self.relationship_dim).to(features.dtype)
        features = features + self.project_out(weights[:, :, None, None] * self.project_in(features))
        return self.decoder(features)


class ReconstructionLoss(nn.Module):
    """L_rec of the adjacent pair: two generators and a frozen :class:`PerceptualDistance`.

    Args:
        relationship_dim: D, the metric's embedding size.
        distance: the LPIPS-style distance (its weights from a file).
        config: generator sizes.
    """

    def __init__(
        self, relationship_dim: int, distance: PerceptualDistance, config: ReconstructionGeneratorConfig | None = None
    ) -> None:
        super().__init__()
        self.forward_generator = RelationshipGenerator(relationship_dim, config)  # G₁: frame i -> i+1
        self.backward_generator = RelationshipGenerator(relationship_dim, config)  # G₂: frame i+1 -> i
        self.distance = distance

    def forward(
        self, audio_relationship: torch.Tensor, first_mouths: torch.Tensor, next_mouths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scalar L_rec and the (B, 3, S, S) prediction of frame i+1.

        Args:
            audio_relationship: (B, D) factor of windows i, i+1 (its gradient reaches the audio encoder).
            first_mouths, next_mouths: (B, 3, S, S) crops of frames i and i+1 in [−1, 1].
        """
        predicted_next = self.forward_generator(first_mouths, audio_relationship)
        predicted_first = self.backward_generator(next_mouths, audio_relationship)
        loss = self.distance(predicted_next, next_mouths).mean() + self.distance(predicted_first, first_mouths).mean()
        return loss, predicted_next
