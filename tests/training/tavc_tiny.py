"""Tiny stage-1 set-ups shared by the trainer tests and their torchrun worker script."""

from __future__ import annotations

import dataclasses

from torch import nn

from tavce.models.tavc import MouthEncoder, MouthEncoderConfig, TAVCAudioEncoder, TAVCAudioEncoderConfig, TAVCMetric
from tavce.training.tavc import TAVCTrainingConfig

EMBEDDING = 16
TINY_MOUTH = MouthEncoderConfig(
    image_size=112, stem_channels=4, stage_channels=(4, 8, 8, 8), blocks_per_stage=(1, 1, 1, 1), embedding_dim=EMBEDDING
)


class TinyAudioBackbone(nn.Sequential):
    """(N, 1, 80, 16) mel windows -> (N, 32): pooled, one linear layer (no BatchNorm)."""

    embedding_dim = 32

    def __init__(self) -> None:
        super().__init__(nn.AvgPool2d((4, 2)), nn.Flatten(), nn.Linear(20 * 8, self.embedding_dim), nn.ReLU())


class TinyMouthEncoder(nn.Sequential):
    """(N, 3, 112, 112) crops -> (N, 16): pooled, two linear layers (no BatchNorm)."""

    embedding_dim = EMBEDDING

    def __init__(self) -> None:
        super().__init__(nn.AvgPool2d(8), nn.Flatten(), nn.Linear(3 * 14 * 14, 32), nn.ReLU(), nn.Linear(32, EMBEDDING))


def tiny_metric(batch_norm: bool = True) -> TAVCMetric:
    """A small metric: the tiny audio backbone, and the real IResNet (``batch_norm``) or a BatchNorm-free encoder."""
    return TAVCMetric(
        audio_encoder=TAVCAudioEncoder(TAVCAudioEncoderConfig(EMBEDDING), backbone=TinyAudioBackbone()),
        mouth_encoder=MouthEncoder(TINY_MOUTH) if batch_norm else TinyMouthEncoder(),
    )


def tiny_config(**changes) -> TAVCTrainingConfig:
    """CPU, no workers, no progress bar, figures every step; the metric is passed in (not exported)."""
    config = TAVCTrainingConfig(
        embedding_dim=EMBEDDING,
        mouth_encoder=TINY_MOUTH,
        batch_size=2,
        repeats=4,
        epochs=None,
        max_steps=4,
        learning_rate=1e-3,
        device="cpu",
        num_workers=0,
        log_every=1,
        progress=False,
        export_metric=False,
    )
    return dataclasses.replace(config, **changes)
