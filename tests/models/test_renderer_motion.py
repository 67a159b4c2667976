"""Motion networks of the renderer on tiny configs: keypoint detector, MappingNet, keypoint
transformation, head-pose estimator (training) and discriminator (training), with their converters.

Numerical parity with the originals is covered by the golden cases (kp_detector, mapping,
keypoint_transformation, he_estimator, discriminator, animation*); these tests check shapes,
sizes 256/512, validation, weight round trips and the documented quirks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tavce.convert.renderer import convert_discriminator, convert_he_estimator, convert_kp_detector
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, InvalidImageError
from tavce.models.renderer.discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from tavce.models.renderer.head_pose_estimator import HeadPoseEstimator, HeadPoseEstimatorConfig
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig, gaussian_kernel
from tavce.models.renderer.keypoint_transform import bins_to_degrees, rotation_matrix, transform_keypoints
from tavce.models.renderer.mapping_net import HeadMotion, MappingNet, MappingNetConfig
from tavce.models.renderer.spectral import spectral_sigma
from tavce.testing import reference_state_dict

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "golden"

TINY_DETECTOR = KeypointDetectorConfig(
    base_channels=2, max_channels=8, num_blocks=2, reshape_channels=16, reshape_depth=2, num_keypoints=3
)
TINY_ESTIMATOR = HeadPoseEstimatorConfig(stem_channels=4, stage_channels=(8, 8, 16, 16), blocks_per_stage=(1, 1, 1, 1))
TINY_MAPPING = MappingNetConfig(hidden_channels=8, num_keypoints=3)


def recipe_filled(module: torch.nn.Module, salt: int = 5) -> torch.nn.Module:
    shapes = {key: value.shape for key, value in module.state_dict().items()}
    module.load_state_dict(reference_state_dict(shapes, salt))
    return module.eval()


def golden_shapes(case: str) -> dict[str, torch.Size]:
    """The case's original state-dict layout as empty tensors (names and shapes only)."""
    (shapes,) = json.loads((GOLDEN_DIR / f"{case}.json").read_text())["state_dicts"].values()
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


def assert_same_layout(ours: torch.nn.Module, converted: dict[str, torch.Tensor]) -> None:
    expected = {key: tuple(value.shape) for key, value in ours.state_dict().items()}
    assert {key: tuple(value.shape) for key, value in converted.items()} == expected


# --- keypoint detector ---

@pytest.mark.parametrize("size", [256, 512])
def test_keypoint_detector_shapes(size: int) -> None:
    detector = recipe_filled(KeypointDetector(TINY_DETECTOR))
    image = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        heatmaps = detector.heatmaps(image)
        keypoints = detector(image)
    assert heatmaps.shape == (2, 3, 2, size // 4, size // 4)
    torch.testing.assert_close(heatmaps.sum(dim=(2, 3, 4)), torch.ones(2, 3))
    assert keypoints.shape == (2, 3, 3)
    assert keypoints.abs().max() <= 1


def test_keypoint_detector_refuses_bad_input_and_config() -> None:
    with pytest.raises(InvalidImageError, match="image"):
        KeypointDetector(TINY_DETECTOR)(torch.rand(1, 4, 64, 64))
    with pytest.raises(InvalidArgumentError, match="reshape_channels"):
        KeypointDetectorConfig(base_channels=2, max_channels=8, num_blocks=2, reshape_channels=15, reshape_depth=2)
    with pytest.raises(InvalidArgumentError, match="scale_factor"):
        KeypointDetector(KeypointDetectorConfig(**{**vars(TINY_DETECTOR), "scale_factor": 0.3}))


def test_analytic_kernel_is_the_13x13_gaussian() -> None:
    kernel = gaussian_kernel(0.25)
    assert kernel.shape == (13, 13)
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernel, kernel.T)
    assert kernel.argmax() == 6 * 13 + 6
    # σ = 1.5: one step off centre along an axis is exp(-1/(2·1.5²)) of the peak.
    torch.testing.assert_close(kernel[6, 7] / kernel[6, 6], torch.tensor(2.25).reciprocal().mul(-0.5).exp())
    buffer = KeypointDetector(TINY_DETECTOR).downsample.kernel
    assert buffer.shape == (3, 1, 13, 13)
    assert torch.equal(buffer[2, 0], kernel)


