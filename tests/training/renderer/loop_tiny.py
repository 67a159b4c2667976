"""Tiny stage-2 loop set-ups shared by the loop tests and their torchrun worker script."""

from __future__ import annotations

import dataclasses

import torch

from tavce.models.renderer.discriminator import DiscriminatorConfig
from tavce.training.data import RendererDatasetConfig
from tavce.training.renderer import (
    RendererRunConfig,
    RendererTrainer,
    RendererTrainingConfig,
    ScheduleConfig,
    VGG19Features,
)
from tests.helpers import SyntheticFaceLandmarker
from tests.training.renderer.tiny import TINY_VGG, cached_tiny_components, tiny_training_config


def loop_config(variant: str = "full", **changes) -> RendererTrainingConfig:
    """Tiny networks, 2 synthetic clips × 2 repeats (4 items), batch 1: 4 steps per epoch.

    The MappingNet's rate drops after epoch 1, so runs of more than 4 steps cross a schedule change.
    """
    config = tiny_training_config(
        variant,
        batch_size=1,
        data=RendererDatasetConfig(repeats=2),
        schedule=ScheduleConfig(epochs=8, milestones=(8,), mapping_milestones=(1,)),
    )
    return dataclasses.replace(config, **changes)


def command_line_config() -> RendererTrainingConfig:
    """For ``tavce train renderer --ablation none`` runs: a small discriminator, 2 clips × 2 repeats, batch 1
    (4 steps per epoch), only the first VGG layer's perceptual term (the command builds the full-size VGG)."""
    return RendererTrainingConfig(
        discriminator=DiscriminatorConfig(base_channels=4, max_channels=16),
        data=RendererDatasetConfig(repeats=2),
        losses=dataclasses.replace(RendererTrainingConfig().losses, perceptual=(10.0, 0.0, 0.0, 0.0, 0.0)),
        batch_size=1,
    )


def loop_trainer(config: RendererTrainingConfig) -> RendererTrainer:
    """A trainer over tavce.testing's tiny renderer (256 px, as the data) and metric, tiny VGG, stand-in landmarker."""
    components = cached_tiny_components(0)
    torch.manual_seed(0)  # the fresh layers (discriminator) start alike in every run and on every rank
    return RendererTrainer.from_renderer(
        components["renderer"], components["metric"], config,
        landmarker=SyntheticFaceLandmarker(), perceptual_network=VGG19Features(TINY_VGG),
    )  # fmt: skip


def run_config(**changes) -> RendererRunConfig:
    """CPU, no workers, no progress bar, figures every step, no export unless asked."""
    return RendererRunConfig(
        **{"device": "cpu", "num_workers": 0, "log_every": 1, "progress": False, "export": False, **changes}
    )
