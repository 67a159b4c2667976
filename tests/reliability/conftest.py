"""Fixtures of the reliability suite: real portraits (tests/fixtures/portraits) and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PORTRAITS = REPOSITORY / "tests" / "fixtures" / "portraits"


@pytest.fixture(scope="session")
def real_portraits() -> list[Path]:
    """Two downscaled real portraits: a painted face (RGB JPEG) and a rendered head (palette PNG)."""
    return [PORTRAITS / "art_1.jpg", PORTRAITS / "art_6.png"]


def run_python(*args: str, env: dict[str, str] | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``python *args`` from the repository root with this checkout first on the path; output captured as text."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=timeout, **kwargs
    )