def test_kernel_buffer_round_trips_through_save_and_load(tmp_path: Path) -> None:
    detector = recipe_filled(KeypointDetector(TINY_DETECTOR))
    stored_kernel = torch.rand(3, 1, 13, 13, generator=torch.Generator().manual_seed(1))
    detector.downsample.kernel.copy_(stored_kernel)
    detector.save_pretrained(tmp_path)
    reloaded = KeypointDetector.from_pretrained(tmp_path)
    assert torch.equal(reloaded.downsample.kernel, stored_kernel)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(image), detector(image), rtol=0, atol=0)


def test_kp_detector_converter_fits_default_detector_and_refuses_unknown_keys() -> None:
    original = golden_shapes("kp_detector")
    with torch.device("meta"):
        detector = KeypointDetector()
    assert_same_layout(detector, convert_kp_detector(original))
    assert "downsample.kernel" in convert_kp_detector({f"module.{k}": v for k, v in original.items()})
    with pytest.raises(IncompatibleWeightsError, match="predictor.extra.weight"):
        convert_kp_detector({**original, "predictor.extra.weight": torch.zeros(1)}, source="kp test")


# --- MappingNet and keypoint transformation ---

@pytest.mark.parametrize("coeff_dim", [70, 73])
def test_mapping_net_accepts_70_and_73_coefficients(coeff_dim: int) -> None:
    mapping = recipe_filled(MappingNet(MappingNetConfig(**{**vars(TINY_MAPPING), "coeff_dim": coeff_dim})))
    with torch.no_grad():
        motion = mapping(torch.randn(2, coeff_dim, 27))
    assert [tuple(t.shape) for t in (motion.yaw, motion.pitch, motion.roll)] == [(2, 66)] * 3
    assert motion.translation.shape == (2, 3) and motion.expression.shape == (2, 9)


@pytest.mark.parametrize("shape", [(2, 70, 26), (2, 73, 27), (70, 27)])
def test_mapping_net_refuses_wrong_window_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidArgumentError, match="coefficient windows"):
        MappingNet(TINY_MAPPING)(torch.zeros(shape))


def test_mapping_net_refuses_window_shorter_than_its_receptive_field() -> None:
    with pytest.raises(InvalidArgumentError, match="window"):
        MappingNet(MappingNetConfig(hidden_channels=8, window=24))


def test_bins_to_degrees_range_and_rotation_is_orthonormal() -> None:
    logits = torch.full((3, 66), -1e4)
    logits[0, 0] = logits[1, 65] = 0
    logits[2] = 0
    torch.testing.assert_close(bins_to_degrees(logits), torch.tensor([-99.0, 96.0, -1.5]))
    rotation = rotation_matrix(torch.tensor([30.0]), torch.tensor([-20.0]), torch.tensor([10.0]))
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3)[None])
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(1))


def random_motion(batch: int, num_keypoints: int = 3) -> HeadMotion:
    generator = torch.Generator().manual_seed(2)
    logits = [torch.randn(batch, 66, generator=generator) for _ in range(3)]
    return HeadMotion(*logits, torch.randn(batch, 3, generator=generator), torch.randn(batch, 3 * num_keypoints))


def test_transform_keypoints_leaves_its_inputs_alone() -> None:
    motion = random_motion(2)
    canonical = torch.rand(2, 3, 3)
    before = [t.clone() for t in (canonical, motion.translation, motion.expression, motion.yaw)]
    moved = transform_keypoints(canonical, motion)
    after = [canonical, motion.translation, motion.expression, motion.yaw]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    # Only t_y moves the keypoints: changing t_x and t_z changes nothing.
    moved_xz = motion.translation + torch.tensor([5.0, 0.0, 5.0])
    shifted = HeadMotion(motion.yaw, motion.pitch, motion.roll, moved_xz, motion.expression)
    torch.testing.assert_close(transform_keypoints(canonical, shifted), moved)


def test_pose_overrides_replace_the_decoded_degrees() -> None:
    motion = random_motion(2)
    canonical = torch.rand(2, 3, 3)
    yaw = torch.tensor([12.5, -40.0])
    pitch, roll = bins_to_degrees(motion.pitch), bins_to_degrees(motion.roll)
    expected = canonical @ rotation_matrix(yaw, pitch, roll).transpose(1, 2)
    expected = expected + torch.stack([torch.zeros(2), motion.translation[:, 1], torch.zeros(2)], -1)[:, None]
    expected = expected + motion.expression.view(2, 3, 3)
    torch.testing.assert_close(transform_keypoints(canonical, motion, yaw_override=yaw), expected)
    decoded = bins_to_degrees(motion.yaw)
    torch.testing.assert_close(
        transform_keypoints(canonical, motion, yaw_override=decoded), transform_keypoints(canonical, motion)
    )


