"""``tavce train tavc``: every option documented and mapped to the config; a run from the command line."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from tavce import cli
from tavce.commands.train import CONFIG_FILE_ONLY, TAVC_EPILOG, TAVC_OPTION_FIELDS, tavc_config
from tavce.errors import InvalidArgumentError
from tavce.training.tavc import TAVCTrainingConfig
from tests.training.tavc_tiny import TINY_MOUTH, tiny_config


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """main() configures the root logger for the process; undo it so later tests are unaffected."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in [handler for handler in root.handlers if handler not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def _tavc_parser():
    parser = cli.build_parser(cli.available_subcommands())
    train = parser._subparsers._group_actions[0].choices["train"]
    return train._subparsers._group_actions[0].choices["tavc"]


def test_help_documents_every_option_and_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "tavc", "--help"]) == 0
    text = capsys.readouterr().out
    for action in _tavc_parser()._actions:
        assert action.help and len(action.help) > 10, action.dest
        for option in action.option_strings:
            assert option in text
    fields = {field.name for field in dataclasses.fields(TAVCTrainingConfig)}
    assert set(TAVC_OPTION_FIELDS) | set(CONFIG_FILE_ONLY) == fields
    assert all(name in TAVC_EPILOG for name in CONFIG_FILE_ONLY)
    assert "--max-steps 40000" in text  # the paper's schedule


def test_options_override_the_config_file(tmp_path: Path) -> None:
    path = tiny_config(seed=7, max_steps=9).save(tmp_path / "tavc.json")
    arguments = _tavc_parser().parse_args(
        ["d", "o", "--config", str(path), "--seed", "3", "--epochs", "0", "--skip-negative-window"]
    )
    config = tavc_config(arguments)
    assert config == dataclasses.replace(tiny_config(max_steps=9), seed=3, epochs=None, encode_negative_window=False)
    sized = tavc_config(_tavc_parser().parse_args(["d", "o", "--embedding-dim", "64"]))
    assert sized.embedding_dim == sized.mouth_encoder.embedding_dim == 64


def test_config_files_round_trip_and_name_their_problems(tmp_path: Path) -> None:
    config = tiny_config(adam_betas=(0.5, 0.9))
    assert TAVCTrainingConfig.load(config.save(tmp_path / "c.json")) == config
    assert TAVCTrainingConfig.load(config.save(tmp_path / "c.yaml")) == config
    (tmp_path / "bad.json").write_text('{"learning_rat": 1}')
    with pytest.raises(InvalidArgumentError, match=r"bad.json: .*learning_rat"):
        TAVCTrainingConfig.load(tmp_path / "bad.json")
    with pytest.raises(InvalidArgumentError, match="reconstruction needs lpips_weights"):
        TAVCTrainingConfig(reconstruction=True)
    with pytest.raises(InvalidArgumentError, match="mouth_encoder.embedding_dim 16 differs"):
        TAVCTrainingConfig(mouth_encoder=TINY_MOUTH)


def test_train_from_the_command_line(prepared_clips: Path, tmp_path: Path) -> None:
    path = tiny_config(export_metric=True).save(tmp_path / "tiny.json")
    output = tmp_path / "run"
    assert cli.main(["train", "tavc", str(prepared_clips), str(output), "--config", str(path), "--max-steps", "1"]) == 0
    assert (output / "checkpoints" / "step_00000001.pt").is_file() and (output / "metric" / "config.json").is_file()
    assert TAVCTrainingConfig.load(output / "training_config.json").max_steps == 1
    # continue the run one more step from its newest checkpoint
    assert (
        cli.main(
            ["train", "tavc", str(prepared_clips), str(output), "--config", str(path), "--max-steps", "2", "--resume"]
        )
        == 0
    )
    assert (output / "checkpoints" / "step_00000002.pt").is_file()
    assert cli.main(["train", "tavc", str(tmp_path / "none"), str(output), "--config", str(path)]) == 2


def _renderer_parser():
    parser = cli.build_parser(cli.available_subcommands())
    train = parser._subparsers._group_actions[0].choices["train"]
    return train._subparsers._group_actions[0].choices["renderer"]


