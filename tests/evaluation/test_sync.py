"""LSE-D / LSE-C: the offset search recovers planted offsets, known scores, SyncNet in syncnet_python's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.evaluation import SyncConfig, SyncNet, SyncNetConfig, load_syncnet, lse, offset_distances, sync_scores
from tavce.evaluation.syncnet import syncnet_mfcc
from tavce.types import SAMPLES_PER_FRAME

TINY_SYNCNET = SyncNetConfig(
    lip_channels=(4, 4, 4, 4, 4, 8), audio_channels=(4, 4, 4, 4, 4, 8), hidden_dim=8, embedding_dim=6
)


def _time_distance(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """|difference of time stamps|; a zero (padding, outside the clip) audio window costs 1."""
    return torch.where(audio[:, 0] == 0, 1.0, (video - audio).abs()[:, 0])


@pytest.mark.parametrize("planted", [-4, 0, 3])
def test_offset_search_finds_a_planted_offset_with_a_synthetic_distance(planted: int) -> None:
    # Embeddings are time stamps: video window t shows audio time t + planted.
    times = torch.arange(1, 41, dtype=torch.float64)[:, None]
    distances = offset_distances(times + planted, times, 15, distance=_time_distance)
    assert distances.shape == (31,) and int(np.argmin(distances)) == 15 + planted
    scores = sync_scores(distances)
    assert scores.offset == -planted  # syncnet_python's sign
    assert scores.distance == pytest.approx(abs(planted) / 40)  # only the windows without audio cost anything
    assert scores.confidence == pytest.approx(float(np.median(distances)) - abs(planted) / 40)


def test_scores_follow_syncnet_pythons_definitions() -> None:
    scores = sync_scores(np.array([3.0, 2.0, 1.0, 2.0, 5.0]))
    assert (scores.distance, scores.confidence, scores.offset) == (1.0, 1.0, 0)  # median 2 − minimum 1
    lse_d, lse_c = scores
    assert (lse_d, lse_c) == (1.0, 1.0)
    assert sync_scores(np.array([0.5, 2.0, 3.0])).offset == 1  # minimum at k = −1: offset = V − index
    with pytest.raises(InvalidArgumentError, match="2V \\+ 1"):
        sync_scores(np.ones(4))


def test_out_of_clip_audio_counts_as_a_zero_embedding() -> None:
    video = torch.ones(3, 2)
    audio = torch.ones(3, 2)
    distances = offset_distances(video, audio, 1)
    # k = −1: windows 0 has no audio (zero vector, distance √2), windows 1, 2 match (≈ 0).
    assert distances[0] == pytest.approx(np.sqrt(2) / 3, abs=1e-5) and distances[1] == pytest.approx(0, abs=1e-5)


class BrightnessLoudnessEncoder:
    """A transparent sync encoder: a video window embeds as its first frame's brightness, an audio
    window as its first step's level (the waveform's mean over 10 ms steps)."""

    image_size = 8

    def audio_features(self, samples: np.ndarray) -> torch.Tensor:
        steps = len(samples) // 160
        return torch.from_numpy(samples[: steps * 160].reshape(steps, 160).mean(axis=1)[None].astype(np.float32))

    def encode_audio(self, windows: torch.Tensor) -> torch.Tensor:
        return windows[:, 0, :, 0]

    def encode_video(self, windows: torch.Tensor) -> torch.Tensor:
        return windows[:, :, 0].mean(dim=(1, 2, 3))[:, None]


@pytest.mark.parametrize("delay", [-2, 0, 5])
def test_lse_recovers_the_delay_between_picture_and_sound(delay: int) -> None:
    levels = np.random.default_rng(0).uniform(0.1, 1.0, size=60)
    samples = np.repeat(levels, SAMPLES_PER_FRAME).astype(np.float32)
    shown = np.roll(levels, delay)  # frame t shows the level of audio frame t − delay
    frames = (
        np.repeat(np.round(shown * 255).astype(np.uint8)[:, None, None, None], 8, axis=1)
        .repeat(8, axis=2)
        .repeat(3, axis=3)
    )
    scores = lse(frames, samples, BrightnessLoudnessEncoder(), SyncConfig(max_offset=6, batch_size=7))
    assert scores.offset == delay and scores.distance < 0.05 and scores.confidence > 0.2
    assert scores.mean_distances.shape == (13,)


def test_lse_with_a_random_syncnet_and_clear_errors() -> None:
    torch.manual_seed(0)
    model = SyncNet(TINY_SYNCNET)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(12, 64, 64, 3), dtype=np.uint8)
    samples = (0.1 * rng.standard_normal(12 * SAMPLES_PER_FRAME)).astype(np.float32)
    scores = lse(frames, samples, model)
    assert np.isfinite(scores.distance) and scores.confidence >= 0 and scores.mean_distances.shape == (31,)
    with pytest.raises(InvalidArgumentError, match="at least 6"):
        lse(frames[:5], samples, model)


def test_mfcc_is_python_speech_features_on_int16_samples() -> None:
    from python_speech_features import mfcc

    samples = (0.1 * np.random.default_rng(2).standard_normal(16000)).astype(np.float32)
    features = syncnet_mfcc(samples)
    assert features.shape == (13, 99)  # 1 + ⌈(16000 − 400) / 160⌉ steps of 10 ms
    np.testing.assert_allclose(features.numpy(), mfcc(samples.astype(np.float64) * 32768, 16000).T, rtol=1e-5)


def test_syncnet_loads_syncnet_pythons_file(tmp_path: Path) -> None:
    keys = SyncNet().state_dict()
    assert keys["netcnnlip.18.weight"].shape == (512, 256, 1, 6, 6) and keys["netfclip.3.weight"].shape == (1024, 512)
    assert keys["netcnnaud.18.weight"].shape == (512, 256, 5, 4)
    torch.manual_seed(0)
    model = SyncNet(TINY_SYNCNET)
    official = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "syncnet_v2.model"
    torch.save(official, path)
    loaded = load_syncnet(path, TINY_SYNCNET)
    video, audio = torch.rand(2, 3, 5, 224, 224), torch.randn(2, 1, 13, 20)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_video(video), model.encode_video(video))
        torch.testing.assert_close(loaded.encode_audio(audio), model.encode_audio(audio))
    with pytest.raises(IncompatibleWeightsError, match="shape mismatch"):
        load_syncnet(path)  # the full-width network does not fit the narrow file
