"""Batch throughput: jobs per minute with 1 and 2 local workers, measured in the same run.

A script, not a test: ``python benchmarks/batch.py [--jobs 6] [--seconds 2] [--weights FOLDER] [--json]``.

The same job file (one synthetic portrait with a known face box, speech-like audio, a
different seed per job) is run by ``run_batch`` into a fresh folder once with one worker
(the baseline) and once with two. Each figure is wall time from the call to the last
video written, so it includes starting the worker processes and loading the weights once
per worker, as a user sees it. Weights default to :func:`tavce.testing.make_tiny_checkpoint`
(a few MB: rendering is cheap and the fixed costs show); pass ``--weights`` for real ones.
The CPU model and its bfloat16 / AMX flags are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description

REPOSITORY = Path(__file__).resolve().parents[1]


def write_inputs(folder: Path, jobs: int, seconds: float) -> Path:
    """A portrait, a speech clip and a job file of ``jobs`` rows differing in seed; returns the job file."""
    import imageio.v3 as iio
    import soundfile

    from tavce.testing import face_landmarks, face_photo

    sys.path.insert(0, str(REPOSITORY))
    from tests.helpers import speech_like

    landmarks = face_landmarks((160, 125), 60)
    iio.imwrite(folder / "portrait.png", face_photo(320, 240, landmarks))
    soundfile.write(folder / "speech.wav", speech_like(seconds).samples, 16000)
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    box = f"{low[0]:.2f},{low[1]:.2f},{high[0]:.2f},{high[1]:.2f}"
    rows = [f'portrait.png,speech.wav,job{n:03d}.mp4,{n},"{box}"' for n in range(jobs)]
    path = folder / "jobs.csv"
    path.write_text("image,audio,output,seed,face_box\n" + "\n".join(rows) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6, help="jobs in the file (default 6)")
    parser.add_argument("--seconds", type=float, default=2.0, help="speech per job, seconds (default 2: 50 frames)")
    parser.add_argument("--weights", default=None, help="weights folder (default: tiny random weights)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare; the first is the baseline")
    parser.add_argument("--json", action="store_true", help="one JSON line per worker count")
    arguments = parser.parse_args()

    from tavce.batch import LocalExecutor, run_batch
    from tavce.testing import make_tiny_checkpoint

    with tempfile.TemporaryDirectory(prefix="tavce-batch-bench-") as scratch:
        root = Path(scratch)
        weights = arguments.weights or make_tiny_checkpoint(root / "weights", seed=0)
        jobs = write_inputs(root, arguments.jobs, arguments.seconds)
        baseline = None
        for workers in (int(count) for count in arguments.workers.split(",")):
            started = time.perf_counter()
            report = run_batch(jobs, root / f"out{workers}", executor=LocalExecutor(workers), weights=weights,
                               device="cpu", progress=False)  # fmt: skip
            seconds = time.perf_counter() - started
            if report.failed:
                raise SystemExit(f"{len(report.failed)} jobs failed: {report.failed[0]['error']}")
            per_minute = 60 * arguments.jobs / seconds
            baseline = baseline or per_minute
            row = {"workers": workers, "jobs": arguments.jobs, "seconds": round(seconds, 2),
                   "jobs_per_minute": round(per_minute, 2), "speedup": round(per_minute / baseline, 3)}  # fmt: skip
            print(json.dumps(row) if arguments.json else
                  f"{workers} worker(s): {arguments.jobs} jobs in {seconds:.1f} s = {per_minute:.1f} jobs/min "
                  f"({per_minute / baseline:.2f}x the first)")  # fmt: skip
    machine = cpu_description()
    print(f"CPU: {machine['cpu']}, {os.cpu_count()} cores, flags: {', '.join(machine['cpu_flags']) or 'none'}",
          file=sys.stderr if arguments.json else sys.stdout)  # fmt: skip


if __name__ == "__main__":
    main()
