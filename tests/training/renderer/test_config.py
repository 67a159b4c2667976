"""Stage-2 training configuration: paper defaults, file round trips, refused values, Table IV presets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tavce.training.renderer import (
    ABLATION_VARIANTS,
    LossWeights,
    RendererTrainingConfig,
    TrainingConfigError,
    ablation_config,
    load_training_config,
    save_training_config,
)


def test_defaults_are_the_paper_settings() -> None:
    config = RendererTrainingConfig()
    losses = config.losses
    assert losses.perceptual == (10.0,) * 5 and losses.perceptual_scales == (1.0, 0.5, 0.25, 0.125)
    assert (losses.generator_gan, losses.discriminator_gan, losses.feature_matching) == (1.0, 1.0, (10.0,) * 4)
    assert (losses.l1, losses.expression, losses.car, losses.mouth) == (20.0, 5.0, 0.1, 0.0)
    assert (losses.equivariance, losses.keypoint_prior, losses.head_pose) == (0.0, 0.0, 0.0)
    optimizer = config.optimizer
    assert optimizer.betas == (0.5, 0.999) and optimizer.mapping_lr == 2e-4
    assert optimizer.generator_lr == optimizer.discriminator_lr == optimizer.keypoint_detector_lr == 2e-5
    assert (config.schedule.epochs, config.schedule.milestones, config.schedule.mapping_milestones) == (5, (8,), (4, 8))
    assert (
        config.batch_size == 4
        and config.data.repeats == 50
        and config.data.identity_sampling
        and config.data.window == 27
    )
    trainable = config.trainable
    assert trainable.dense_motion and trainable.fusion and trainable.mapping
    assert not (trainable.keypoint_detector or trainable.generator_rest or trainable.head_pose_estimator)
    assert config.cerl and config.variant == "full" and config.discriminator.scales == (1.0,)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file_round_trip(tmp_path: Path, suffix: str) -> None:
    if suffix == ".yaml":
        pytest.importorskip("yaml")
    config = dataclasses.replace(
        ablation_config("no-car"), losses=dataclasses.replace(LossWeights(), l1=3.0, car=0.0), vgg19_weights="vgg.pth"
    )
    path = save_training_config(config, tmp_path / f"stage2{suffix}")
    assert load_training_config(path) == config


def test_partial_file_takes_defaults(tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"losses": {"car": 0.5}, "schedule": {"epochs": 2}}))
    config = load_training_config(path)
    assert config.losses.car == 0.5 and config.schedule.epochs == 2 and config.losses.l1 == 20.0


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"losses": {"carr": 0.1}}, "carr"),
        ({"losses": {"l1": -1}}, "losses.l1"),
        ({"optimizer": {"mapping_lr": 0}}, "optimizer.mapping_lr"),
        ({"schedule": {"mapping_milestones": [8, 4]}}, "schedule.mapping_milestones"),
        ({"losses": {"feature_matching": [10, 10]}}, "feature_matching"),
        ({"data": {"window": 26}}, "window"),
    ],
)
def test_bad_files_are_refused_naming_the_field(tmp_path: Path, values: dict, named: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(values))
    with pytest.raises(TrainingConfigError, match=named) as error:
        load_training_config(path)
    assert str(path) in str(error.value)


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(TrainingConfigError, match="not valid JSON"):
        load_training_config(tmp_path / "broken.json")
    with pytest.raises(TrainingConfigError, match="not found"):
        load_training_config(tmp_path / "missing.json")


def test_ablation_presets_are_table_iv() -> None:
    assert ABLATION_VARIANTS == ("full", "no-cerl", "no-car", "none")
    settings = {name: (ablation_config(name).cerl, ablation_config(name).losses.car) for name in ABLATION_VARIANTS}
    assert settings == {"full": (True, 0.1), "no-cerl": (False, 0.1), "no-car": (True, 0.0), "none": (False, 0.0)}
    assert all(ablation_config(name).variant == name for name in ABLATION_VARIANTS)
    # Presets change only CERL and CAR: everything else of the base is kept.
    base = dataclasses.replace(RendererTrainingConfig(), batch_size=7)
    assert ablation_config("none", base).batch_size == 7
    with pytest.raises(TrainingConfigError, match="no-cerl"):
        ablation_config("without-cerl")
