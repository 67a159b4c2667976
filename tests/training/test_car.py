"""CAR (stage-2 regulariser): one minus the flattened cosine, gradient only to the generated frame."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tavce.models.tavc import MouthEncoder, MouthEncoderConfig, TAVCMetric
from tavce.preprocess.mouth import crop_mouths
from tavce.training.car import CARLoss

EMBEDDING = 16
TINY_MOUTH = MouthEncoderConfig(
    image_size=16, stem_channels=8, stage_channels=(8, 8, 16, 16), blocks_per_stage=(1, 1, 1, 1), embedding_dim=EMBEDDING
)
WINDOW = (1, 8, 4)  # toy "mel" windows


def tiny_audio_encoder() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(WINDOW), 64), nn.ReLU(), nn.Linear(64, EMBEDDING))


@pytest.fixture
def car() -> CARLoss:
    torch.manual_seed(0)
    return CARLoss(TAVCMetric(audio_encoder=tiny_audio_encoder(), mouth_encoder=MouthEncoder(TINY_MOUTH)))


def test_car_gradient_reaches_only_the_generated_frame(car):
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 40, 40, generator=generator)
    generated = torch.rand(2, 3, 40, 40, generator=generator, requires_grad=True)
    previous = frames.clone().requires_grad_(True)
    centres = torch.tensor([[20, 21], [5, 38]])
    audio = car.audio_relationship(*torch.rand(2, 2, *WINDOW, generator=generator).unbind(1))
    # crops of 16 px (box 12) so that the tiny encoder's input size fits
    previous_mouths = crop_mouths(previous, centres, box_size=12, crop_size=16)
    generated_mouths = crop_mouths(generated, centres, box_size=12, crop_size=16)

    car.train()
    loss = car(audio, previous_mouths, generated_mouths)
    loss.backward()

    assert not car.metric.training and not car.metric.mouth_encoder.training
    assert 0 <= loss.item() <= car.weight
    assert all(parameter.grad is None for parameter in car.metric.parameters())
    assert previous.grad is None
    assert generated.grad.abs().sum() > 0
    # only the mouth box (clamped inside the frame) receives gradient
    outside = generated.grad.clone()
    outside[0, :, 15:27, 14:26] = 0
    outside[1, :, 28:40, 0:12] = 0
    assert outside.abs().max() == 0
    assert not audio.requires_grad


def test_car_is_one_minus_the_flattened_cosine(car):
    generator = torch.Generator().manual_seed(3)
    mouths = torch.rand(2, 2, 3, 16, 16, generator=generator) * 2 - 1  # (sample, previous/generated, ...)
    audio = torch.randn(2, EMBEDDING, generator=generator)
    with torch.no_grad():
        embeddings = car.metric.mouth_encoder(mouths.flatten(0, 1)).unflatten(0, (2, 2))
        visual = embeddings[:, 0] - embeddings[:, 1]
        expected = 1 - torch.nn.functional.cosine_similarity(audio, visual).square()
        loss = car(audio, mouths[:, 0], mouths[:, 1])
    assert loss.item() == pytest.approx(0.1 * expected.mean().item(), rel=1e-5)
    # the sign of either difference does not matter (rank-one relationships)
    with torch.no_grad():
        assert car(-audio, mouths[:, 0], mouths[:, 1]).item() == pytest.approx(loss.item(), rel=1e-6)