# --- head-pose estimator (training only) ---

def test_head_pose_estimator_shapes() -> None:
    estimator = recipe_filled(HeadPoseEstimator(TINY_ESTIMATOR))
    with torch.no_grad():
        motion = estimator(torch.rand(2, 3, 64, 64))
    assert motion.yaw.shape == motion.pitch.shape == motion.roll.shape == (2, 66)
    assert motion.translation.shape == (2, 3) and motion.expression.shape == (2, 45)
    with pytest.raises(InvalidImageError, match="image"):
        estimator(torch.rand(3, 64, 64))


def test_he_estimator_converter_swaps_yaw_and_roll_heads() -> None:
    original = golden_shapes("he_estimator")
    with torch.device("meta"):
        estimator = HeadPoseEstimator()
    assert_same_layout(estimator, convert_he_estimator(original))
    marked = {**original, "fc_roll.weight": torch.tensor([1.0]), "fc_yaw.weight": torch.tensor([2.0])}
    converted = convert_he_estimator(marked)
    # Quirk 12: the original's "yaw" output comes from fc_roll, its "roll" output from fc_yaw.
    assert converted["heads.yaw.weight"].item() == 1.0
    assert converted["heads.roll.weight"].item() == 2.0
    with pytest.raises(IncompatibleWeightsError, match="fc_extra"):
        convert_he_estimator({**original, "fc_extra.weight": torch.zeros(1)})


# --- discriminator (training only) ---

TINY_DISCRIMINATOR = DiscriminatorConfig(base_channels=2, max_channels=8, scales=(1.0, 0.5))


def test_discriminator_shapes_per_scale() -> None:
    discriminator = recipe_filled(MultiScaleDiscriminator(TINY_DISCRIMINATOR))
    with torch.no_grad():
        outputs = discriminator(torch.rand(2, 3, 128, 128))
    assert set(outputs) == {1.0, 0.5}
    shapes = [tuple(feature_map.shape) for feature_map in outputs[1.0].feature_maps]
    assert shapes == [(2, 4, 62, 62), (2, 8, 29, 29), (2, 8, 13, 13), (2, 8, 10, 10)]
    assert outputs[1.0].prediction_map.shape == (2, 1, 10, 10)
    assert outputs[0.5].feature_maps[0].shape == (2, 4, 30, 30)
    with pytest.raises(InvalidArgumentError, match="pyramid"):
        discriminator({1.0: torch.rand(1, 3, 64, 64)})


def test_discriminator_eval_uses_stored_spectral_vectors() -> None:
    discriminator = recipe_filled(MultiScaleDiscriminator(TINY_DISCRIMINATOR))
    assert not any(key.endswith("kernel") for key in discriminator.state_dict()), "pyramid kernels are not weights"
    conv = discriminator.discriminators["1"].blocks[0].conv
    stored_u = conv.weight_u.clone()
    image = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        first = discriminator({1.0: image, 0.5: image[:, :, ::2, ::2]})[1.0].prediction_map
        second = discriminator({1.0: image, 0.5: image[:, :, ::2, ::2]})[1.0].prediction_map
    assert torch.equal(conv.weight_u, stored_u), "eval mode must not run the power iteration"
    assert torch.equal(first, second)
    sigma = spectral_sigma(conv.weight_orig, stored_u, conv.weight_v)
    torch.testing.assert_close(conv.weight, conv.weight_orig / sigma)
    discriminator.train()(image)
    assert not torch.equal(conv.weight_u, stored_u), "training mode updates u"


def test_discriminator_converter_fits_the_official_layout() -> None:
    original = golden_shapes("discriminator")
    with torch.device("meta"):
        discriminator = MultiScaleDiscriminator()
    assert_same_layout(discriminator, convert_discriminator(original))
    with pytest.raises(IncompatibleWeightsError, match="discs.1.extra"):
        convert_discriminator({**original, "discs.1.extra.weight": torch.zeros(1)})
