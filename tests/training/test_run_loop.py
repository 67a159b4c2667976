"""The run loop both stages share: call forms, settings files, held-out splits, validation, TensorBoard and curves."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest
import torch

from tavce import cli
from tavce.errors import ConfigError, InvalidArgumentError, MissingExtraError
from tavce.training.checkpoint import load_checkpoint
from tavce.training.data import TAVCDataset, split_by_identity
from tavce.training.renderer import RendererTrainingConfig, load_training_config
from tavce.training.tavc import TAVCTrainingConfig, train_tavc
from tests.training.tavc_tiny import tiny_config, tiny_metric


def test_the_earlier_call_form_warns_and_the_config_first_form_does_not(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"train_tavc\(config, data, output\)"):
        with pytest.raises(InvalidArgumentError, match="no manifest.jsonl"):
            train_tavc(tmp_path / "absent", tmp_path / "out", tiny_config(), metric=tiny_metric())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(InvalidArgumentError, match="no manifest.jsonl"):
            train_tavc(tiny_config(), tmp_path / "absent", tmp_path / "out", metric=tiny_metric())


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("learning_rat: 1\n", r"unknown field learning_rat; valid fields: .*\blearning_rate\b"),
        ("learning_rate: fast\n", r"learning_rate='fast': expected float or int"),
        ("mouth_encoder: {stem_channel: 4}\n", r"unknown field mouth_encoder.stem_channel; valid fields of mouth_encoder"),
        ("mixed_precision: fp32\n", r"mixed_precision must be None \(automatic\) or one of auto, float32"),
        ("- a list\n", r"the top level must be a mapping"),
        ("epochs: [1\n", r"not valid YAML"),
    ],
)
def test_settings_files_name_the_file_and_the_field(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "stage1.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named) as error:
        TAVCTrainingConfig.load(path)
    assert str(error.value).startswith(str(path)) and "newer tavce" not in str(error.value)


def test_both_stages_read_settings_files_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "stage2.json"
    path.write_text(json.dumps({"losses": {"l1": "x"}}))
    with pytest.raises(ConfigError, match=r"stage2.json: losses.l1='x': expected float or int"):
        load_training_config(path)
    path.write_text(json.dumps({"schedule": {"epochs": 2}, "optimizer": {"betas": [0.5, 0.9]}}))
    config = load_training_config(path)
    assert config.schedule.epochs == 2 and config.optimizer.betas == (0.5, 0.9)
    assert config == RendererTrainingConfig(schedule=config.schedule, optimizer=config.optimizer)


def test_held_out_identities_are_not_trained_on(prepared_clips: Path) -> None:
    dataset = TAVCDataset(prepared_clips)
    training, held_out = split_by_identity(dataset, 0.5, seed=0)
    trained = {video.identity for video in training.videos}
    validated = {video.identity for video in held_out.videos}
    assert len(trained) == len(validated) == 1 and not trained & validated
    assert trained | validated == {video.identity for video in dataset.videos}
    assert len(training) == len(training.units) * dataset.config.repeats
    with pytest.raises(ConfigError, match="val_fraction=1.5"):
        split_by_identity(dataset, 1.5, seed=0)


def test_validation_every_n_steps_keeps_the_best_checkpoint_and_leaves_training_unchanged(
    prepared_clips: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    plain = train_tavc(tiny_config(max_steps=4, val_fraction=0.5), prepared_clips, tmp_path / "plain", metric=tiny_metric())
    torch.manual_seed(0)
    watched = train_tavc(
        tiny_config(max_steps=4, val_fraction=0.5, validate_every=2, validation_items=4, tensorboard=True),
        prepared_clips, tmp_path / "watched", metric=tiny_metric(),
    )  # fmt: skip
    # Validating draws no random numbers of the training run: the same losses, exactly.
    assert [record.loss for record in watched.history] == [record.loss for record in plain.history]
    logged = [json.loads(line) for line in (tmp_path / "watched" / "validation.jsonl").read_text().splitlines()]
    assert [record["step"] for record in logged] == [2, 4]
    for record in logged:
        assert 0 <= record["ranked"] <= 1
        assert record["gap"] == pytest.approx(record["cos_positive"] - record["cos_negative"])
    best = max(logged, key=lambda record: record["gap"])
    state = load_checkpoint(tmp_path / "watched" / "checkpoints" / "best.pt")
    assert state["position"]["global_step"] == best["step"] and state["best"]["value"] == pytest.approx(best["gap"])
    assert (tmp_path / "watched" / "checkpoints" / "latest").read_text().strip() == "step_00000004.pt"
    assert list((tmp_path / "watched" / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "watched" / "curves.png").stat().st_size > 1000


def test_without_the_train_extra_the_run_says_once_that_it_draws_no_curves(
    prepared_clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import tavce.training.plots

    def missing(module: str, extra: str):
        raise MissingExtraError(f"{module} is not installed; pip install 'tavce[{extra}]'")

    monkeypatch.setattr(tavce.training.plots, "require", missing)
    with caplog.at_level(logging.INFO, logger="tavce"):
        train_tavc(tiny_config(max_steps=2), prepared_clips, tmp_path, metric=tiny_metric())
    said = [record.getMessage() for record in caplog.records if "no plots written" in record.getMessage()]
    assert len(said) == 1 and "tavce[train]" in said[0]
    assert not (tmp_path / "curves.png").exists()


def test_plot_command_draws_a_run_and_names_a_folder_that_is_not_one(
    tmp_path: Path, restore_root_logging: None
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    records = [{"step": step, "loss": 1 / step, "learning_rate": 1e-4, "losses": {"l1": 0.5 / step}} for step in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    (run / "validation.jsonl").write_text(json.dumps({"step": 3, "l1": 0.2, "psnr": 14.0}) + "\n")
    assert cli.main(["plot", str(run)]) == 0
    assert (run / "curves.png").stat().st_size > 1000
    assert cli.main(["plot", str(tmp_path / "empty")]) == 2
