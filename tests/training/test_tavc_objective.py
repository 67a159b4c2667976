"""The stage-1 objective: its terms, its logged similarity, and that it trains."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tavce.errors import InvalidArgumentError
from tavce.models.tavc import (
    MouthEncoder,
    MouthEncoderConfig,
    TAVCAudioEncoder,
    TAVCAudioEncoderConfig,
    TAVCMetric,
    relationship_matrix,
)
from tavce.training.tavc import SimilarityAverage, stage_one_losses, stage_one_objective

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
            losses = stage_one_losses(metric, *held_out)
        return losses.cos_positive.mean().item() - losses.cos_negative.mean().item(), losses

    gap_before, _ = ranking()
    for _ in range(60):
        losses = stage_one_losses(metric, *toy_batch(data, audio_map, image_map, batch=16))
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
    stage_one_losses(metric, windows, mouths).total.backward()
    assert metric.audio_encoder.backbone.blocks[0].conv.weight.grad.abs().sum() > 0
    assert metric.audio_encoder.projection.weight.grad.abs().sum() > 0
    assert metric.mouth_encoder.stem[0].weight.grad.abs().sum() > 0
    assert metric.mouth_encoder.embedding_norm.weight.grad is None  # fixed to 1, as in TAVCE


def test_stage_one_losses_check_their_inputs():
    metric = TAVCMetric(audio_encoder=tiny_audio_encoder(), mouth_encoder=MouthEncoder(TINY_MOUTH))
    mouths = torch.zeros(2, 3, 3, 16, 16)
    with pytest.raises(InvalidArgumentError, match="frames i, i\\+1"):
        stage_one_losses(metric, torch.zeros(2, 4, *WINDOW), mouths)
    with pytest.raises(InvalidArgumentError, match="mouths must be"):
        stage_one_losses(metric, torch.zeros(2, 3, *WINDOW), torch.zeros(2, 2, 3, 16, 16))
    with torch.no_grad():
        losses = stage_one_losses(metric.eval(), torch.zeros(2, 3, *WINDOW), mouths)
    assert losses.cos_positive.shape == (2,) and losses.total.ndim == 0


def test_stage_one_objective_terms():
    generator = torch.Generator().manual_seed(4)
    audio, positive, negative = torch.randn(3, 3, 32, generator=generator).unbind(0)
    losses = stage_one_objective(audio, positive, negative, alpha=0.5)
    flat = lambda a, b: 1 - F.cosine_embedding_loss(  # noqa: E731
        relationship_matrix(a).flatten(1), relationship_matrix(b).flatten(1), torch.ones(3), reduction="none"
    )
    torch.testing.assert_close(losses.positive, (1 - flat(audio, positive)).mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(losses.negative, flat(audio, negative).mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(losses.total, losses.positive + 0.5 * losses.negative)
    logged = F.cosine_similarity(relationship_matrix(audio), relationship_matrix(positive), dim=-1).mean()
    torch.testing.assert_close(losses.logged_positive, logged)


def test_similarity_average_warms_up_then_keeps_its_momentum():
    average = SimilarityAverage(momentum=0.9, warmup=3)
    assert average.update(1.0) == 1.0  # momentum 0 at the first update
    assert average.update(0.0) == pytest.approx(0.45 * 1.0)  # momentum 0.45
    assert average.update(0.0) == pytest.approx(0.45 * 0.9)
    assert average.update(1.0) == pytest.approx(0.45 * 0.9 * 0.9 + 0.1)
