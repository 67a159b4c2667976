"""The research chain on synthetic videos: seconds per step of each training stage, and the validation figures.

A script, not a test: ``python benchmarks/training_chain.py [--steps 10] [--clips 4]``.

``--clips`` synthetic talking-head clips (:func:`tavce.testing.make_synthetic_videos`) are
prepared with ``tavce prepare-data`` (dlib landmarks, the tiny weights of
:func:`tavce.testing.make_tiny_checkpoint`); then each stage is run through the command
line twice, for 2 and for 2 + ``--steps`` steps, so that the setup (loading, building,
the final export and validation) cancels out: seconds per step = (t_long − t_short) /
``--steps``. Stage 1 trains the full Wav2Lip audio encoder with a narrow IResNet mouth
encoder (batch 4); stage 2 the tiny renderer with CERL and CAR at 256 px (batch 1, no
VGG19 term). Both hold out half of the identities and validate every 2 steps; the
validation figures of the long runs are printed. The CPU model and its bfloat16 / AMX
flags are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # the tiny settings files are written by tests/helpers.py

from tavce import cli  # noqa: E402
from tavce.testing import make_synthetic_videos, make_tiny_checkpoint  # noqa: E402
from tests.helpers import write_tiny_training_settings  # noqa: E402


def cpu_description() -> str:
    """The CPU model and whether it has avx512_bf16 / amx flags (Linux: /proc/cpuinfo)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), platform.processor())
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    marks = [flag for flag in ("avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    return f"{model}; {', '.join(marks) if marks else 'no avx512_bf16 / amx flags'}"


def timed(arguments: list[str]) -> float:
    started = time.perf_counter()
    status = cli.main(arguments)
    if status != 0:
        raise SystemExit(f"`tavce {' '.join(arguments)}` exited with {status}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="extra steps of the long runs (default 10)")
    parser.add_argument("--clips", type=int, default=4, help="synthetic clips, one identity each (default 4)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        make_synthetic_videos(root / "videos", n=options.clips, seconds=1.6, seed=0)
        make_tiny_checkpoint(root / "weights")
        write_tiny_training_settings(root, mouth_channels=(8, 16, 16, 32))
        prepared = timed([
            "prepare-data", str(root / "videos"), str(root / "data"), "--weights", str(root / "weights"),
            "--landmarker", "dlib", "--no-progress",
        ])  # fmt: skip
        logging.getLogger().setLevel(logging.WARNING)  # the runs' own logs would bury the figures
        common = ["--workers", "0", "--val-fraction", "0.5", "--validate-every", "2", "--no-progress", "--no-plots"]
        stages = {
            "tavc": ["train", "tavc", str(root / "data"), "--config", str(root / "tavc.json"), "--batch-size", "4",
                     "--repeats", "8"],
            "renderer": ["train", "renderer", str(root / "data"), "--config", str(root / "renderer.json"), "--init",
                         str(root / "weights"), "--metric", str(root / "runs" / "tavc-long" / "metric"),
                         "--batch-size", "1", "--repeats", "8"],
        }  # fmt: skip
        figures = {}
        for stage, arguments in stages.items():
            seconds = {}
            for name, steps in (("short", 2), ("long", 2 + options.steps)):
                run = root / "runs" / f"{stage}-{name}"
                seconds[name] = timed([*arguments[:3], str(run), *arguments[3:], *common, "--max-steps", str(steps)])
            per_step = (seconds["long"] - seconds["short"]) / options.steps
            validation = [json.loads(line) for line in (root / "runs" / f"{stage}-long" / "validation.jsonl").read_text().splitlines()]
            figures[stage] = {"seconds_per_step": round(per_step, 3), "validation": validation}
        print(f"CPU: {cpu_description()}; torch threads as set by the environment")
        print(f"prepare-data, {options.clips} clips of 40 frames: {prepared:.1f} s")
        for stage, result in figures.items():
            print(f"{stage}: {result['seconds_per_step']:.3f} s per step")
            for record in result["validation"]:
                print("   validation", ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in record.items()))
        print(f"renderer / tavc seconds per step: {figures['renderer']['seconds_per_step'] / figures['tavc']['seconds_per_step']:.1f}")


if __name__ == "__main__":
    main()
