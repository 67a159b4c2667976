"""Tiny stage-2 trainers and batches for the tests: 128×128 frames, the tiny components of tavce.testing, small VGG and discriminator."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

from tavce.models.renderer.discriminator import DiscriminatorConfig
from tavce.preprocess.mouth import mouth_centre
from tavce.testing import synthetic_face_landmarks, tiny_components
from tavce.training.renderer import RendererTrainer, RendererTrainingConfig, VGG19Config, VGG19Features, ablation_config
from tests.helpers import SyntheticFaceLandmarker

SIZE = 128
TINY_VGG = VGG19Config(widths=(4, 8, 8, 16, 16))


def tiny_training_config(variant: str = "full", **changes) -> RendererTrainingConfig:
    """The paper's settings with a tiny discriminator, for the named Table IV variant."""
    base = RendererTrainingConfig(discriminator=DiscriminatorConfig(base_channels=4, max_channels=16), batch_size=2)
    return dataclasses.replace(ablation_config(variant, base), **changes)


@functools.cache
def cached_tiny_components(seed: int = 0, cerl: bool = True) -> dict:
    """tavce.testing.tiny_components, built once per session (the trainers copy the renderer; the metric is frozen)."""
    return tiny_components(seed, cerl=cerl)


def tiny_trainer(variant: str = "full", *, landmarker=None, seed: int = 0, **changes) -> RendererTrainer:
    """A trainer over tavce.testing's tiny renderer and metric."""
    components = cached_tiny_components(seed)
    config = tiny_training_config(variant, **changes)
    torch.manual_seed(seed)
    return RendererTrainer.from_renderer(
        components["renderer"],
        components["metric"],
        config,
        landmarker=landmarker or SyntheticFaceLandmarker(),
        perceptual_network=VGG19Features(TINY_VGG),
        image_size=SIZE,
    )


def tiny_batch(batch: int = 2, size: int = SIZE, seed: int = 0) -> dict[str, torch.Tensor]:
    """A stage-2 batch with the RendererDataset's keys and shapes: random frames, coefficients and mels."""
    generator = torch.Generator().manual_seed(seed)
    centre = mouth_centre(synthetic_face_landmarks(size))
    return {
        "source_image": torch.rand(batch, 3, size, size, generator=generator),
        "previous_image": torch.rand(batch, 3, size, size, generator=generator),
        "driving_image": torch.rand(batch, 3, size, size, generator=generator),
        "source_coefficients": 0.1 * torch.randn(batch, 73, 1, generator=generator).expand(-1, -1, 27).contiguous(),
        "driving_coefficients": 0.1 * torch.randn(batch, 73, 27, generator=generator),
        "mels": (8 * torch.rand(batch, 2, 1, 80, 16, generator=generator) - 4),
        "mouth_centres": torch.tensor(np.array([[centre, centre]] * batch), dtype=torch.int64),
        "indices": torch.tensor([[3, 5, 6]] * batch),
    }

