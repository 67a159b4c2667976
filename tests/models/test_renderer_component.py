"""CERLRenderer logic (source state, batching, CERL modes, overrides, dtype moves) on tiny networks.

The keypoint detector, MappingNet and keypoint transform are replaced by small
stand-ins so these tests check the renderer's own bookkeeping quickly; the real
networks are covered by their golden cases (``animation``, ``animation_tavce``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.models.renderer import renderer as renderer_module
from tavce.models.renderer.generator import load_inference_generator
from tavce.models.renderer.renderer import CERLRenderer, semantic_windows
from tavce.types import AudioRelationship, MotionCoefficients
from tests.models.tiny_generator import SIZE, TINY, tiny_generator


@dataclass(frozen=True)
class StandInConfig:
    coeff_dim: int = 70
    num_keypoints: int = TINY.num_keypoints


class StandInKeypoints(nn.Module):
    """(1, 3, S, S) → (1, K, 3) keypoints in (-1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.config = StandInConfig()
        self.linear = nn.Linear(3, TINY.num_keypoints * 3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(image.mean((2, 3)))).view(image.shape[0], -1, 3)


class StandInMapping(nn.Module):
    """(B, C, 27) → (B, K·3) keypoint offsets that depend on the whole window (C = 70, or 73)."""

    def __init__(self, coeff_dim: int = 70) -> None:
        super().__init__()
        self.config = StandInConfig(coeff_dim)
        self.linear = nn.Linear(coeff_dim * 27, TINY.num_keypoints * 3)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.linear(windows.flatten(1))


def stand_in_transform(canonical, motion, yaw_override=None, pitch_override=None, roll_override=None):
    keypoints = canonical + 0.5 * motion.view(canonical.shape)
    if yaw_override is not None:
        keypoints = keypoints + 0.01 * yaw_override[:, None, None]
    return keypoints


@pytest.fixture
def renderer(monkeypatch):
    monkeypatch.setattr(renderer_module, "transform_keypoints", stand_in_transform)
    torch.manual_seed(0)
    return CERLRenderer.from_modules(StandInKeypoints(), StandInMapping(), tiny_generator())


def clip(frames: int = 5):
    generator = torch.Generator().manual_seed(1)
    coefficients = 0.1 * torch.randn(frames, 73, generator=generator)
    differences = torch.randn(frames, 4, generator=generator)
    differences[0] = 0
    return torch.rand(1, 3, SIZE, SIZE, generator=generator), coefficients, differences


def test_semantic_windows_clamp_at_both_ends():
    coefficients = torch.arange(4.0)[:, None].expand(4, 2)
    windows = semantic_windows(coefficients, radius=2)
    assert windows.shape == (4, 2, 5)
    assert windows[0, 0].tolist() == [0, 0, 0, 1, 2]
    assert windows[3, 1].tolist() == [1, 2, 3, 3, 3]
    with pytest.raises(InvalidArgumentError):
        semantic_windows(torch.zeros(0, 70))


@pytest.mark.parametrize(("start", "stop"), [(0, 3), (2, 5), (30, 40), (35, 40), (0, 40)])
def test_semantic_windows_of_a_frame_range_equal_the_slice_of_all_windows(start, stop):
    coefficients = torch.randn(40, 70)
    expected = semantic_windows(coefficients)[start:stop]
    assert torch.equal(semantic_windows(coefficients, start=start, stop=stop), expected)
    for bad in ((5, 5), (-1, 3), (0, 41)):
        with pytest.raises(InvalidArgumentError, match="start="):
            semantic_windows(coefficients, start=bad[0], stop=bad[1])


def test_batches_give_the_frames_rendered_one_by_one(renderer):
    image, coefficients, differences = clip()
    state = renderer.prepare_image(image, coefficients[0])
    windows = semantic_windows(coefficients)
    batched = renderer.render_windows(state, windows, differences)
    assert batched.shape == (5, 3, SIZE, SIZE)
    assert 0 <= batched.min() and batched.max() <= 1
    for frame in range(5):
        single = renderer.render_windows(state, windows[frame : frame + 1], differences[frame : frame + 1])
        torch.testing.assert_close(batched[frame : frame + 1], single, rtol=0, atol=2e-6)


def motion(coefficients: torch.Tensor) -> MotionCoefficients:
    """(T, 73) columns as expression 64 ‖ pose 6 ‖ crop 3."""
    return MotionCoefficients(coefficients[:, :64], coefficients[:, 64:70], coefficients[:, 70:])


def test_render_of_a_frame_range_builds_the_windows_and_narrows_to_the_mapping(renderer):
    image, coefficients, differences = clip()
    state = renderer.prepare_image(image, coefficients[0])
    by_windows = renderer.render_windows(state, semantic_windows(coefficients[:, :70])[1:4], differences[1:4])
    by_range = renderer.render(state, motion(coefficients), 1, 4, AudioRelationship(differences))
    torch.testing.assert_close(by_range, by_windows, rtol=0, atol=0)
    with pytest.raises(InvalidArgumentError, match="relationship: 3 frames for 5"):
        renderer.render(state, motion(coefficients), 0, 2, AudioRelationship(differences[:3]))


def test_full_mode_states_drive_the_full_mode_mapping_with_the_crop_parameters(monkeypatch):
    monkeypatch.setattr(renderer_module, "transform_keypoints", stand_in_transform)
    torch.manual_seed(0)
    renderer = CERLRenderer.from_modules(
        StandInKeypoints(), StandInMapping(), tiny_generator(), full_mode_mapping=StandInMapping(73)
    )
    image, coefficients, differences = clip()
    crop_state = renderer.prepare_image(image, coefficients[0])
    full_state = renderer.prepare_image(image, coefficients[0], full_mode=True)
    assert full_state.full_mode and not crop_state.full_mode
    windows = semantic_windows(coefficients)
    full = renderer.driving_keypoints(full_state, windows)
    changed = coefficients.clone()
    changed[:, 70:] += 0.5  # only the crop parameters
    assert (renderer.driving_keypoints(full_state, semantic_windows(changed)) - full).abs().max() > 1e-3
    torch.testing.assert_close(
        renderer.driving_keypoints(crop_state, semantic_windows(changed)), renderer.driving_keypoints(crop_state, windows)
    )
    no_full = CERLRenderer.from_modules(StandInKeypoints(), StandInMapping(), tiny_generator())
    with pytest.raises(InvalidArgumentError, match="no full-mode MappingNet"):
        no_full.prepare_image(image, coefficients[0], full_mode=True)


def test_relationship_forms_agree_and_zero_differs_from_none(renderer):
    image, coefficients, differences = clip()
    state = renderer.prepare_image(image, coefficients[0])
    windows = semantic_windows(coefficients)
    by_vector = renderer.render_windows(state, windows, differences)
    by_type = renderer.render_windows(state, windows, AudioRelationship(differences))
    by_matrix = renderer.render_windows(state, windows, AudioRelationship(differences).as_matrices())
    torch.testing.assert_close(by_type, by_vector, rtol=0, atol=0)
    torch.testing.assert_close(by_matrix, by_vector, rtol=0, atol=2e-6)
    without = renderer.render_windows(state, windows[:1], None)
    assert (without - by_vector[:1]).abs().max() > 1e-4  # frame 0: fusion convs still applied
    with pytest.raises(InvalidArgumentError, match="relationship"):
        renderer.render_windows(state, windows, differences[:3])


def test_without_fusion_weights_the_renderer_caches_the_volume_and_refuses_relationships(monkeypatch):
    monkeypatch.setattr(renderer_module, "transform_keypoints", stand_in_transform)
    weights = {k: v for k, v in tiny_generator().state_dict().items() if not k.startswith("fusion.")}
    plain = CERLRenderer.from_modules(StandInKeypoints(), StandInMapping(), load_inference_generator(weights, TINY))
    image, coefficients, differences = clip()
    state = plain.prepare_image(image, coefficients[0])
    assert not plain.has_cerl and state.volume is not None and state.compressed_volume is not None
    assert plain.render_windows(state, semantic_windows(coefficients)).shape == (5, 3, SIZE, SIZE)
    with pytest.raises(InvalidArgumentError, match="without CERL"):
        plain.render_windows(state, semantic_windows(coefficients), differences)


def test_pose_overrides_change_only_the_driving_keypoints(renderer):
    image, coefficients, _ = clip()
    state = renderer.prepare_image(image, coefficients[0])
    windows = semantic_windows(coefficients)
    plain = renderer.driving_keypoints(state, windows)
    turned = renderer.driving_keypoints(state, windows, yaw=torch.full((5,), 10.0))
    torch.testing.assert_close(turned - plain, torch.full_like(plain, 0.1))
    with pytest.raises(InvalidArgumentError, match="yaw"):
        renderer.render_windows(state, windows, yaw=torch.zeros(4))


def test_state_and_renderer_move_to_float64(renderer):
    image, coefficients, differences = clip(3)
    state = renderer.prepare_image(image, coefficients[0])
    frames = renderer.render_windows(state, semantic_windows(coefficients), differences)
    renderer.to(torch.float64)
    frames64 = renderer.render_windows(state.to(torch.float64), semantic_windows(coefficients), differences)
    assert frames64.dtype == torch.float64
    torch.testing.assert_close(frames64.float(), frames, rtol=0, atol=1e-5)


def test_bad_sources_are_refused(renderer):
    image, coefficients, _ = clip()
    with pytest.raises(InvalidImageError, match="\\[0, 1\\]"):
        renderer.prepare_image(image * 255, coefficients[0])
    with pytest.raises(InvalidImageError):
        renderer.prepare_image(torch.rand(1, 3, SIZE + 8, SIZE + 8), coefficients[0])
    with pytest.raises(InvalidArgumentError, match="source_semantics"):
        renderer.prepare_image(image, coefficients[0, :64])
