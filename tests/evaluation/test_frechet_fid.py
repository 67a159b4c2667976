"""Fréchet distance and FID: known answers, the near-singular fallback, FID's Inception in pytorch-fid's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, TavceError
from tavce.evaluation import FIDInceptionConfig, FIDInceptionV3, fid, frechet_distance, load_fid_inception


def test_identical_sets_are_at_distance_zero() -> None:
    features = np.random.default_rng(0).normal(size=(200, 16))
    assert abs(frechet_distance(features, features)) < 1e-6


def test_a_shift_adds_its_squared_norm() -> None:
    features = np.random.default_rng(1).normal(size=(300, 16))
    assert frechet_distance(features, features + 0.5) == pytest.approx(16 * 0.25, abs=1e-3)


def test_scaled_gaussians_follow_the_closed_form() -> None:
    # 2x − m has the same mean m and covariance 4Σ (commuting with Σ): d² = Tr(Σ + 4Σ − 2·2Σ) = Tr(Σ).
    features = np.random.default_rng(2).normal(size=(500, 8)) * np.arange(1, 9) + 3.0
    covariance = np.cov(features, rowvar=False)
    assert frechet_distance(features, 2 * features - features.mean(axis=0)) == pytest.approx(
        np.trace(covariance), rel=1e-6
    )


def test_fewer_samples_than_dimensions_stay_finite() -> None:
    features = np.random.default_rng(3).normal(size=(10, 64))  # covariance of rank 9
    assert abs(frechet_distance(features, features)) < 1e-4
    shifted = frechet_distance(features, features + 1.0)
    assert np.isfinite(shifted) and shifted == pytest.approx(64.0, abs=1e-2)


@pytest.mark.parametrize(
    ("a", "b", "words"),
    [
        (np.zeros((5, 4)), np.zeros((5, 3)), "same feature extractor"),
        (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2"),
        (np.zeros(5), np.zeros((5, 4)), "(N, D)"),
        (np.full((5, 4), np.nan), np.zeros((5, 4)), "NaN"),
    ],
)
def test_bad_feature_sets_are_named(a, b, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=None) as caught:
        frechet_distance(a, b)
    assert isinstance(caught.value, TavceError) and words in str(caught.value)


class ChannelMeans(torch.nn.Module):
    """A transparent feature extractor: per-channel mean and its square, (B, 6)."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        means = frames.mean(dim=(2, 3))
        return torch.cat([means, means**2], dim=1)


def _frames(seed: int, count: int = 40, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_change() -> None:
    frames = _frames(0)
    assert abs(fid(frames, frames, ChannelMeans(), batch_size=7)) < 1e-9
    brighter = np.clip(frames.astype(int) + 40, 0, 255).astype(np.uint8)
    assert fid(frames, brighter, ChannelMeans()) > fid(frames, _frames(1), ChannelMeans())


def test_fid_rejects_frames_that_are_not_rgb_uint8() -> None:
    frames = _frames(0)
    with pytest.raises(InvalidArgumentError, match="uint8"):
        fid(frames.astype(np.float32), frames, ChannelMeans())
    with pytest.raises(InvalidArgumentError, match="RGB"):
        fid(frames[..., 0], frames, ChannelMeans())
    with pytest.raises(InvalidArgumentError, match="at least 2"):
        fid(frames[:1], frames, ChannelMeans())


def test_inception_loads_pytorch_fid_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = FIDInceptionV3(FIDInceptionConfig(input_size=75))
    for module in model.modules():  # running statistics as a trained file has them, not 0 / 1
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    # The official file: torchvision names, no num_batches_tracked, a 1008-class classifier.
    official = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert "Mixed_7c.branch3x3dbl_3b.conv.weight" in official and official["fc.weight"].shape == (1008, 2048)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(official, path)
    loaded = load_fid_inception(path, FIDInceptionConfig(input_size=75))
    frames = torch.rand(2, 3, 40, 50)
    with torch.inference_mode():
        expected, features = model.eval()(frames), loaded(frames)
    assert features.shape == (2, 2048)
    torch.testing.assert_close(features, expected)

    del official["Mixed_5b.branch1x1.conv.weight"]
    torch.save(official, path)
    with pytest.raises(IncompatibleWeightsError, match="Mixed_5b.branch1x1.conv.weight"):
        load_fid_inception(path)
