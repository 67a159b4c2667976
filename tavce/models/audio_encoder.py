"""The Wav2Lip audio encoder shared by ExpNet, PoseVAE and the TAVC metric.

Thirteen conv blocks (Conv2d + BatchNorm + ReLU, residual blocks add their input
before the ReLU) turn one 80x16 mel window into a 512-d embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

from tavce.models.base import TavceModule

__all__ = [
    "AudioEncoder",
    "ConvBlock",
    "Wav2LipAudioEncoderConfig",
    "Wav2LipAudioEncoder",
]

# (in, out, kernel, stride, padding, residual) per block, as in the Wav2Lip recipe.
_BLOCKS: tuple[tuple[int, int, int, int | tuple[int, int], int, bool], ...] = (
    (1, 32, 3, 1, 1, False),
    (32, 32, 3, 1, 1, True),
    (32, 32, 3, 1, 1, True),
    (32, 64, 3, (3, 1), 1, False),
    (64, 64, 3, 1, 1, True),
    (64, 64, 3, 1, 1, True),
    (64, 128, 3, 3, 1, False),
    (128, 128, 3, 1, 1, True),
    (128, 128, 3, 1, 1, True),
    (128, 256, 3, (3, 2), 1, False),
    (256, 256, 3, 1, 1, True),
    (256, 512, 3, 1, 0, False),
    (512, 512, 1, 1, 0, False),
)


@runtime_checkable
class AudioEncoder(Protocol):
    """Maps mel windows (N, 1, 80, 16) in [-4, 4] to embeddings (N, embedding_dim).

    ExpNet, the PoseVAE and the TAVC audio encoder take one as their ``audio_encoder``
    (``backbone`` for the TAVC encoder) constructor argument. Each window must be encoded
    independently of the others in its batch (eval mode), so that batching never changes
    a result. To be saved with the component that holds it, make it a
    :class:`~tavce.models.base.TavceModule`.
    """

    @property
    def embedding_dim(self) -> int:
        """D, the size of one embedding."""
        ...

    def __call__(self, windows: torch.Tensor) -> torch.Tensor: ...


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d + ReLU, with the input added before the ReLU when ``residual``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride, padding: int, residual: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding)
        self.norm = nn.BatchNorm2d(out_channels)
        self.residual = residual

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(features))
        if self.residual:
            out = out + features
        return F.relu(out)


@dataclass(frozen=True)
class Wav2LipAudioEncoderConfig:
    """No free sizes: the architecture is fixed by the official checkpoints."""

    embedding_dim: int = 512


class Wav2LipAudioEncoder(TavceModule):
    """Wav2Lip audio encoder: (N, 1, 80, 16) mel windows in [-4, 4] -> (N, 512) embeddings (>= 0)."""

    config_class = Wav2LipAudioEncoderConfig

    def __init__(self, config: Wav2LipAudioEncoderConfig | None = None) -> None:
        super().__init__(config or Wav2LipAudioEncoderConfig())
        self.blocks = nn.Sequential(*(ConvBlock(*spec) for spec in _BLOCKS))

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Args: windows (N, 1, 80, 16). Returns (N, 512)."""
        return self.blocks(windows).flatten(1)

