"""SadTalkerAudio2Coeff.generate: seeds, edge lengths, options and errors (tiny PoseVAE, real audio encoders)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.audio2coeff import (
    Audio2Coeff,
    Audio2CoeffOptions,
    PoseVAEConfig,
    SadTalkerAudio2Coeff,
    SadTalkerAudio2CoeffConfig,
    smooth_pose,
)
from tavce.models.audio2coeff import pose_vae as pose_vae_module
from tavce.models.audio2coeff.expression_net import ENCODER_BATCH
from tavce.models.audio_encoder import Wav2LipAudioEncoderConfig
from tavce.models.base import load_state_dict_strict
from tavce.testing import reference_state_dict
from tavce.types import AudioWindows

TINY = SadTalkerAudio2CoeffConfig(
    pose_vae=PoseVAEConfig(seq_len=8, latent_dim=4, decoder_hidden_dims=(8,), resunet_channels=(2, 3, 4, 5))
)


def recipe_filled(module: nn.Module, salt: int = 1) -> nn.Module:
    shapes = {key: tensor.shape for key, tensor in module.state_dict().items()}
    load_state_dict_strict(module, reference_state_dict(shapes, salt), source="test")
    return module.eval()


@pytest.fixture(scope="module")
def audio2coeff() -> SadTalkerAudio2Coeff:
    return recipe_filled(SadTalkerAudio2Coeff(TINY))


def windows(frames: int, seed: int = 0) -> AudioWindows:
    mels = torch.rand(frames, 1, 80, 16, generator=torch.Generator().manual_seed(seed)) * 8 - 4
    return AudioWindows(mels)


def source(dims: int = 73) -> torch.Tensor:
    return torch.linspace(-0.5, 0.5, dims)


def generate(model, frames=40, options=None, seed=0, coefficients=None):
    coefficients = source() if coefficients is None else coefficients
    return model.generate(windows(frames), coefficients, options, generator=torch.Generator().manual_seed(seed))


def test_is_an_audio2coeff(audio2coeff):
    assert isinstance(audio2coeff, Audio2Coeff)


def test_same_seed_same_coefficients_other_seed_other_coefficients(audio2coeff):
    first, again, other = (generate(audio2coeff, seed=seed) for seed in (3, 3, 4))
    assert torch.equal(first.expression, again.expression) and torch.equal(first.pose, again.pose)
    assert not torch.allclose(first.pose, other.pose)  # CVAE latents follow the generator
    assert not torch.allclose(first.expression, other.expression)  # so do the blinks
    unseeded = audio2coeff.generate(windows(40), source())
    assert torch.equal(unseeded.pose, audio2coeff.generate(windows(40), source()).pose)


def test_output_shapes_and_crop_parameters(audio2coeff):
    motion = generate(audio2coeff, frames=30)
    assert motion.expression.shape == (30, 64) and motion.pose.shape == (30, 6)
    assert torch.equal(motion.crop, source()[70:].expand(30, -1))
    assert motion.as_renderer_input().shape == (30, 73)
    assert generate(audio2coeff, frames=30, coefficients=source(70)).crop is None
    assert generate(audio2coeff, frames=30, coefficients=source(73)[None]).pose.shape == (30, 6)


@pytest.mark.parametrize("frames", [1, 2, 3, 9, 21, 33])
def test_edge_lengths(audio2coeff, frames):
    motion = generate(audio2coeff, frames=frames)
    assert motion.num_frames == frames
    assert torch.isfinite(motion.as_renderer_input()).all()
    # Frame 0 is the reference pose; smoothing may move it only when there are > 2 frames.
    if frames <= 2:
        torch.testing.assert_close(motion.pose[0], source()[64:70])


def test_tavce_variant_needs_no_10_frames_and_skips_smoothing(audio2coeff):
    raw = generate(audio2coeff, frames=30, options=Audio2CoeffOptions(variant="tavce-eval", smooth_pose=False))
    default = generate(audio2coeff, frames=30, options=Audio2CoeffOptions(variant="tavce-eval"))
    assert torch.equal(raw.pose, default.pose)
    smoothed = generate(audio2coeff, frames=30, options=Audio2CoeffOptions(variant="tavce-eval", smooth_pose=True))
    torch.testing.assert_close(smoothed.pose, smooth_pose(raw.pose))
    sadtalker = generate(audio2coeff, frames=30, options=Audio2CoeffOptions(smooth_pose=False))
    assert not torch.allclose(sadtalker.pose[1:], raw.pose[1:])  # quirk 20: windows one frame early
    assert generate(audio2coeff, frames=7, options=Audio2CoeffOptions(variant="tavce-eval")).num_frames == 7


def test_still_mode_keeps_the_source_pose(audio2coeff):
    moving = generate(audio2coeff)
    still = generate(audio2coeff, options=Audio2CoeffOptions(still=True))
    assert torch.equal(still.pose, source()[64:70].expand(40, -1))
    assert torch.equal(still.expression, moving.expression)
    assert not torch.allclose(moving.pose, still.pose)


def test_expression_scale(audio2coeff):
    neutral = generate(audio2coeff, options=Audio2CoeffOptions(expression_scale=0.0))
    assert torch.equal(neutral.expression, torch.zeros(40, 64))
    full = generate(audio2coeff)
    half = generate(audio2coeff, options=Audio2CoeffOptions(expression_scale=0.5))
    torch.testing.assert_close(half.expression, 0.5 * full.expression)
    assert torch.equal(neutral.pose, full.pose)


def test_reference_pose_adds_its_relative_motion(audio2coeff):
    ref_pose = torch.tensor([[0.0] * 6, [0.1] * 6, [0.3] * 6])
    plain = generate(audio2coeff, frames=8)
    moved = generate(audio2coeff, frames=8, options=Audio2CoeffOptions(ref_pose=ref_pose))
    offsets = torch.tensor([0.0, 0.1, 0.3, 0.0, 0.1, 0.3, 0.0, 0.1]).unsqueeze(1)
    torch.testing.assert_close(moved.pose, plain.pose + offsets)
    from_array = generate(audio2coeff, frames=8, options=Audio2CoeffOptions(ref_pose=ref_pose.numpy()))
    torch.testing.assert_close(from_array.pose, moved.pose)
    with pytest.raises(InvalidArgumentError, match="ref_pose"):
        generate(audio2coeff, frames=8, options=Audio2CoeffOptions(ref_pose=torch.zeros(3, 5)))


def test_reference_eyeblink_replaces_reference_expression_and_blinks(audio2coeff):
    ref_eyeblink = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    motion = generate(audio2coeff, frames=12, options=Audio2CoeffOptions(ref_eyeblink=ref_eyeblink))
    with torch.no_grad():
        expected = audio2coeff.expression_net(windows(12).windows, ref_eyeblink.repeat(3, 1)[:12], torch.zeros(12, 1))
    torch.testing.assert_close(motion.expression, expected)
    with pytest.raises(InvalidArgumentError, match="ref_eyeblink"):
        generate(audio2coeff, options=Audio2CoeffOptions(ref_eyeblink=torch.zeros(4, 63)))


def test_without_blinks_expression_uses_zero_ratio(audio2coeff):
    motion = generate(audio2coeff, frames=50, options=Audio2CoeffOptions(use_blink=False))
    with torch.no_grad():
        expected = audio2coeff.expression_net(windows(50).windows, source()[:64].expand(50, -1), torch.zeros(50, 1))
    torch.testing.assert_close(motion.expression, expected)
    assert not torch.allclose(generate(audio2coeff, frames=50).expression, expected)


def test_every_pose_style_is_accepted(audio2coeff):
    poses = [generate(audio2coeff, frames=3, options=Audio2CoeffOptions(pose_style=style)).pose for style in range(46)]
    assert not torch.allclose(poses[0], poses[45])


@pytest.mark.parametrize("style", [46, -1])
def test_out_of_range_pose_style_is_rejected(audio2coeff, style):
    with pytest.raises(InvalidArgumentError, match=r"pose_style must be in 0\.\.45"):
        generate(audio2coeff, frames=3, options=Audio2CoeffOptions(pose_style=style))


BAD_OPTIONS = [{"pose_style": 1.5}, {"pose_style": True}, {"variant": "wav2lip"}, {"expression_scale": float("nan")}]


@pytest.mark.parametrize("options", BAD_OPTIONS)
def test_bad_options_are_rejected(options):
    with pytest.raises(InvalidArgumentError):
        Audio2CoeffOptions(**options)


@pytest.mark.parametrize("shape", [(64,), (2, 73), (71,)])
def test_bad_source_coefficients_are_rejected(audio2coeff, shape):
    with pytest.raises(InvalidArgumentError, match="source_coefficients"):
        audio2coeff.generate(windows(3), torch.zeros(shape))


def test_empty_audio_is_rejected(audio2coeff):
    with pytest.raises(InvalidArgumentError, match="no whole 40 ms frame"):
        audio2coeff.generate(AudioWindows(torch.zeros(0, 1, 80, 16)), source())


def test_save_and_load_round_trip(audio2coeff, tmp_path):
    audio2coeff.save_pretrained(tmp_path)
    loaded = SadTalkerAudio2Coeff.from_pretrained(tmp_path)
    assert loaded.config == TINY
    torch.testing.assert_close(generate(loaded).pose, generate(audio2coeff).pose)


class CheapEncoder(nn.Module):
    """Stands in for a Wav2Lip encoder (same interface) and records its largest batch."""

    config = Wav2LipAudioEncoderConfig()

    def __init__(self) -> None:
        super().__init__()
        self.largest_batch = 0

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        self.largest_batch = max(self.largest_batch, mels.shape[0])
        return mels.flatten(1)[:, :512].clamp(min=0)


def test_long_clip_encodes_in_bounded_batches():
    model = recipe_filled(SadTalkerAudio2Coeff(TINY))
    model.expression_net.audio_encoder = CheapEncoder()
    model.pose_vae.audio_encoder = CheapEncoder()
    motion = generate(model, frames=2000)
    assert motion.num_frames == 2000 and torch.isfinite(motion.pose).all()
    assert model.expression_net.audio_encoder.largest_batch == ENCODER_BATCH
    assert model.pose_vae.audio_encoder.largest_batch == ENCODER_BATCH
    assert motion.expression[:, 0].std() > 0


def test_pose_chunks_decoded_a_group_at_a_time_equal_one_group(audio2coeff, monkeypatch):
    whole = generate(audio2coeff, frames=150)  # 19 chunks of 8: one group
    monkeypatch.setattr(pose_vae_module, "_CHUNKS_PER_GROUP", 3)
    grouped = generate(audio2coeff, frames=150)
    torch.testing.assert_close(grouped.pose, whole.pose, rtol=0, atol=1e-6)
    torch.testing.assert_close(grouped.expression, whole.expression, rtol=0, atol=0)


@pytest.mark.slow
def test_ten_minute_clip_at_official_size():
    model = recipe_filled(SadTalkerAudio2Coeff())
    start = time.perf_counter()
    motion = generate(model, frames=15_000)
    assert motion.num_frames == 15_000 and torch.isfinite(motion.as_renderer_input()).all()
    assert time.perf_counter() - start < 600
