"""ExpNet: per-frame expression coefficients from audio.

Each frame is predicted independently from its own 200 ms mel window, the
reference expression of that frame and the eye-blink control ratio:
``expression_t = head([audio_embedding_t ‖ reference_expression_t ‖ blink_t])``.
The output is the expression itself, not a residual on the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tavce.models.audio_encoder import AudioEncoder, Wav2LipAudioEncoder
from tavce.models.base import TavceModule

__all__ = [
    "ENCODER_BATCH",
    "encode_windows",
    "ExpressionNetConfig",
    "ExpressionNet",
]

# Windows sent through the audio encoder at once: bounds memory on long clips
# (about 10 MB of activations per batch; at 256 the 40 MB batches left glibc holding
# 100-170 MiB more at the planning peak, varying run to run) without changing any result.
ENCODER_BATCH = 64


def encode_windows(encoder: AudioEncoder, windows: torch.Tensor, batch: int = ENCODER_BATCH) -> torch.Tensor:
    """(N, 1, 80, 16) mel windows -> (N, D) embeddings, ``batch`` windows per encoder call.

    The encoder is per-window (eval-mode BatchNorm), so splitting is exact.
    """
    if windows.shape[0] == 0:
        return windows.new_zeros(0, encoder.embedding_dim)
    return torch.cat([encoder(part) for part in windows.split(batch)], dim=0)


@dataclass(frozen=True)
class ExpressionNetConfig:
    """Sizes of ExpNet; the defaults are the official ones.

    Attributes:
        expression_dim: 3DMM expression coefficients predicted per frame (64).
    """

    expression_dim: int = 64


class ExpressionNet(TavceModule):
    """Audio encoder (Wav2Lip by default) + one Linear(D + 64 + 1 -> 64) head, D = 512 for Wav2Lip."""

    config_class = ExpressionNetConfig
    component_slots = {"audio_encoder": "audio_encoder"}

    def __init__(
        self, config: ExpressionNetConfig = ExpressionNetConfig(), *, audio_encoder: AudioEncoder | None = None
    ) -> None:
        super().__init__(config)
        self.audio_encoder = audio_encoder if audio_encoder is not None else Wav2LipAudioEncoder()
        self.head = nn.Linear(self.audio_encoder.embedding_dim + config.expression_dim + 1, config.expression_dim)

    def forward(
        self, windows: torch.Tensor, reference_expression: torch.Tensor, blink_ratio: torch.Tensor
    ) -> torch.Tensor:
        """Predict expressions.

        Args:
            windows: (N, 1, 80, 16) mel windows in [-4, 4], one per frame.
            reference_expression: (N, 64) expression the face starts from, per frame.
            blink_ratio: (N, 1) eye closure control in [0, 1] (0 = eyes as in the reference).

        Returns:
            (N, 64) expression coefficients.
        """
        embeddings = encode_windows(self.audio_encoder, windows)
        return self.head(torch.cat([embeddings, reference_expression, blink_ratio], dim=1))
