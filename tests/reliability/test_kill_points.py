"""Killed half-way, resumed whole: SIGKILL at named phases (TAVCE_TEST_KILL_AT, tavce._kill_points).

Each case kills a real process at a phase, checks that the state there was partial and
that nothing half-written sits at a final path, then reruns the same command and compares
with an uninterrupted run.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from tavce._kill_points import KILL_AT_VARIABLE
from tavce.training.checkpoint import LATEST_NAME, load_checkpoint
from tavce.training.data import read_manifest
from tavce.training.plots import CURVES_NAME, METRICS_LOG
from tavce.training.renderer import save_training_config
from tests.reliability.conftest import dataset_contents, files_under, run_python
from tests.training.renderer.loop_tiny import command_line_config
from tests.training.tavc_tiny import tiny_config

KILLED = -signal.SIGKILL

PREPARE = """
import sys, torch
from tavce.training.data import PrepareConfig, prepare_dataset
from tests.helpers import SyntheticFaceLandmarker, tiny_face_recon
torch.manual_seed(0)  # the same tiny 3DMM network in every run
prepare_dataset(sys.argv[1], sys.argv[2], face_recon=tiny_face_recon(), landmarker=SyntheticFaceLandmarker(),
                config=PrepareConfig(crop_mode="resize"), progress=False)
"""


def _prepare(clips: Path, output: Path, kill_at: str | None = None):
    return run_python("-c", PREPARE, str(clips), str(output), env={KILL_AT_VARIABLE: kill_at} if kill_at else None)


@pytest.fixture(scope="module")
def straight_dataset(synthetic_clips, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("straight") / "data"
    assert _prepare(synthetic_clips, output).returncode == 0
    return output


@pytest.mark.parametrize(
    ("kill_at", "finished"),
    [
        pytest.param("prepare-data:frame@25", ["talker_000"], marks=pytest.mark.slow),  # 2nd video, 5th frame
        pytest.param("prepare-data:annotations", [], marks=pytest.mark.slow),  # 1st video: all but meta.json
        pytest.param("prepare-data:manifest", ["talker_000"], marks=pytest.mark.slow),  # 1st video's line written
    ],
)
def test_prepare_data_killed_at_each_phase_resumes_to_the_same_dataset(
    synthetic_clips, straight_dataset, tmp_path, kill_at, finished
):
    output = tmp_path / "data"
    assert _prepare(synthetic_clips, output, kill_at).returncode == KILLED
    assert sorted(path.name for path in output.iterdir() if (path / "meta.json").is_file()) == finished
    partial = [path.name for path in output.glob(".*.partial")]
    assert partial == ([] if kill_at == "prepare-data:manifest" else [f".talker_00{len(finished)}.partial"])
    for name in partial:  # the killed video really was half-written, and only in its partial folder
        assert not (output / name / "meta.json").exists() and any((output / name / "frames").iterdir())
    if kill_at == "prepare-data:manifest":  # tear the last line, as a kill inside the write would
        manifest = output / "manifest.jsonl"
        manifest.write_bytes(manifest.read_bytes()[:-25])
        assert [entry["name"] for entry in read_manifest(output)] == []

    assert _prepare(synthetic_clips, output).returncode == 0
    assert dataset_contents(output) == dataset_contents(straight_dataset)
    assert not list(output.glob(".*")), "no partial folder or temporary file is left"
    entries = {entry["name"]: entry["status"] for entry in read_manifest(output)}
    assert entries == {"talker_000": "ok", "talker_001": "ok"}


def _generate(portrait, audio: Path, weights: Path, output: Path, kill_at: str | None = None):
    photo, box = portrait
    return run_python(
        "-m", "tavce", "generate", str(photo), str(audio), "-o", str(output), "--weights", str(weights),
        "--face-box", ",".join(map(str, box)), "--no-progress", "--batch-size", "5", "--seed", "7",
        env={KILL_AT_VARIABLE: kill_at} if kill_at else None,
    )  # fmt: skip


@pytest.mark.slow
def test_generate_killed_mid_encode_leaves_no_video_and_reruns_to_the_same_file(
    portrait, short_speech, tiny_weights, tmp_path
):
    straight = tmp_path / "straight" / "talking.mp4"
    straight.parent.mkdir()
    assert _generate(portrait, short_speech, tiny_weights, straight).returncode == 0

    output = tmp_path / "out" / "talking.mp4"
    output.parent.mkdir()
    assert _generate(portrait, short_speech, tiny_weights, output, "generate:encode@5").returncode == KILLED
    leftovers = files_under(output.parent)
    assert "talking.mp4" not in leftovers
    workspace = [name for name in leftovers if name.endswith(".tavce-tmp")]
    assert len(workspace) == 1 and workspace[0].startswith(".talking.")  # half-encoded, in its work folder

    assert _generate(portrait, short_speech, tiny_weights, output).returncode == 0
    assert files_under(output.parent) == ["talking.mp4"], "the killed run's work folder is removed"
    assert output.read_bytes() == straight.read_bytes()


@pytest.mark.slow
def test_batch_killed_after_its_first_job_resumes_to_the_same_videos(portrait, short_speech, tiny_weights, tmp_path):
    photo, box = portrait
    face_box = ",".join(f"{value:.2f}" for value in box)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,audio,output,seed,face_box\n" + "".join(
        f'{photo},{short_speech},clip_{index}.mp4,{index},"{face_box}"\n' for index in range(3)))  # fmt: skip

    def batch(out: Path, kill_at: str | None = None):
        return run_python(
            "-m", "tavce", "batch", str(jobs), str(out), "--weights", str(tiny_weights), "--workers", "1",
            "--device", "cpu", "--no-progress", env={KILL_AT_VARIABLE: kill_at} if kill_at else None,
        )  # fmt: skip

    straight = tmp_path / "straight"
    assert batch(straight).returncode == 0
    out = tmp_path / "out"
    assert batch(out, "batch:record").returncode == KILLED
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(record["output"], record["status"]) for record in records] == [("clip_0.mp4", "ok")]
    assert sorted(path.name for path in out.glob("*.mp4")) == ["clip_0.mp4"]

    assert batch(out).returncode == 0
    for index in range(3):
        assert (out / f"clip_{index}.mp4").read_bytes() == (straight / f"clip_{index}.mp4").read_bytes()
    assert not list(out.glob(".*")), "no work folder is left"


@pytest.fixture(scope="module")
def training_settings(tmp_path_factory) -> dict[str, Path]:
    """The tiny settings files of both stages (stage 1 exports its metric, stage 2 its weights folder)."""
    folder = tmp_path_factory.mktemp("settings")
    return {
        "tavc": tiny_config(export_metric=True).save(folder / "tavc.json"),
        "renderer": save_training_config(command_line_config(), folder / "renderer.json"),
    }


def _train(
    stage: str, data: Path, output: Path, settings: dict[str, Path], weights: Path, *, kill_at=None, resume=False
):
    """Three steps, figures and a checkpoint after each; stage 2 trains the 'none' ablation from the tiny weights."""
    return run_python(
        "-m", "tavce", "train", stage, str(data), str(output), "--config", str(settings[stage]), "--max-steps", "3",
        "--checkpoint-every", "1", "--log-every", "1", "--device", "cpu", "--workers", "0", "--no-progress",
        *(["--init", str(weights), "--ablation", "none"] if stage == "renderer" else []),
        *(["--resume"] if resume else []),
        env={KILL_AT_VARIABLE: kill_at} if kill_at else None,
    )  # fmt: skip


def _comparable(value, name: str = "") -> dict[str, object]:
    """A checkpoint's contents flattened to {key path: value}, tensors as (dtype, shape, bytes)."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes()
        return {name: (str(value.dtype), tuple(value.shape), data)}
    if isinstance(value, dict):
        return {key: item for k, v in value.items() for key, item in _comparable(v, f"{name}/{k}").items()}
    if isinstance(value, (list, tuple)):
        return {key: item for i, v in enumerate(value) for key, item in _comparable(v, f"{name}/{i}").items()}
    return {name: value}


