"""Initial weights of stage 2: non-strict loads, spectral-norm (un)folding, official files, tavce folders, the metric."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.models.renderer.generator import GeneratorConfig, OcclusionAwareSPADEGenerator
from tavce.models.renderer.spectral import fold_spectral_norm
from tavce.testing import make_official_checkpoint, make_tiny_checkpoint
from tavce.training.renderer import (
    RendererTrainer,
    RendererTrainingConfig,
    VGG19Features,
    load_metric,
    read_renderer_parts,
)
from tavce.training.renderer.weights import load_part, unfold_spectral_norm
from tests.helpers import SyntheticFaceLandmarker
from tests.training.renderer.tiny import TINY_VGG, cached_tiny_components, tiny_batch, tiny_training_config


def test_folded_weights_unfold_to_the_same_effective_weight() -> None:
    conv = nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(4, 6, 3))).eval()  # keys "0.weight_orig" …
    folded = torch.randn(6, 4, 3, 3)
    state = unfold_spectral_norm({"0.weight": folded, "0.bias": torch.zeros(6)}, conv.state_dict())
    assert set(state) == set(conv.state_dict())
    conv.load_state_dict(state)
    image = torch.randn(1, 4, 8, 8)
    # σ of the unfolded triple is W's largest singular value, so the module divides by it: W/σ(W).
    sigma = torch.linalg.matrix_norm(folded.reshape(6, -1), ord=2)
    torch.testing.assert_close(
        conv(image), nn.functional.conv2d(image, folded / sigma, conv[0].bias), rtol=1e-4, atol=1e-5
    )
    # Folding a spectral triple and unfolding it again leaves the effective weight unchanged.
    again = unfold_spectral_norm(fold_spectral_norm(conv.state_dict()), conv.state_dict())
    effective = fold_spectral_norm(again)["0.weight"]
    torch.testing.assert_close(effective, fold_spectral_norm(conv.state_dict())["0.weight"], rtol=1e-4, atol=1e-6)


def test_load_part_is_lenient_on_missing_keys_only() -> None:
    config = GeneratorConfig(**{**cached_tiny_components(0)["renderer"].generator.config.__dict__, "cerl": True})
    generator = OcclusionAwareSPADEGenerator(config)
    without_fusion = {k: v for k, v in generator.state_dict().items() if not k.startswith("fusion.")}
    loaded, fresh = load_part(generator, without_fusion, "generator")
    assert loaded == len(without_fusion) and fresh == sorted(
        k for k in generator.state_dict() if k.startswith("fusion.")
    )
    with pytest.raises(IncompatibleWeightsError, match="unexpected: extra.weight"):
        load_part(generator, {**without_fusion, "extra.weight": torch.zeros(1)}, "generator")
    with pytest.raises(IncompatibleWeightsError, match="shape mismatch: first.conv.weight"):
        load_part(generator, {**without_fusion, "first.conv.weight": torch.zeros(1)}, "generator")


def test_a_metric_of_another_size_is_refused() -> None:
    import dataclasses

    renderer_config = cached_tiny_components(0)["renderer"].config
    wider = dataclasses.replace(
        renderer_config, generator=dataclasses.replace(renderer_config.generator, relationship_dim=8)
    )
    with pytest.raises(InvalidArgumentError, match="4 dimensions but the generator's CERL layers expect 8"):
        RendererTrainer.from_pretrained(
            [], cached_tiny_components(0)["metric"], tiny_training_config(), renderer_config=wider
        )


def test_tavce_folder_start_and_metric(tmp_path: Path) -> None:
    folder = make_tiny_checkpoint(tmp_path / "tiny", seed=2)
    parts, read = read_renderer_parts([folder])
    assert set(parts) == {"kp_detector", "mapping", "generator"} and read == [str(folder)]
    metric = load_metric(folder)
    renderer_config = cached_tiny_components(0)["renderer"].config
    trainer = RendererTrainer.from_pretrained(
        [folder], metric, tiny_training_config(), renderer_config=renderer_config,
        landmarker=SyntheticFaceLandmarker(), perceptual_network=VGG19Features(TINY_VGG), image_size=128,
    )  # fmt: skip
    assert trainer.initial_weights.fresh["generator"] == [] and trainer.initial_weights.loaded["mapping"] == 18
    assert all(key.startswith("discriminators.") for key in trainer.initial_weights.fresh["discriminator"])
    mapping = trainer.modules.mapping.state_dict()
    assert all(torch.equal(mapping[k], v) for k, v in parts["mapping"].items())
    losses = trainer.train_step(tiny_batch())
    assert "car" in losses


def test_unknown_sources_are_refused(tmp_path: Path) -> None:
    (tmp_path / "model.pth").write_bytes(b"")
    with pytest.raises(InvalidArgumentError, match="official name"):
        read_renderer_parts([tmp_path / "model.pth"])
    with pytest.raises(InvalidArgumentError, match="not a tavce weights folder"):
        read_renderer_parts([tmp_path])
    with pytest.raises(IncompatibleWeightsError, match="no metric"):
        load_metric(make_tiny_checkpoint(tmp_path / "plain", cerl=False))


@pytest.mark.slow
def test_official_facevid2vid_and_mapping_start_with_fresh_fusion(tmp_path: Path) -> None:
    """TAVCE's own start (full official sizes): face-vid2vid generator, detector, estimator and discriminator + MappingNet."""
    renamed = tmp_path / "00000189-checkpoint.pth.tar"
    facevid2vid, mapping, correlation = make_official_checkpoint(
        tmp_path,
        ["facevid2vid_00189-model.pth.tar", "mapping_00229-model.pth.tar", "tavce_correlation_epoch_N.pth"],
        include_optional=True,
    )
    facevid2vid.rename(renamed)
    parts, _ = read_renderer_parts([(renamed, "facevid2vid_00189-model.pth.tar"), mapping])
    assert set(parts) == {"kp_detector", "generator", "he_estimator", "discriminator", "mapping"}
    trainer = RendererTrainer.from_pretrained(
        [(renamed, "facevid2vid_00189-model.pth.tar"), mapping], load_metric(correlation),
        RendererTrainingConfig(), landmarker=SyntheticFaceLandmarker(), perceptual_network=VGG19Features(TINY_VGG),
    )  # fmt: skip
    report = trainer.initial_weights
    assert report.fresh["generator"] == sorted(
        k for k in trainer.modules.generator.state_dict() if k.startswith("fusion.")
    )
    assert report.fresh["discriminator"] == [] and report.fresh["mapping"] == [] and report.fresh["kp_detector"] == []
