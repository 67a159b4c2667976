"""The stage-2 loss terms on hand-made inputs: VGG19 layout and weights file, pyramid perceptual, hinge, FM, motion terms."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tavce.errors import IncompatibleWeightsError
from tavce.hub import save_safetensors
from tavce.models.renderer.discriminator import DiscriminatorOutput
from tavce.models.renderer.mapping_net import HeadMotion
from tavce.training.renderer import PerceptualPyramidLoss, VGG19Config, VGG19Features, load_vgg19_weights
from tavce.training.renderer.adversarial import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
from tavce.training.renderer.motion import (
    RandomWarp,
    expression_loss,
    head_pose_loss,
    keypoint_prior_loss,
)
from tavce.training.renderer.perceptual import ImagePyramid

TINY_VGG = VGG19Config(widths=(4, 8, 8, 16, 16))
# torchvision.models.vgg19().features: the convolutions' indices (ReLUs and max-pools in between).
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def test_vgg19_keys_and_shapes_are_torchvisions() -> None:
    state = VGG19Features().state_dict()
    expected = {f"features.{i}.{leaf}" for i in TORCHVISION_CONV_INDICES for leaf in ("weight", "bias")}
    assert set(state) == expected
    assert state["features.0.weight"].shape == (64, 3, 3, 3)
    assert state["features.28.weight"].shape == (512, 512, 3, 3)
    assert not any(p.requires_grad for p in VGG19Features(TINY_VGG).parameters())


def test_vgg19_returns_relu1_1_to_relu5_1() -> None:
    activations = VGG19Features(TINY_VGG)(torch.rand(2, 3, 32, 32))
    assert [tuple(a.shape) for a in activations] == [
        (2, 4, 32, 32),
        (2, 8, 16, 16),
        (2, 8, 8, 8),
        (2, 16, 4, 4),
        (2, 16, 2, 2),
    ]
    assert all((a >= 0).all() for a in activations)  # after ReLUs


def test_vgg19_normalises_with_imagenet_statistics() -> None:
    network = VGG19Features(TINY_VGG)
    image = torch.rand(1, 3, 16, 16)  # relu5_1 needs 16 pixels (four max-pools)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = network.features[1](network.features[0]((image - mean) / std))
    torch.testing.assert_close(network(image)[0], expected)


def test_torchvision_weights_file_loads(tmp_path: Path) -> None:
    source = VGG19Features(TINY_VGG)
    for parameter in source.parameters():
        parameter.data.uniform_(-1, 1)
    # A whole torchvision vgg19 state dict also holds the classifier; it is ignored.
    state = {**source.state_dict(), "classifier.0.weight": torch.zeros(4, 4), "classifier.0.bias": torch.zeros(4)}
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    save_safetensors(source.state_dict(), tmp_path / "vgg19.safetensors")
    image = torch.rand(1, 3, 32, 32)
    for name in ("vgg19-dcbb9e9d.pth", "vgg19.safetensors"):
        loaded = load_vgg19_weights(tmp_path / name, TINY_VGG)
        torch.testing.assert_close(loaded(image)[4], source(image)[4])


def test_vgg19_file_without_features_is_refused(tmp_path: Path) -> None:
    torch.save({"classifier.0.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(IncompatibleWeightsError, match="features"):
        load_vgg19_weights(tmp_path / "other.pth", TINY_VGG)
    torch.save({"features.0.weight": torch.zeros(5, 3, 3, 3)}, tmp_path / "wrong.pth")
    with pytest.raises(IncompatibleWeightsError, match="features.0.weight"):
        load_vgg19_weights(tmp_path / "wrong.pth", TINY_VGG)


def test_pyramid_scales() -> None:
    pyramid = ImagePyramid((1, 0.5, 0.25, 0.125))(torch.rand(1, 3, 64, 64))
    assert {scale: tuple(image.shape[2:]) for scale, image in pyramid.items()} == {
        1: (64, 64),
        0.5: (32, 32),
        0.25: (16, 16),
        0.125: (8, 8),
    }
    constant = ImagePyramid((0.5,))(torch.full((1, 3, 64, 64), 0.3))[0.5]
    assert torch.allclose(constant[..., 8:-8, 8:-8], torch.tensor(0.3))  # normalised low-pass away from the border


def test_perceptual_loss_is_zero_for_equal_images_and_differentiates_the_prediction_only() -> None:
    loss = PerceptualPyramidLoss(VGG19Features(TINY_VGG), (10.0,) * 5, (1, 0.5, 0.25, 0.125))
    target = torch.rand(2, 3, 128, 128)  # ⅛ of it is the 16 pixels relu5_1 needs
    assert loss(target, target).item() == 0.0
    prediction = torch.rand(2, 3, 128, 128, requires_grad=True)
    target.requires_grad_(True)
    value = loss(prediction, target)
    value.backward()
    assert value.item() > 0 and prediction.grad.abs().sum() > 0 and target.grad is None
    # Weights scale the sum linearly.
    half = PerceptualPyramidLoss(loss.network, (5.0,) * 5, (1, 0.5, 0.25, 0.125))(prediction, target)
    torch.testing.assert_close(half, value / 2)


def _outputs(prediction: float, features: list[float]) -> dict[float, DiscriminatorOutput]:
    return {
        1.0: DiscriminatorOutput([torch.full((2, 1, 3, 3), f) for f in features], torch.full((2, 1, 3, 3), prediction))
    }


def test_hinge_terms_by_hand() -> None:
    assert hinge_generator_loss(_outputs(0.7, [0.0]), weight=2.0).item() == pytest.approx(-1.4)
    # relu(1 - 0.5) + relu(1 + (-0.25)) = 0.5 + 0.75; a confident discriminator pays nothing.
    assert hinge_discriminator_loss(_outputs(0.5, [0.0]), _outputs(-0.25, [0.0])).item() == pytest.approx(1.25)
    assert hinge_discriminator_loss(_outputs(3.0, [0.0]), _outputs(-2.0, [0.0])).item() == 0.0


def test_feature_matching_by_hand() -> None:
    real, fake = _outputs(0.0, [1.0, 2.0]), _outputs(0.0, [0.5, 2.5])
    assert feature_matching_loss(real, fake, (10.0, 1.0)).item() == pytest.approx(10 * 0.5 + 1 * 0.5)
    with pytest.raises(ValueError, match="one weight per block"):
        feature_matching_loss(real, fake, (10.0,))


def _motion(expression: torch.Tensor, angles_logits: torch.Tensor) -> HeadMotion:
    return HeadMotion(angles_logits, angles_logits, angles_logits, torch.zeros(expression.shape[0], 3), expression)


def test_expression_and_head_pose_terms() -> None:
    expression = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, -1.0]])
    logits = torch.zeros(2, 66)
    assert expression_loss(_motion(expression, logits)).item() == pytest.approx((3.5 + 1.0) / 2)
    assert head_pose_loss(_motion(expression, logits), _motion(expression, logits)).item() == 0.0
    peaked = torch.full((2, 66), -1e4)
    peaked[:, 40] = 0  # bin 40 → 40·3 − 99 = 21°, uniform logits → 32.5·3 − 99 = −1.5°
    assert head_pose_loss(_motion(expression, peaked), _motion(expression, logits)).item() == pytest.approx(
        3 * 22.5, rel=1e-4
    )


def test_keypoint_prior_by_hand() -> None:
    spread = torch.tensor([[[-1.0, -1.0, 0.33], [1.0, 1.0, 0.33], [1.0, -1.0, 0.33]]])
    # Far-apart keypoints at depth 0.33: only the i = j pairs add 0.1 each, as in face-vid2vid.
    assert keypoint_prior_loss(spread).item() == pytest.approx(0.3)
    together = torch.zeros(1, 3, 3, requires_grad=True)
    value = keypoint_prior_loss(together)
    value.backward()
    assert value.item() == pytest.approx(9 * 0.1 + 0.33) and torch.isfinite(together.grad).all()


def test_zero_random_warp_is_the_identity_and_a_real_one_moves_pixels() -> None:
    frames = torch.rand(2, 3, 16, 16)
    identity = RandomWarp(2, 0.0, 0.0, 5)
    torch.testing.assert_close(identity.warp_frames(frames), frames)
    points = torch.rand(2, 7, 2) * 2 - 1
    torch.testing.assert_close(identity.warp_coordinates(points), points)
    warp = RandomWarp(2, 0.05, 0.005, 5, generator=torch.Generator().manual_seed(0))
    assert (warp.warp_frames(frames) - frames).abs().mean() > 1e-3


def test_perceptual_network_must_return_one_activation_per_weight() -> None:
    loss = PerceptualPyramidLoss(torch.nn.Identity(), (10.0,) * 5, (1.0,))
    with pytest.raises(ValueError, match="list of 5 activations"):
        loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