def _run_contents(output: Path) -> dict[str, object]:
    """Every file of a training run: checkpoints as their tensors and values, figures without the step times,
    the rest as bytes. Not the curves' picture: it is titled with the run's folder."""
    contents: dict[str, object] = {}
    for path in sorted(output.rglob("*")):
        if not path.is_file() or path.name == CURVES_NAME:
            continue
        name = str(path.relative_to(output))
        if path.suffix == ".pt":
            contents[name] = _comparable(load_checkpoint(path))
        elif path.name == METRICS_LOG:
            records = [json.loads(line) for line in path.read_text().splitlines()]
            contents[name] = [{key: value for key, value in record.items() if key != "seconds"} for record in records]
        else:
            contents[name] = path.read_bytes()
    return contents


@pytest.fixture(scope="module")
def straight_training(straight_dataset, training_settings, tiny_weights, tmp_path_factory):
    """The uninterrupted run of each stage, trained once when first asked for."""
    runs: dict[str, Path] = {}

    def run(stage: str) -> Path:
        if stage not in runs:
            output = tmp_path_factory.mktemp(f"straight-{stage}") / "run"
            done = _train(stage, straight_dataset, output, training_settings, tiny_weights)
            assert done.returncode == 0, done.stderr
            runs[stage] = output
        return runs[stage]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["tavc", "renderer"])
@pytest.mark.parametrize(
    ("kill_at", "left"),
    [
        ("train:step@2", ["step_00000001.pt"]),  # step 2 taken and logged, its checkpoint not written
        ("train:checkpoint@2", ["step_00000001.pt", "step_00000002.pt.partial"]),  # mid-write of step 2's file
        ("train:latest@2", ["step_00000001.pt", "step_00000002.pt"]),  # renamed, `latest` not moved yet
    ],
)
def test_training_killed_mid_step_or_mid_checkpoint_resumes_to_the_same_run(
    stage, kill_at, left, straight_dataset, training_settings, tiny_weights, straight_training, tmp_path
):
    output = tmp_path / "run"
    killed = _train(stage, straight_dataset, output, training_settings, tiny_weights, kill_at=kill_at)
    assert killed.returncode == KILLED, killed.stderr
    checkpoints = output / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == sorted([LATEST_NAME, *left])
    assert (checkpoints / LATEST_NAME).read_text().strip() == "step_00000001.pt"
    for path in checkpoints.glob("*.pt"):  # what sits at a final path is whole
        assert load_checkpoint(path)["position"]["global_step"] == int(path.stem.split("_")[1])
    logged = [json.loads(line)["step"] for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2], "the killed step's figures were logged (the resumed run drops them)"

    resumed = _train(stage, straight_dataset, output, training_settings, tiny_weights, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    # Checkpoints (weights, optimiser, RNG states), figures and the exported result: as the straight run's.
    assert _run_contents(output) == _run_contents(straight_training(stage))
