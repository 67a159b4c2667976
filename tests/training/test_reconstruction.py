"""The optional stage-1 reconstruction term: LPIPS-style distance from a weights file, auxiliary generators."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.training.perceptual import PerceptualDistance, PerceptualDistanceConfig, load_perceptual_distance
from tavce.training.tavc import ReconstructionGeneratorConfig, ReconstructionLoss, RelationshipGenerator, StageOneModel
from tests.training.tavc_tiny import EMBEDDING, tiny_metric

TINY_VGG = PerceptualDistanceConfig(stage_channels=(4, 8, 8), convs_per_stage=(2, 1, 2))
TINY_GENERATOR = ReconstructionGeneratorConfig(
    base_channels=4, downsamplings=2, blocks_before_fusion=1, blocks_after_fusion=1
)


def lpips_package_state(config: PerceptualDistanceConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the ``lpips`` package's names (net.slice<k>.<n>.*, lin<k>.model.1.weight)."""
    generator = torch.Generator().manual_seed(seed)
    ours = PerceptualDistance(config).state_dict()
    state = {"scaling_layer.shift": torch.zeros(1, 3, 1, 1), "scaling_layer.scale": torch.ones(1, 3, 1, 1)}
    taps = PerceptualDistance(config).taps
    for key, value in ours.items():
        random = torch.randn(value.shape, generator=generator) * 0.2
        if key.startswith("features."):
            index = int(key.split(".")[1])
            stage = sum(index > tap for tap in taps) + 1
            state[f"net.slice{stage}.{key.removeprefix('features.')}"] = random
        else:
            state[f"lin{key.split('.')[1]}.model.1.weight"] = random.abs()
    return state


@pytest.fixture
def lpips_file(tmp_path: Path) -> Path:
    path = tmp_path / "lpips_vgg.pth"
    torch.save(lpips_package_state(TINY_VGG), path)
    return path


def test_perceptual_distance_from_the_lpips_package_layout(lpips_file: Path) -> None:
    distance = load_perceptual_distance(lpips_file, TINY_VGG)
    generator = torch.Generator().manual_seed(1)
    first, second = (torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1 for _ in range(2))
    first.requires_grad_(True)
    values = distance(first, second)
    assert values.shape == (2,) and torch.all(values > 0)
    torch.testing.assert_close(distance(second, first), values)  # symmetric
    assert distance(second, second).abs().max() == 0
    values.sum().backward()
    assert first.grad.abs().sum() > 0 and all(parameter.grad is None for parameter in distance.parameters())
    distance.train()
    assert not distance.training

    # the same weights under this module's own names give the same distance
    own = lpips_file.with_name("own.pth")
    torch.save(distance.state_dict(), own)
    torch.testing.assert_close(load_perceptual_distance(own, TINY_VGG)(first, second), values)


def test_perceptual_weights_that_do_not_fit_are_refused(lpips_file: Path, tmp_path: Path) -> None:
    with pytest.raises(IncompatibleWeightsError, match="lpips_vgg.pth"):
        load_perceptual_distance(lpips_file)  # VGG16 sizes: the file is tiny
    partial = lpips_package_state(TINY_VGG)
    del partial["lin0.model.1.weight"]
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(IncompatibleWeightsError, match="missing: linear.0.weight"):
        load_perceptual_distance(tmp_path / "partial.pth", TINY_VGG)


def test_generator_maps_a_crop_and_a_relationship_to_a_crop() -> None:
    generator = RelationshipGenerator(EMBEDDING, TINY_GENERATOR)
    mouths = torch.rand(2, 3, 32, 32) * 2 - 1
    output = generator(mouths, torch.randn(2, EMBEDDING))
    assert output.shape == mouths.shape and output.abs().max() <= 1
    with pytest.raises(InvalidArgumentError, match="relationship must be"):
        generator(mouths, torch.randn(3, EMBEDDING))


def test_reconstruction_trains_the_generators_and_the_audio_encoder_only(lpips_file: Path) -> None:
    torch.manual_seed(0)
    reconstruction = ReconstructionLoss(EMBEDDING, load_perceptual_distance(lpips_file, TINY_VGG), TINY_GENERATOR)
    model = StageOneModel(
        tiny_metric(), reconstruction, alpha=1.0, reconstruction_weight=1.0, encode_negative_window=True
    )
    mels = torch.rand(2, 3, 1, 80, 16) * 8 - 4
    mouths = torch.rand(2, 3, 3, 112, 112) * 2 - 1
    output = model(mels, mouths)
    assert output["reconstruction"] > 0
    torch.testing.assert_close(output["total"], output["losses"].total + output["reconstruction"])
    output["reconstruction"].backward()  # L_rec alone
    assert model.metric.audio_encoder.projection.weight.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in model.metric.mouth_encoder.parameters())
    for generator in (reconstruction.forward_generator, reconstruction.backward_generator):
        assert generator.encoder[1].weight.grad.abs().sum() > 0


def test_training_with_the_reconstruction_term(prepared_clips: Path, lpips_file: Path, tmp_path: Path) -> None:
    from tavce.training.checkpoint import load_checkpoint
    from tavce.training.tavc import train_tavc
    from tests.training.tavc_tiny import tiny_config

    config = tiny_config(
        max_steps=2, reconstruction=True, lpips_weights=str(lpips_file), perceptual=TINY_VGG, generator=TINY_GENERATOR
    )
    torch.manual_seed(0)
    result = train_tavc(prepared_clips, tmp_path, config, metric=tiny_metric())
    assert all(record.reconstruction_loss > 0 for record in result.history)
    model = load_checkpoint(result.checkpoint)["model"]
    assert any(key.startswith("reconstruction.forward_generator.") for key in model)


def test_perceptual_distance_stays_finite_under_float16_autocast() -> None:
    distance = PerceptualDistance(TINY_VGG)
    for layer in distance.features:
        if isinstance(layer, torch.nn.Conv2d):  # every ReLU output zero: features of norm 0 at every location
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.constant_(layer.bias, -1.0)
    images = torch.rand(1, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.float16):
        value = distance(images, images.clone())
    assert value.dtype == torch.float32 and torch.isfinite(value).all() and value.item() == 0
