"""A tiny occlusion-aware SPADE generator with recipe weights, shared by the renderer tests."""

from __future__ import annotations

import dataclasses

import torch

from tavce.models.renderer.generator import GeneratorConfig, OcclusionAwareSPADEGenerator, load_inference_generator
from tavce.testing import reference_state_dict

TINY = GeneratorConfig(
    base_channels=4,
    max_channels=8,
    volume_channels=2,
    volume_depth=4,
    num_volume_blocks=1,
    num_keypoints=3,
    motion_base_channels=4,
    motion_num_blocks=2,
    motion_max_channels=8,
    motion_compressed_channels=2,
    decoder_hidden_channels=8,
    decoder_num_middle_blocks=1,
    decoder_up_channels=(8, 4),
    cerl=True,
    relationship_dim=4,
)
SIZE = TINY.image_size_multiple  # 16


def recipe_weights(module: torch.nn.Module, salt: int = 3) -> dict[str, torch.Tensor]:
    return reference_state_dict({key: value.shape for key, value in module.state_dict().items()}, salt)


def tiny_generator(config: GeneratorConfig = TINY) -> OcclusionAwareSPADEGenerator:
    """Recipe weights through the inference loader (spectral triples folded)."""
    training = OcclusionAwareSPADEGenerator(dataclasses.replace(config, spectral_norm=True))
    return load_inference_generator(recipe_weights(training), config)


def inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, SIZE, SIZE, generator=generator)
    kp_source = torch.rand(1, TINY.num_keypoints, 3, generator=generator) * 1.2 - 0.6
    kp_driving = kp_source + 0.05 * torch.randn(batch, TINY.num_keypoints, 3, generator=generator)
    return image, kp_source, kp_driving
