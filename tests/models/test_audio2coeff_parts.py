"""Audio2Coeff building blocks: converter, PoseVAE chunking and training pass, blinks, smoothing, overrides."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter

from tavce.convert.audio2coeff import (
    audio2coeff_state_dict,
    convert_audio2exp,
    convert_audio2pose,
    pose_vae_config_from_state_dict,
)
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.models.audio2coeff import (
    PoseVAE,
    PoseVAEConfig,
    SadTalkerAudio2Coeff,
    camera_degrees,
    encode_windows,
    motion_chunks,
    random_blink_ratio,
    smooth_pose,
    tile_to_length,
)
from tavce.models.audio_encoder import Wav2LipAudioEncoder
from tavce.models.base import load_state_dict_strict
from tavce.testing import official_manifest, reference_state_dict

SADTALKER_FILE = "SadTalker_V0.0.2_256.safetensors"
TINY_POSE_VAE = PoseVAEConfig(seq_len=8, latent_dim=4, decoder_hidden_dims=(8,), encoder_hidden_dims=(8,),
                              resunet_channels=(2, 3, 4, 5))


def official_part(prefix: str) -> dict[str, torch.Tensor]:
    """Recipe tensors at the official manifest shapes of one SadTalker sub-model, prefix removed."""
    shapes = {
        key[len(prefix):]: entry["shape"] for key, entry in official_manifest(SADTALKER_FILE).items()
        if key.startswith(prefix)
    }
    return reference_state_dict(shapes, salt=5)


# --- converter -------------------------------------------------------------------------------------------------


def test_official_audio2coeff_weights_load_strictly_into_the_default_component():
    audio2exp = official_part("audio2exp.")
    audio2pose = official_part("audio2pose.")
    assert any(key.startswith("netD_motion.") for key in audio2pose)
    inference_pose = {key: value for key, value in audio2pose.items() if not key.startswith("netG.encoder.")}
    component = SadTalkerAudio2Coeff()
    load_state_dict_strict(
        component, audio2coeff_state_dict(convert_audio2exp(audio2exp), convert_audio2pose(inference_pose)), "test"
    )
    torch.testing.assert_close(component.expression_net.head.weight, audio2exp["mapping1.weight"])
    torch.testing.assert_close(
        component.pose_vae.decoder.resunet.upsample[2].weight,
        audio2pose["netG.decoder.resunet.upsample_3.upsample.weight"],
    )
    torch.testing.assert_close(
        component.pose_vae.decoder.resunet.up[0].skip_norm.running_var,
        audio2pose["netG.decoder.resunet.up_residual_conv1.conv_skip.1.running_var"],
    )


def test_training_encoder_converts_with_official_sizes():
    converted = convert_audio2pose(official_part("audio2pose."))
    config = pose_vae_config_from_state_dict(converted)
    assert config == PoseVAEConfig(with_encoder=True)
    network = PoseVAE(config)
    load_state_dict_strict(network, converted, "test")
    assert network.encoder.mlp[0].in_features == 454


def test_unknown_original_key_is_refused():
    part = official_part("audio2exp.")
    part["mapping2.weight"] = torch.zeros(1)
    with pytest.raises(IncompatibleWeightsError, match="mapping2.weight"):
        convert_audio2exp(part)


# --- PoseVAE ---------------------------------------------------------------------------------------------------


def test_motion_chunks_sadtalker_and_tavce_alignment():
    assert motion_chunks(1, 32) == []
    (short,) = motion_chunks(12, 32)
    assert short[1] == 11 and short[0].tolist() == [1] * 21 + list(range(1, 12))
    (short_tavce,) = motion_chunks(12, 32, "tavce-eval")
    assert short_tavce[0].tolist() == [0] * 20 + list(range(12))
    full, tail = motion_chunks(46, 32)
    assert full[0].tolist() == list(range(1, 33)) and full[1] == 32
    assert tail[0].tolist() == list(range(14, 46)) and tail[1] == 13
    full_tavce, tail_tavce = motion_chunks(46, 32, "tavce-eval")
    assert full_tavce[0].tolist() == list(range(32))  # quirk 20: one frame early
    assert tail_tavce[0].tolist() == tail[0].tolist()
    assert [len(chunk) for chunk, _ in motion_chunks(33, 32)] == [32]


def test_sample_motion_keeps_frame_zero_and_checks_latents():
    network = PoseVAE(TINY_POSE_VAE).eval()
    windows = torch.randn(20, 1, 80, 16, generator=torch.Generator().manual_seed(0))
    latents = torch.randn(network.num_chunks(20), 4, generator=torch.Generator().manual_seed(1))
    assert latents.shape[0] == 3  # 19 frames: two chunks of 8, tail of 3
    with torch.no_grad():
        motion = network.sample_motion(windows, torch.zeros(6), 3, latents)
    assert motion.shape == (20, 6) and torch.equal(motion[0], torch.zeros(6))
    assert motion[1:].abs().sum() > 0
    with pytest.raises(InvalidArgumentError, match=r"\(3, 4\)"):
        network.sample_motion(windows, torch.zeros(6), 3, latents[:2])


def test_training_pass_reproduces_quirk_30_by_default():
    generator = torch.Generator().manual_seed(0)
    motion, audio = torch.randn(2, 8, 6, generator=generator), torch.randn(2, 8, 512, generator=generator)
    inputs = (motion, audio, torch.randn(2, 6, generator=generator), torch.tensor([0, 45]))
    for reproduce in (True, False):
        network = PoseVAE(PoseVAEConfig(**{**TINY_POSE_VAE.__dict__, "with_encoder": True,
                                           "log_variance_from_mean": reproduce}))
        torch.nn.init.normal_(network.encoder.log_variance.weight)
        predicted, mean, log_variance = network(*inputs, generator=torch.Generator().manual_seed(2))
        assert predicted.shape == (2, 8, 6) and mean.shape == (2, 4)
        assert torch.equal(mean, log_variance) == reproduce
    with pytest.raises(InvalidArgumentError, match="with_encoder=True"):
        PoseVAE(TINY_POSE_VAE)(*inputs)


def test_seq_len_must_allow_three_halvings():
    with pytest.raises(InvalidArgumentError, match="multiple of 8"):
        PoseVAEConfig(seq_len=12)


def test_encoding_in_batches_is_exact():
    encoder = Wav2LipAudioEncoder().eval()
    windows = torch.randn(9, 1, 80, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(encode_windows(encoder, windows, batch=4), encoder(windows), rtol=1e-5, atol=1e-6)
    assert encode_windows(encoder, windows[:0]).shape == (0, 512)


# --- blinks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [0, 1, 20])
def test_short_clips_never_blink(frames):
    assert torch.equal(random_blink_ratio(frames, torch.Generator().manual_seed(0)), torch.zeros(frames, 1))


def test_21_frames_blink_once_instead_of_crashing():
    ratio = random_blink_ratio(21, torch.Generator().manual_seed(0))[:, 0]
    assert ratio[10:15].tolist() == pytest.approx([0.5, 0.9, 1.0, 0.9, 0.5])
    assert ratio.sum() == pytest.approx(3.8)


def test_blinks_follow_the_generator():
    first = random_blink_ratio(500, torch.Generator().manual_seed(7))
    assert torch.equal(first, random_blink_ratio(500, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, random_blink_ratio(500, torch.Generator().manual_seed(8)))
    onsets = [t for t in range(500) if first[t, 0] == 0.5 and (t == 0 or first[t - 1, 0] == 0)]
    gaps = np.diff([-5] + onsets) - 5
    assert len(onsets) >= 5 and gaps.min() >= 10 and gaps.max() <= 69
    assert set(first[:, 0].tolist()) <= set(torch.tensor([0.0, 0.5, 0.9, 1.0]).tolist())
    assert first[-1, 0] == 0  # a blink never touches the last frame


# --- smoothing, tiling, camera overrides ----------------------------------------------------------------------


@pytest.mark.parametrize("frames, window", [(40, 13), (13, 13), (12, 11), (6, 5), (3, 3)])
def test_smoothing_matches_scipy_window_rule(frames, window):
    pose = torch.randn(frames, 6, generator=torch.Generator().manual_seed(frames))
    expected = savgol_filter(pose.numpy(), window, 2, axis=0)
    smoothed = smooth_pose(pose)
    assert smoothed.dtype == torch.float32
    np.testing.assert_allclose(smoothed.numpy(), expected, rtol=0, atol=1e-6)
    assert window == 3 or not torch.allclose(smoothed, pose)  # order 2 on 3 points is an exact fit


@pytest.mark.parametrize("frames", [1, 2])
def test_smoothing_skips_two_frames_or_fewer(frames):
    pose = torch.randn(frames, 6)
    assert torch.equal(smooth_pose(pose), pose)


def test_tile_to_length_repeats_whole_copies_then_the_start():
    sequence = torch.arange(6.0).reshape(3, 2)
    assert tile_to_length(sequence, 7, "ref")[:, 0].tolist() == [0, 2, 4, 0, 2, 4, 0]
    with pytest.raises(InvalidArgumentError, match="ref"):
        tile_to_length(torch.zeros(0, 2), 3, "ref")


def test_camera_degrees_interpolates_along_the_path():
    assert camera_degrees([5], 4).tolist() == [5, 5, 5, 5]
    assert camera_degrees([0, 20], 11).tolist() == pytest.approx(list(range(0, 20, 2)) + [18])
    # Path 0 -> 10 -> 0: D = 20, 2 degrees per frame.
    assert camera_degrees([0, 10, 0], 11).tolist() == pytest.approx([0, 2, 4, 6, 8, 10, 8, 6, 4, 2, 2])


def test_camera_degrees_equal_neighbours_do_not_divide_by_zero():
    assert camera_degrees([10, 10, 20], 6).tolist() == pytest.approx([10, 12, 14, 16, 18, 18])
    assert camera_degrees([7, 7], 3).tolist() == [7, 7, 7]
    assert camera_degrees([0, 30], 1).tolist() == [0]
    with pytest.raises(InvalidArgumentError, match="at least one angle"):
        camera_degrees([], 3)
