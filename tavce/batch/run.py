"""``run_batch``: validate the jobs, skip those already done, run the rest on an executor, record each."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tavce.batch.executor import Executor, Outcome, Task
from tavce.batch.jobs import BatchJob, PlannedJob, RefusedJob, output_inside, plan_jobs, read_job_file
from tavce.batch.results import ResultsLog
from tavce.batch.worker import GenerationRunner, PipelineSettings

__all__ = ["BatchReport", "INPUT_ERRORS", "run_batch"]

logger = logging.getLogger(__name__)

INPUT_ERRORS = frozenset({"FaceNotDetectedError", "InvalidImageError", "InvalidAudioError", "InvalidArgumentError"})
"""Failures caused by a job's own inputs or options: with the same key a rerun would fail the same way, so it
does not run the job again (other failures -- a dead worker, a full disk, an unexpected error -- are retried)."""


@dataclass
class BatchReport:
    """What one :func:`run_batch` did.

    Attributes:
        records: the ``results.jsonl`` record of every job of this run, in job order (skipped jobs
            with their earlier record).
        skipped: outputs settled by an earlier run and not run again: done, or failed because of their
            inputs (:data:`INPUT_ERRORS`) with the same key.
        results: path of ``results.jsonl``.
        seconds: wall time of the run.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: Path | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Records of the jobs that failed (refused rows included)."""
        return [record for record in self.records if record["status"] != "ok"]

    @property
    def succeeded(self) -> list[dict[str, Any]]:
        return [record for record in self.records if record["status"] == "ok"]

    def summary(self) -> str:
        """One line: videos rendered now, done earlier, failed (now or earlier), the time and the results file."""
        skipped = set(self.skipped)
        rendered = sum(record["output"] not in skipped for record in self.succeeded)
        earlier = sum(record["output"] in skipped for record in self.succeeded)
        return (
            f"{rendered} rendered, {earlier} already done, {len(self.failed)} failed "
            f"in {self.seconds:.1f} s; see {self.results}"
        )


def run_batch(
    jobs: str | Path | Iterable[BatchJob | Mapping[str, Any]],
    out: str | Path,
    *,
    executor: Executor | None = None,
    weights: str | Path | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
    size: int = 256,
    tavce_correlation: str | Path | None = None,
    tavce_facerender: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    progress: bool = True,
) -> BatchReport:
    """Generate one video per job into ``out``, on ``executor``, recording each job in ``out/results.jsonl``.

    Args:
        jobs: a job file (``.csv`` / ``.jsonl``; relative paths in it start at its folder) or jobs as
            :class:`~tavce.batch.jobs.BatchJob` or mappings (``{"image", "audio", "output"?, option: value}``;
            relative paths start at the current folder).
        out: the output folder (created). Videos are written atomically; names cannot leave it.
        executor: where the jobs run; default ``LocalExecutor()`` (one process per visible GPU, else one).
        weights, revision, cache_dir, offline, size, tavce_correlation, tavce_facerender: the pipeline,
            as for ``TalkingHeadPipeline.from_pretrained`` (``offline`` is ``local_files_only``).
        device, dtype: as for ``pipe.to``; default: each worker's GPU in float16, else the CPU in float32.
        progress: show a progress bar (with ETA) over the jobs.

    Returns:
        A :class:`BatchReport`. Bad rows fail alone (their record says why); jobs whose record says
        done, or failed because of their inputs (no face, unreadable file, bad option), with the same
        inputs, options and weights are skipped before any worker starts; other failures are retried.

    Raises:
        InvalidArgumentError: the job file is missing, unreadable or empty.
        Errors of loading the pipeline in a worker (e.g. ``WeightsNotFoundError``): no job could run.
    """
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    started = time.perf_counter()
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    settings = PipelineSettings(
        weights=None if weights is None else str(weights),
        revision=revision,
        cache_dir=None if cache_dir is None else str(cache_dir),
        offline=offline,
        size=size,
        tavce_correlation=None if tavce_correlation is None else str(tavce_correlation),
        tavce_facerender=None if tavce_facerender is None else str(tavce_facerender),
        device=device,
        dtype=dtype,
    )
    rows: list[Any]
    if isinstance(jobs, (str, Path)):
        rows, base = read_job_file(jobs), Path(jobs).expanduser().resolve().parent
    else:
        rows, base = list(jobs), Path.cwd()
    planned = plan_jobs(rows, out, base=base, pipeline_identity=settings.identity())
    log = ResultsLog(out)
    earlier = log.read()
    done = {job.output for job in planned if isinstance(job, PlannedJob) and _settled(earlier.get(job.output), job, out)}
    # Records of outputs this run redoes are dropped; those of other outputs (other job files) stay.
    redone = {_record_name(job) for job in planned} - done
    log.rewrite(record for name, record in earlier.items() if name not in redone)
    _remove_abandoned_temporaries(out)
    report = BatchReport(results=log.path)
    report.skipped = [job.output for job in planned if isinstance(job, PlannedJob) and job.output in done]
    if report.skipped:
        logger.info("%d of %d jobs settled by an earlier run in %s; skipped", len(report.skipped), len(planned), out)
    todo = [job for job in planned if isinstance(job, PlannedJob) and job.output not in done]
    records: dict[str, dict[str, Any]] = {name: earlier[name] for name in done}
    refused: list[dict[str, Any]] = []
    with log:
        for job in planned:
            if isinstance(job, RefusedJob):
                refused.append(_refused_record(job))
                log.append(refused[-1])
                logger.warning("%s", job.error)
        if todo:
            if executor is None:
                from tavce.batch.local import LocalExecutor

                executor = LocalExecutor()
            by_output = {job.output: job for job in todo}
            tasks = [Task(job.output, _payload(job, out)) for job in todo]
            bar = tqdm(total=len(todo), desc="batch", unit="video", disable=not progress)
            with logging_redirect_tqdm():
                for outcome in executor.map(GenerationRunner(settings), tasks):
                    record = _record(by_output[outcome.key], outcome)
                    records[outcome.key] = record
                    log.append(record)
                    if not outcome.ok:
                        logger.warning("%s: failed: %s: %s", record["row"], outcome.error_type, outcome.error)
                    bar.update(1)
                    bar.set_postfix(failed=sum(r["status"] != "ok" for r in records.values()) + len(refused))
            bar.close()
    refused_iter = iter(refused)
    report.records = [
        records[job.output] if isinstance(job, PlannedJob) else next(refused_iter) for job in planned
    ]
    report.seconds = time.perf_counter() - started
    logger.info("batch: %s", report.summary())
    return report


def _settled(record: dict[str, Any] | None, job: PlannedJob, out: Path) -> bool:
    """Whether an earlier run's record settles the job: same key, and its video is there or its inputs are bad."""
    if record is None or record.get("key") != job.key:
        return False
    if record.get("status") == "ok":
        return (out / job.output).is_file()
    return record.get("error_type") in INPUT_ERRORS


