"""Slow: 200 stage-1 steps on synthetic clips raise the similarity gap on held-out clips (benchmarks/tavc_stage1.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_hundred_steps_separate_adjacent_from_distant_pairs_on_held_out_clips() -> None:
    command = [sys.executable, str(REPOSITORY / "benchmarks" / "tavc_stage1.py"), "--steps", "200", "--json"]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=1800)
    assert finished.returncode == 0, finished.stderr[-3000:]
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    before, after = figures["before"], figures["after"]
    # measured: gap −0.007 -> 0.307, ranked 0.44 -> 0.73 (flattened cosine 0.599 vs 0.293 after)
    assert abs(before["gap"]) < 0.05  # untrained: no preference
    assert after["gap"] > before["gap"] + 0.15
    assert after["ranked"] > 0.6