def test_renderer_help_documents_every_option_and_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    from tavce.commands.train import RENDERER_CONFIG_FILE_ONLY, RENDERER_EPILOG, RENDERER_OPTION_FIELDS
    from tavce.training.renderer import RendererRunConfig, RendererTrainingConfig

    assert cli.main(["train", "renderer", "--help"]) == 0
    text = capsys.readouterr().out
    for action in _renderer_parser()._actions:
        assert action.help and len(action.help) > 10, action.dest
        for option in action.option_strings:
            assert option in text
    # Every training field has an option or is named in the epilog; every run field has an option.
    config_fields = {field.name for field in dataclasses.fields(RendererTrainingConfig)}
    options = {name.split(".", 1)[1] for name in RENDERER_OPTION_FIELDS if name.startswith("config.")}
    assert (options - {"epochs", "repeats"}) | set(RENDERER_CONFIG_FILE_ONLY) == config_fields
    assert all(name in RENDERER_EPILOG for name in RENDERER_CONFIG_FILE_ONLY if name not in ("variant", "cerl"))
    run_fields = {field.name for field in dataclasses.fields(RendererRunConfig)}
    assert {name.split(".", 1)[1] for name in RENDERER_OPTION_FIELDS if name.startswith("run.")} == run_fields
    assert "--ablation" in text and "no-cerl" in text and "12,500" in text  # the paper's schedule


def test_renderer_options_override_the_config_file(tmp_path: Path) -> None:
    from tavce.commands.train import renderer_configs
    from tavce.training.renderer import RendererTrainingConfig, TrainingConfigError, save_training_config

    path = save_training_config(RendererTrainingConfig(seed=7, batch_size=3), tmp_path / "s2.json")
    arguments = _renderer_parser().parse_args(
        ["d", "o", "--config", str(path), "--ablation", "no-car", "--epochs", "2", "--repeats", "3", "--seed", "1",
         "--init", "a.pth.tar", "facevid2vid_00189-model.pth.tar", "--init", "weights/", "--max-steps", "9",
         "--no-export", "--landmarker", "dlib", "--no-sync-batch-norm"]
    )  # fmt: skip
    config, run = renderer_configs(arguments)
    assert (config.variant, config.cerl, config.losses.car) == ("no-car", True, 0.0)
    assert (config.schedule.epochs, config.data.repeats, config.seed, config.batch_size) == (2, 3, 1, 3)
    assert run.init == (("a.pth.tar", "facevid2vid_00189-model.pth.tar"), "weights/")
    assert (run.max_steps, run.export, run.landmarker, run.sync_batch_norm) == (9, False, "dlib", False)
    with pytest.raises(TrainingConfigError, match="one source per --init"):
        renderer_configs(_renderer_parser().parse_args(["d", "o", "--init", "a", "b", "c"]))


def test_train_renderer_from_the_command_line(prepared_clips: Path, tmp_path: Path) -> None:
    """The 'none' ablation (no metric, no landmarker needed) from a tavce folder, one step, then one more."""
    from tavce import TalkingHeadPipeline
    from tavce.testing import make_tiny_checkpoint
    from tavce.training.renderer import save_training_config
    from tests.training.renderer.loop_tiny import command_line_config

    weights = make_tiny_checkpoint(tmp_path / "weights")
    path = save_training_config(command_line_config(), tmp_path / "s2.json")
    output = tmp_path / "run"
    common = ["train", "renderer", str(prepared_clips), str(output), "--config", str(path), "--init", str(weights),
              "--ablation", "none", "--device", "cpu", "--workers", "0", "--no-progress"]  # fmt: skip
    assert cli.main([*common, "--max-steps", "1"]) == 0
    assert (output / "checkpoints" / "step_00000001.pt").is_file()
    assert cli.main([*common, "--max-steps", "2", "--resume"]) == 0
    assert (output / "checkpoints" / "step_00000002.pt").is_file()
    pipe = TalkingHeadPipeline.from_pretrained(output / "weights")  # base: the --init folder
    assert not pipe.has_cerl  # the 'none' variant trains SadTalker's renderer
    assert cli.main(["train", "renderer", str(prepared_clips), str(output), "--ablation", "full", "--init",
                     str(weights), "--device", "cpu"]) == 2  # fmt: skip  # CAR without --metric