def _payload(job: PlannedJob, out: Path) -> dict[str, Any]:
    return {
        "image": str(job.image),
        "audio": str(job.audio),
        "output": str(output_inside(out, job.output)),
        "options": job.options,
    }


def _record(job: PlannedJob, outcome: Outcome) -> dict[str, Any]:
    return {
        "output": job.output,
        "row": job.where,
        "image": str(job.image),
        "audio": str(job.audio),
        "options": job.options,
        "status": "ok" if outcome.ok else "failed",
        "error_type": outcome.error_type,
        "error": outcome.error,
        "frames": (outcome.value or {}).get("frames"),
        "seconds": round(outcome.seconds, 3),
        "worker": outcome.worker,
        "attempts": outcome.attempts,
        "key": job.key,
    }


def _refused_record(job: RefusedJob) -> dict[str, Any]:
    return {
        "output": _record_name(job),
        "row": job.where,
        "image": job.row.get("image"),
        "audio": job.row.get("audio"),
        "options": {name: value for name, value in job.row.items() if name not in ("image", "audio", "output")},
        "status": "failed",
        "error_type": job.error_type,
        "error": job.error,
        "frames": None,
        "seconds": 0.0,
        "worker": None,
        "attempts": 0,
        "key": None,
    }


def _record_name(job: PlannedJob | RefusedJob) -> str:
    """What names a job in results.jsonl: its output, or where it came from when it has none."""
    return job.output if job.output is not None else job.where


def _remove_abandoned_temporaries(out: Path) -> None:
    """Work folders of videos whose worker was killed mid-write (a finished video never leaves one)."""
    for leftover in out.rglob(".*.tavce-tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
