"""TAVC relationships, encoders, per-frame audio relationships and the mouth crop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.models.tavc import (
    MouthEncoder,
    MouthEncoderConfig,
    TAVCAudioEncoder,
    TAVCAudioEncoderConfig,
    TAVCMetric,
    TemporalCorrelationMetric,
    flattened_cosine,
    relationship_factor,
    relationship_matrix,
    relationships_from_embeddings,
    row_cosine,
    temporal_relationship,
)
from tavce.preprocess.mouth import crop_mouth, crop_mouths, mouth_box, mouth_centre
from tavce.types import AudioWindows

TINY_MOUTH = MouthEncoderConfig(
    image_size=16, stem_channels=4, stage_channels=(4, 8, 8, 8), blocks_per_stage=(1, 2, 1, 1), embedding_dim=8
)


def factors(seed: int, batch: int = 5, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, size, generator=generator), torch.randn(batch, size, generator=generator)


# --- relationships -----------------------------------------------------------------------------


def test_covariance_is_half_the_outer_product_of_the_difference():
    first, second = factors(0)
    covariance = temporal_relationship(first, second)
    assert covariance.shape == (5, 32, 32)
    torch.testing.assert_close(covariance, relationship_matrix(relationship_factor(first, second)))
    assert torch.linalg.matrix_rank(covariance[0]).item() == 1
    assert temporal_relationship(first, first).abs().max() == 0  # frame 0 pairs a window with itself


def test_similarities_from_factors_equal_pytorch_on_the_matrices():
    audio, visual = factors(1)
    audio[1] = 0  # a zero relationship (frame 0)
    audio[2, :4] = 0  # zero rows
    audio_matrix, visual_matrix = relationship_matrix(audio), relationship_matrix(visual)
    flat = 1 - F.cosine_embedding_loss(
        audio_matrix.flatten(1), visual_matrix.flatten(1), torch.ones(5), reduction="none"
    )
    torch.testing.assert_close(flattened_cosine(audio, visual), flat, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(row_cosine(audio, visual), F.cosine_similarity(audio_matrix, visual_matrix, dim=-1))
    assert flattened_cosine(audio, visual)[1] == 0


def test_flattened_cosine_is_the_squared_cosine_and_loses_the_sign():
    audio, visual = factors(2)
    squared = F.cosine_similarity(audio, visual).square()
    torch.testing.assert_close(flattened_cosine(audio, visual), squared, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(flattened_cosine(-audio, visual), flattened_cosine(audio, visual))
    assert flattened_cosine(audio, -audio).min() > 0.9999


def test_row_cosine_is_the_sign_of_each_product_times_the_cosine():
    audio, visual = factors(3)
    expected = torch.sign(audio * visual) * F.cosine_similarity(audio, visual).unsqueeze(1)
    torch.testing.assert_close(row_cosine(audio, visual), expected, atol=1e-6, rtol=1e-5)


def test_relationship_shapes_are_checked():
    with pytest.raises(InvalidArgumentError, match="same shape"):
        relationship_factor(torch.zeros(2, 8), torch.zeros(3, 8))
    with pytest.raises(InvalidArgumentError, match=r"\(B, D\)"):
        flattened_cosine(torch.zeros(8), torch.zeros(8))
    with pytest.raises(InvalidArgumentError):
        relationship_matrix(torch.zeros(2, 3, 4))


# --- per-frame audio relationships -------------------------------------------------------------


def test_relationships_from_embeddings_pair_each_frame_with_the_previous_one():
    embeddings = torch.randn(6, 16, generator=torch.Generator().manual_seed(0))
    relationship = relationships_from_embeddings(embeddings)
    assert relationship.num_frames == 6
    assert relationship.differences[0].abs().max() == 0
    torch.testing.assert_close(relationship.differences[1:], embeddings[:-1] - embeddings[1:])
    expected = temporal_relationship(embeddings[2:3], embeddings[3:4])[0]
    torch.testing.assert_close(relationship.as_matrices()[3], expected)
    with pytest.raises(InvalidArgumentError):
        relationships_from_embeddings(torch.zeros(0, 16))


@pytest.fixture(scope="module")
def audio_encoder() -> TAVCAudioEncoder:
    torch.manual_seed(0)
    return TAVCAudioEncoder(TAVCAudioEncoderConfig(embedding_dim=16)).eval()


def test_audio_relationships_of_no_frame_are_refused(audio_encoder):
    metric = TAVCMetric(audio_encoder=audio_encoder, mouth_encoder=MouthEncoder(dataclasses.replace(TINY_MOUTH, embedding_dim=16)))
    empty = AudioWindows(torch.zeros(0, 1, 80, 16))
    for relationships in (metric.audio_relationships, lambda w: TemporalCorrelationMetric.audio_relationships(metric, w)):
        with pytest.raises(InvalidArgumentError, match="no frame; give at least 0.04 s of audio"):
            relationships(empty)


def test_audio_relationships_in_batches_equal_the_original_pairwise_computation(audio_encoder, monkeypatch):
    from tavce.models.tavc import metric as metric_module

    metric = TAVCMetric(audio_encoder=audio_encoder, mouth_encoder=MouthEncoder(dataclasses.replace(TINY_MOUTH, embedding_dim=16)))
    windows = AudioWindows(torch.rand(7, 1, 80, 16, generator=torch.Generator().manual_seed(1)) * 8 - 4)
    with torch.no_grad():
        whole = metric.audio_relationships(windows)
        monkeypatch.setattr(metric_module, "RELATIONSHIP_BATCH", 3)
        batched = metric.audio_relationships(windows)
        # the interface's generic default: pairs through audio_relationship, in batches too
        generic = TemporalCorrelationMetric.audio_relationships(metric, windows)
        # the original encodes windows [max(j-1, 0), j] for every frame j separately
        pairwise = []
        for frame in range(windows.num_frames):
            pair = audio_encoder(windows.windows[[max(frame - 1, 0), frame]])
            pairwise.append(temporal_relationship(pair[:1], pair[1:])[0])
    assert batched.differences.shape == (7, 16)
    torch.testing.assert_close(batched.differences, whole.differences)
    torch.testing.assert_close(generic.differences, whole.differences, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(batched.as_matrices(), torch.stack(pairwise), atol=1e-6, rtol=1e-5)
    assert batched.differences[0].abs().max() == 0


def test_audio_encoder_refuses_wrong_windows(audio_encoder):
    assert audio_encoder(torch.zeros(2, 1, 80, 16)).shape == (2, 16)
    with pytest.raises(InvalidArgumentError, match=r"\(N, 1, 80, 16\)"):
        audio_encoder(torch.zeros(2, 80, 16))
    with pytest.raises(InvalidArgumentError, match="frame_windows"):
        audio_encoder(torch.zeros(2, 1, 80, 12))


# --- mouth encoder and metric -------------------------------------------------------------------


def test_mouth_encoder_shapes_and_official_layout():
    encoder = MouthEncoder(TINY_MOUTH).eval()
    assert encoder(torch.zeros(3, 3, 16, 16)).shape == (3, 8)
    assert encoder.projection.in_features == 8 * 1 * 1
    official = MouthEncoder()
    assert official.projection.in_features == 25_088 and official.config.final_size == 7
    assert not official.embedding_norm.weight.requires_grad
    assert torch.all(official.embedding_norm.weight == 1)
    with pytest.raises(InvalidArgumentError, match=r"\(N, 3, 16, 16\)"):
        encoder(torch.zeros(3, 3, 112, 112))
    with pytest.raises(InvalidArgumentError, match="multiple of 16"):
        MouthEncoderConfig(image_size=100)
    with pytest.raises(InvalidArgumentError, match="length"):
        MouthEncoderConfig(blocks_per_stage=(2, 2))


def test_mouth_encoder_round_trips_through_save_pretrained(tmp_path):
    torch.manual_seed(0)
    encoder = MouthEncoder(TINY_MOUTH).eval()
    encoder.save_pretrained(tmp_path)
    loaded = MouthEncoder.from_pretrained(tmp_path)
    assert loaded.config == TINY_MOUTH
    mouths = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded(mouths), encoder(mouths))


def test_metric_checks_embedding_sizes_and_gives_relationships(audio_encoder):
    with pytest.raises(InvalidArgumentError, match="embedding size 16 differs"):
        TAVCMetric(audio_encoder=audio_encoder, mouth_encoder=MouthEncoder(TINY_MOUTH))
    metric = TAVCMetric(audio_encoder=audio_encoder, mouth_encoder=MouthEncoder(dataclasses.replace(TINY_MOUTH, embedding_dim=16)))
    metric.eval()
    windows, mouths = torch.zeros(2, 3, 1, 80, 16), torch.zeros(2, 3, 3, 16, 16)
    with torch.no_grad():
        assert metric.audio_relationship(windows[:, 0], windows[:, 1]).shape == (2, 16)
        assert metric.visual_relationship(mouths[:, 0], mouths[:, 2]).shape == (2, 16)


# --- mouth crop --------------------------------------------------------------------------------


def test_mouth_centre_is_the_truncated_median_of_the_mouth_points():
    landmarks = np.zeros((68, 2))
    landmarks[48:68] = np.stack([np.arange(20) + 100.0, np.arange(20) * 0.5 + 150.7], axis=1)
    assert mouth_centre(landmarks) == (109, 155)  # medians 109.5 and 155.45, truncated
    with pytest.raises(InvalidArgumentError, match="68"):
        mouth_centre(np.zeros((5, 2)))


def test_mouth_box_is_shifted_inside_the_frame():
    assert mouth_box((128, 140), 256, 256) == (104, 92)
    assert mouth_box((10, 250), 256, 256) == (184, 0)  # centre clamped to [36, 220]
    with pytest.raises(InvalidImageError, match="smaller"):
        mouth_box((10, 10), 50, 256)


def test_numpy_and_tensor_crops_agree():
    generator = np.random.default_rng(0)
    frame = generator.integers(0, 256, (256, 256, 3)).astype(np.uint8)
    centre = (200, 230)
    crop = crop_mouth(frame, centre)
    assert crop.shape == (3, 112, 112) and crop.dtype == np.float32
    assert crop.min() >= -1 and crop.max() <= 1
    top, left = mouth_box(centre, 256, 256)
    assert crop[:, 0, 0] == pytest.approx(frame[top, left] / 127.5 - 1, abs=1e-6)
    tensor = torch.from_numpy(frame).permute(2, 0, 1).float().unsqueeze(0) / 255
    batch = crop_mouths(tensor, torch.tensor([centre]))
    np.testing.assert_allclose(batch[0].numpy(), crop, atol=1e-4)
    with pytest.raises(InvalidArgumentError, match=r"\(B, 2\)"):
        crop_mouths(tensor, torch.tensor(centre))
    with pytest.raises(InvalidImageError):
        crop_mouth(frame[..., 0], centre)
