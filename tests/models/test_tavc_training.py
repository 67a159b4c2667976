"""The TAVC objective trains, and CAR sends gradients only to the generated frame."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tavce.models.tavc import (
    CARLoss,
    MouthEncoder,
    MouthEncoderConfig,
    TAVCAudioEncoder,
    TAVCAudioEncoderConfig,
    TAVCMetric,
)
from tavce.preprocess.mouth import crop_mouths

EMBEDDING = 16
TINY_MOUTH = MouthEncoderConfig(
    image_size=16,
    stem_channels=8,
    stage_channels=(8, 8, 16, 16),
    blocks_per_stage=(1, 1, 1, 1),
    embedding_dim=EMBEDDING,
)
WINDOW = (1, 8, 4)  # toy "mel" windows
LATENT_FREQUENCIES = torch.tensor([0.35, 0.6, 0.9, 1.3])


def tiny_audio_encoder() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(WINDOW), 64), nn.ReLU(), nn.Linear(64, EMBEDDING))


def toy_batch(generator: torch.Generator, audio_map, image_map, batch: int, length: int = 24, tau: int = 3):
    """Clips driven by a 4-d latent trajectory: audio and mouth are two nonlinear views of it.

    Frames i, i+1 (adjacent) and j with |j − i| >= tau (cyclically), as stage 1 samples them.
    """
    phases = torch.rand(batch, 4, generator=generator) * 2 * math.pi
    first = torch.randint(0, length - 1, (batch,), generator=generator)
    distant = (first + torch.randint(tau, length - tau, (batch,), generator=generator)) % length
    times = torch.stack([first, first + 1, distant], dim=1).float()
    latent = torch.sin(times.unsqueeze(-1) * LATENT_FREQUENCIES + phases.unsqueeze(1))
    windows = torch.tanh(latent @ audio_map.T).view(batch, 3, *WINDOW)
    mouths = torch.tanh(latent @ image_map.T).view(batch, 3, 3, TINY_MOUTH.image_size, TINY_MOUTH.image_size)
    return windows, mouths


def test_objective_learns_to_rank_adjacent_pairs_above_distant_ones():
    torch.manual_seed(0)
    data = torch.Generator().manual_seed(0)
    audio_map = torch.randn(math.prod(WINDOW), 4, generator=data)
    image_map = 0.5 * torch.randn(3 * TINY_MOUTH.image_size**2, 4, generator=data)
    metric = TAVCMetric(audio_encoder=tiny_audio_encoder(), mouth_encoder=MouthEncoder(TINY_MOUTH))
    optimiser = torch.optim.Adam(metric.parameters(), lr=3e-3)
    held_out = toy_batch(torch.Generator().manual_seed(1), audio_map, image_map, batch=64)

    def ranking():
        with torch.no_grad():
            losses = metric(*held_out)
        return losses.cos_positive.mean().item() - losses.cos_negative.mean().item(), losses

    gap_before, _ = ranking()
    for _ in range(60):
        losses = metric(*toy_batch(data, audio_map, image_map, batch=16))
        optimiser.zero_grad()
        losses.total.backward()
        optimiser.step()
    gap_after, losses = ranking()

    assert abs(gap_before) < 0.1  # untrained: no preference
    assert gap_after > 0.5
    assert (losses.cos_positive > losses.cos_negative).float().mean() > 0.9
    assert losses.positive < 0.2


def test_stage_one_gradients_reach_both_real_encoders():
    metric = TAVCMetric(audio_encoder=TAVCAudioEncoder(TAVCAudioEncoderConfig(EMBEDDING)), mouth_encoder=MouthEncoder(TINY_MOUTH))
    generator = torch.Generator().manual_seed(0)
    windows = torch.rand(2, 3, 1, 80, 16, generator=generator) * 8 - 4
    mouths = torch.rand(2, 3, 3, 16, 16, generator=generator) * 2 - 1
    metric(windows, mouths).total.backward()
    assert metric.audio_encoder.backbone.blocks[0].conv.weight.grad.abs().sum() > 0
    assert metric.audio_encoder.projection.weight.grad.abs().sum() > 0
    assert metric.mouth_encoder.stem[0].weight.grad.abs().sum() > 0
    assert metric.mouth_encoder.embedding_norm.weight.grad is None  # fixed to 1, as in TAVCE


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
