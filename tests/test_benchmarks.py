"""The renderer benchmark script runs and reports every field the speed issue asks for (on the tiny renderer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
FIELDS = {
    "size", "device", "dtype", "batch", "frames_per_s", "baseline_frames_per_s", "speedup", "psnr_vs_fp32_db",
    "peak_rss_mib", "peak_device_mib", "gflop_per_frame", "achieved_gflop_per_s", "kernel_peak_gflop_per_s",
    "fraction_of_peak", "speedup_at_peak", "cpu", "cpu_flags", "thread_scaling",
}  # fmt: skip


def test_renderer_benchmark_prints_one_json_line_per_configuration() -> None:
    command = [sys.executable, "benchmarks/renderer.py", "--tiny", "--json", "--dtypes", "float32",
               "--batches", "1,2", "--frames", "2", "--loop-frames", "1", "--threads", "1"]  # fmt: skip
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["config"], row["batch"]) for row in rows] == [("baseline", 1), ("render", 1), ("render", 2)]
    for row in rows:
        assert FIELDS <= set(row), FIELDS - set(row)
        assert row["speedup"] == pytest.approx(row["frames_per_s"] / row["baseline_frames_per_s"], rel=1e-3)
        assert row["achieved_gflop_per_s"] == pytest.approx(row["gflop_per_frame"] * row["frames_per_s"], rel=2e-3)
    # The render path computes the baseline's frames (float32, same weights and inputs).
    assert all(row["psnr_vs_fp32_db"] is None or row["psnr_vs_fp32_db"] > 80 for row in rows)
    assert rows[1]["gflop_per_frame"] < rows[0]["gflop_per_frame"]  # source work once, reductions on


# Without the enhancer is the same code path minus the enhancement: run it with the slow tests.
@pytest.mark.parametrize("enhancer", [pytest.param(None, marks=pytest.mark.slow), "tiny"])
def test_end_to_end_benchmark_times_every_phase_of_generate(enhancer) -> None:
    command = [sys.executable, "benchmarks/end_to_end.py", "--tiny", "--json", "--seconds", "0.6",
               "--dtypes", "float32", "--threads", "1", *(["--enhancer", enhancer] if enhancer else [])]  # fmt: skip
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["frames"] == 15 and row["dtype"] == "float32" and row["enhancer"] is (enhancer is not None)
    phases = ("load_s", "face_s", "plan_s", "save_s")
    assert all(row[name] > 0 for name in (*phases, "render_s", "peak_rss_mib"))
    assert row["end_to_end_s"] == pytest.approx(sum(row[name] for name in phases), rel=1e-3)
    assert row["overhead"] == pytest.approx(row["end_to_end_s"] / row["render_s"], rel=1e-3)
    assert (row["enhance_s"] > 0) is (enhancer is not None)
    frame_work = row["render_s"] + row["enhance_s"]
    assert row["overhead_vs_render_and_enhance"] == pytest.approx(row["end_to_end_s"] / frame_work, rel=1e-3)
    assert row["paste_encode_s"] == pytest.approx(row["save_s"] - frame_work, rel=1e-3, abs=1e-3)
    assert row["cpu_flags"] is not None and row["thread_scaling"] > 0


def test_enhancer_benchmark_reports_seconds_per_frame_and_psnr() -> None:
    command = [sys.executable, "benchmarks/enhancer.py", "--tiny", "--json", "--dtypes", "float32,float32",
               "--batch", "1", "--frames", "1", "--threads", "1"]  # fmt: skip
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["dtype"] for row in rows] == ["float32", "float32"]
    for row in rows:
        assert row["s_per_frame"] > row["upscale_only_s_per_frame"] > 0
        assert row["psnr_vs_fp32_db"] == float("inf")  # the same precision gives the same frames


def test_memory_benchmark_measures_the_planning_stage_alone() -> None:
    command = [sys.executable, "benchmarks/memory.py", "--plan-only", "--short", "1", "--long", "3", "--threads", "1"]
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (row["short"]["frames"], row["long"]["frames"]) == (25, 75)
    for clip in (row["short"], row["long"]):
        assert clip["render_peak"] == 0 and "frames_written" not in clip  # nothing rendered
        assert clip["plan_peak"] >= clip["after_plan_rss"] > 0
    assert row["ratio"] == pytest.approx(row["long"]["overall_peak"] / row["short"]["overall_peak"])


def test_memory_benchmark_reports_a_batch_workers_peak_after_each_count_of_jobs() -> None:
    command = [sys.executable, "benchmarks/memory.py", "--batch", "2,3", "--job-seconds", "0.4", "--threads", "1"]
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["jobs"] == [2, 3] and row["frames_per_job"] == [10]  # every job rendered all its frames
    after_two, after_three = row["peak_mib"]
    assert 0 < after_two <= after_three  # one worker ran them all: its peak only grows
    assert row["ratio"] == pytest.approx(after_three / after_two)
    assert all(value > 0 for value in (*row["rss_mib"], row["load_peak_mib"])) and row["cpu_flags"] is not None


@pytest.mark.slow  # quantises and calibrates three renderers: ~30 s on 2 busy cores; int8 is not adopted
def test_int8_benchmark_compares_quantised_convs_with_float32_and_bfloat16() -> None:
    command = [sys.executable, "benchmarks/int8.py", "--tiny", "--json", "--frames", "1", "--calibration-frames", "1",
               "--threads", "1"]  # fmt: skip
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {row["config"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert list(rows) == ["float32", "bfloat16", "int8", "int8+bfloat16"]
    assert rows["float32"]["psnr_vs_fp32_db"] is None and rows["float32"]["vs_float32"] == 1.0
    for name in ("int8", "int8+bfloat16"):
        row = rows[name]
        # Every residual block's conv_0 and conv_1 is quantised: the frames change, but stay close to float32's.
        assert row["quantised_convs"] > 0 and 0 < row["quantised_gflop_share"] < 1
        assert 25 < row["psnr_vs_fp32_db"] < 80
        assert row["vs_bfloat16"] == pytest.approx(row["frames_per_s"] / rows["bfloat16"]["frames_per_s"], rel=1e-3)
    assert rows["int8"]["cpu_flags"] is not None


@pytest.mark.slow  # seven fresh processes, ~30 s on 2 cores
def test_memory_benchmark_compares_generate_with_the_render_path(tmp_path) -> None:
    from tavce.testing import make_tiny_checkpoint

    weights = make_tiny_checkpoint(tmp_path / "tiny")
    command = [sys.executable, "benchmarks/memory.py", "--renderer", "--weights", str(weights), "--frames", "1",
               "--generate", "0.4", "--threads", "1"]  # fmt: skip
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["config"], row["dtype"]) for row in rows] == [
        ("loop", "float32"), ("render", "float32"), ("render", "bfloat16"),
        ("pipeline-render", "float32"), ("generate", "float32"), ("pipeline-render", "bfloat16"),
        ("generate", "bfloat16"),
    ]  # fmt: skip
    for row in rows[3:]:
        assert row["frames"] == 10 and row["peak_mib"] >= max(row["load_peak_mib"], row["planned_mib"]) > 0
    assert "generate / pipeline render path" in done.stderr
