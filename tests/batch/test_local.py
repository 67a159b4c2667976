"""``tavce batch`` on local worker processes: videos, failures in their rows, results.jsonl, reruns."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from tavce.batch import LocalExecutor, run_batch
from tavce.cli import main
from tests.batch.conftest import GOOD_OUTPUTS
from tests.batch.runners import FailingSetupRunner, check_isolation_and_retry
from tests.helpers import probe


def _records(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {record["output"]: record for record in map(json.loads, lines)}


def test_two_workers_write_every_good_row_and_fail_the_others_alone(local_batch) -> None:
    status, out = local_batch
    assert status == 1  # some rows failed
    records = _records(out)
    assert set(records) == {*GOOD_OUTPUTS, "faceless.mp4", "bad.mp4"}
    for name in GOOD_OUTPUTS:
        record = records[name]
        assert record["status"] == "ok" and record["frames"] == 30 and record["error"] is None
        assert imageio_ffmpeg.count_frames_and_secs(str(out / name))[0] == 30
        assert re.search(r"Audio: aac", probe(out / name))
        assert record["worker"].startswith("local-") and record["seconds"] > 0 and len(record["key"]) == 32
    # The first two jobs went to the two workers at once.
    assert records["a.mp4"]["worker"] != records["sub/b.mp4"]["worker"]
    faceless = records["faceless.mp4"]
    assert faceless["status"] == "failed" and faceless["error_type"] == "FaceNotDetectedError"
    assert "no face found" in faceless["error"] and faceless["row"].endswith("jobs.csv row 3")
    bad = records["bad.mp4"]
    assert bad["error_type"] == "InvalidArgumentError" and "row 4: pose_style=99" in bad["error"]
    assert not (out / "faceless.mp4").exists() and not (out / "bad.mp4").exists()
    assert not list(out.rglob("*.tavce-tmp"))  # every video was moved into place whole


class _NoExecutor:
    def map(self, runner, tasks):
        raise AssertionError("a finished job was run again")


def test_rerun_skips_settled_jobs_before_starting_any_worker(local_batch, job_folder: Path, tiny_weights) -> None:
    _, out = local_batch
    before = {name: (out / name).stat().st_mtime_ns for name in GOOD_OUTPUTS}
    started = time.perf_counter()
    report = run_batch(job_folder / "jobs.csv", out, executor=_NoExecutor(), weights=tiny_weights, progress=False)
    assert time.perf_counter() - started < 10
    # Done videos, and the face-less image (same contents and options: it would fail the same way).
    assert sorted(report.skipped) == sorted([*GOOD_OUTPUTS, "faceless.mp4"])
    assert sorted(record["output"] for record in report.failed) == ["bad.mp4", "faceless.mp4"]
    assert {name: (out / name).stat().st_mtime_ns for name in GOOD_OUTPUTS} == before
    assert set(_records(out)) == {*GOOD_OUTPUTS, "faceless.mp4", "bad.mp4"}  # one record each, kept
    assert report.summary().startswith("0 rendered, 2 already done, 2 failed")


class _Recorder:
    """Records the tasks it is given, then stops the run."""

    def map(self, runner, tasks):
        self.keys = sorted(task.key for task in tasks)
        raise KeyboardInterrupt


def test_a_changed_option_or_a_lost_video_is_done_again(local_batch, job_folder: Path, tiny_weights, tmp_path) -> None:
    out = tmp_path / "out"
    shutil.copytree(local_batch[1], out)
    (out / "a.mp4").unlink()
    changed = job_folder / "changed.csv"  # beside its inputs: relative paths start at the job file's folder
    changed.write_text((job_folder / "good.csv").read_text().replace(",2,", ",5,"))  # the seed of sub/b.mp4
    recorder = _Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_batch(changed, out, executor=recorder, weights=tiny_weights, progress=False)
    assert recorder.keys == ["a.mp4", "sub/b.mp4"]


def test_cli_summary_and_exit_status_when_all_done(local_batch, job_folder: Path, tiny_weights, capsys) -> None:
    _, out = local_batch
    status = main(["batch", str(job_folder / "good.csv"), str(out), "--weights", str(tiny_weights), "--no-progress"])
    assert status == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "results.jsonl")
    assert re.search(r"batch: 0 rendered, 2 already done, 0 failed in [\d.]+ s", captured.err)


def test_local_executor_isolates_tasks_and_retries_a_killed_worker(tmp_path: Path) -> None:
    check_isolation_and_retry(LocalExecutor(2), tmp_path)


def test_a_worker_that_cannot_load_stops_the_run_with_its_error() -> None:
    from tavce.batch import Task
    from tavce.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="no weights here"):
        list(LocalExecutor(1).map(FailingSetupRunner(), [Task("x", 1)]))


def test_help_explains_every_option(capsys) -> None:
    assert main(["batch", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("JOBS", "OUT", "--weights", "--offline", "--size", "--device", "--dtype", "--workers", "--ray",
                   "--gpus-per-worker", "--cpus-per-worker", "--no-progress", "results.jsonl", "Exit status"):  # fmt: skip
        assert option in text, option
