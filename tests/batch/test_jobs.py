"""Job files and their validation: one validator for the options, outputs kept inside OUT, keys for resumption."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tavce.batch import BatchJob
from tavce.batch.jobs import PlannedJob, RefusedJob, output_inside, plan_jobs, read_job_file
from tavce.errors import InvalidArgumentError


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "face.png").write_bytes(b"photo bytes")
    (folder / "talk.wav").write_bytes(b"audio bytes")
    return folder


def _plan(jobs, out: Path, base: Path, identity: str = "weights-1"):
    return plan_jobs(jobs, out, base=base, pipeline_identity=identity)


def test_csv_rows_are_validated_alone_with_where_they_come_from(inputs: Path, tmp_path: Path) -> None:
    (inputs / "jobs.csv").write_text(
        "image,audio,output,seed,still\n"
        "face.png,talk.wav,one.mp4,3,true\n"
        "face.png,talk.wav,two.mp4,three,\n"
        "face.png,missing.wav,three.mp4,,\n"
        ",talk.wav,four.mp4,,\n"
    )
    planned = _plan(read_job_file(inputs / "jobs.csv"), tmp_path / "out", inputs)
    good, bad_seed, missing, no_image = planned
    assert isinstance(good, PlannedJob) and good.image == (inputs / "face.png").resolve()
    assert good.options == {"seed": "3", "still": "true"} and good.output == "one.mp4"
    assert isinstance(bad_seed, RefusedJob) and bad_seed.error.startswith(f"{inputs / 'jobs.csv'} row 2: seed=")
    assert "missing.wav" in missing.error and "job file's folder" in missing.error
    assert "no image" in no_image.error


def test_pipeline_options_and_unknown_columns_are_refused_with_the_reason(inputs: Path, tmp_path: Path) -> None:
    rows = [{"image": "face.png", "audio": "talk.wav", "size": "512"},
            {"image": "face.png", "audio": "talk.wav", "output": "b.mp4", "colour": "red"},
            {"image": "face.png", "audio": "talk.wav", "output": "c.mp4", "preprocess": "full"}]  # fmt: skip
    size, unknown, sadtalker = _plan(rows, tmp_path / "out", inputs)
    assert "size is not a per-call option" in size.error and "--size" in size.error
    assert "unknown option 'colour'" in unknown.error and "pose_style" in unknown.error
    assert "SadTalker's preprocess is mode" in sadtalker.error


@pytest.mark.parametrize(
    "name",
    ["../x.mp4", "sub/../../x.mp4", "/tmp/x.mp4", "~/x.mp4", "C:/x.mp4", "a\x00.mp4", "a\\..\\x.mp4", "CON.mp4",
     "results.jsonl", ".hidden.mp4", "video.avi", ""],
)  # fmt: skip
def test_output_names_cannot_leave_out(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="output"):
        output_inside(tmp_path, name)


def test_a_symbolic_link_in_out_cannot_lead_outside(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    os.symlink(elsewhere, out / "link")
    os.symlink(elsewhere / "v.mp4", out / "v.mp4")
    for name in ("link/x.mp4", "v.mp4"):
        with pytest.raises(InvalidArgumentError, match="symbolic link"):
            output_inside(out, name)
    assert output_inside(out, "sub/ok.mp4") == (out / "sub" / "ok.mp4").resolve()


def test_jsonl_dicts_and_dataclasses_and_duplicate_outputs(inputs: Path, tmp_path: Path) -> None:
    (inputs / "jobs.jsonl").write_text(
        json.dumps({"image": "face.png", "audio": "talk.wav", "seed": 1}) + "\n\n{not json\n[1, 2]\n"
    )
    rows = read_job_file(inputs / "jobs.jsonl")
    first, malformed, not_object = _plan(rows, tmp_path / "out", inputs)
    assert isinstance(first, PlannedJob) and first.output == "face-talk.mp4"  # default name: image-audio
    assert "row 2: not JSON" in malformed.error and "JSON object" in not_object.error
    jobs = [BatchJob(inputs / "face.png", inputs / "talk.wav", "x.mp4", {"pose_style": 4}),
            {"image": str(inputs / "face.png"), "audio": str(inputs / "talk.wav"), "output": "x.mp4"}]  # fmt: skip
    dataclass_job, duplicate = _plan(jobs, tmp_path / "out", tmp_path)
    assert isinstance(dataclass_job, PlannedJob) and dataclass_job.options == {"pose_style": 4}
    assert isinstance(duplicate, RefusedJob) and "already written by job 1" in duplicate.error


def test_the_key_follows_contents_options_and_weights(inputs: Path, tmp_path: Path) -> None:
    def key(options=None, identity="weights-1") -> str:
        job = {"image": "face.png", "audio": "talk.wav", **(options or {"seed": "1"})}
        return _plan([job], tmp_path / "out", inputs, identity)[0].key

    reference = key()
    assert key({"seed": 1}) == reference  # the validated value counts, not its spelling
    assert key({"seed": "2"}) != reference and key(identity="weights-2") != reference
    (inputs / "talk.wav").write_bytes(b"other audio")
    assert key() != reference


def test_job_files_of_other_kinds_or_empty_are_refused(tmp_path: Path) -> None:
    (tmp_path / "jobs.txt").write_text("image,audio\n")
    (tmp_path / "empty.csv").write_text("image,audio\n")
    with pytest.raises(InvalidArgumentError, match=r"\.csv .* or \.jsonl"):
        read_job_file(tmp_path / "jobs.txt")
    with pytest.raises(InvalidArgumentError, match="no jobs"):
        read_job_file(tmp_path / "empty.csv")
    with pytest.raises(InvalidArgumentError, match="not found"):
        read_job_file(tmp_path / "nothing.csv")
