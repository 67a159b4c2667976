"""docs/training.md's walkthrough, run as written: videos -> prepare-data -> train tavc -> train renderer -> generate -> evaluate."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from tavce import cli
from tavce.commands import evaluate as evaluate_command
from tavce.testing import make_synthetic_videos, make_tiny_checkpoint
from tavce.types import SAMPLE_RATE
from tavce.video_reader import read_video
from tests.helpers import SyntheticFaceLandmarker, write_tiny_training_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def walkthrough_commands() -> list[list[str]]:
    """The command lines of the block after the walkthrough marker, comments left out."""
    text = DOCS.read_text()
    block = text.split("<!-- walkthrough")[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _inputs(folder: Path) -> None:
    """Two synthetic clips, tiny weights and settings, and a photo and speech taken from the first clip."""
    make_synthetic_videos(folder / "videos", n=2, seconds=0.8, seed=0)
    make_tiny_checkpoint(folder / "weights")
    clip = read_video(folder / "videos" / "talker_000.mp4")
    Image.fromarray(clip.frames[0]).resize((256, 256), Image.BICUBIC).save(folder / "photo.png")
    soundfile.write(folder / "speech.wav", clip.audio.samples, SAMPLE_RATE)
    write_tiny_training_settings(folder)


def test_the_documented_chain_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    commands = walkthrough_commands()
    assert [command[:2] for command in commands] == [
        ["tavce", "prepare-data"], ["tavce", "train"], ["tavce", "train"], ["mkdir", "-p"], ["tavce", "generate"],
        ["tavce", "evaluate"], ["tavce", "plot"],
    ]  # fmt: skip
    _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    # Two training steps of the tiny renderer draw no face that dlib finds reliably: `tavce evaluate` gets
    # the synthetic face's known landmarks instead (the other steps find faces with dlib, as written).
    monkeypatch.setattr(evaluate_command, "make_landmarker", lambda name: SyntheticFaceLandmarker())
    for command in commands:
        if command[0] == "tavce":
            assert cli.main(command[1:]) == 0, shlex.join(command)
        else:
            subprocess.run(command, check=True)

    stage_one, stage_two = tmp_path / "runs" / "tavc", tmp_path / "runs" / "renderer"
    assert (stage_one / "metric" / "config.json").is_file()
    validation = [json.loads(line) for line in (stage_one / "validation.jsonl").read_text().splitlines()]
    assert [record["step"] for record in validation] == [4]  # at the end of the run
    assert 0 <= validation[-1]["ranked"] <= 1 and -1 <= validation[-1]["gap"] <= 1
    assert (stage_one / "checkpoints" / "best.pt").is_file()

    samples = sorted((stage_two / "samples").glob("step_*.png"))
    assert [path.name for path in samples] == ["step_00000002.png"]
    picture = np.asarray(Image.open(samples[0]))
    assert picture.shape == (256, 3 * 256, 3) and picture.std() > 0  # source | driving | generated
    figures = json.loads((stage_two / "validation.jsonl").read_text().splitlines()[-1])
    assert 0 <= figures["l1"] <= 1 and figures["psnr"] > 0
    for run in (stage_one, stage_two):
        assert (run / "curves.png").stat().st_size > 1000
    assert (tmp_path / "generated" / "talker_000.mp4").stat().st_size > 0
    assert "talker_000" in capsys.readouterr().out  # the evaluation table, one row per generated video
