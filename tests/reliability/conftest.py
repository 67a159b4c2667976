"""Fixtures of the reliability suite: real portraits (tests/fixtures/portraits) and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tavce.testing import make_synthetic_videos

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


class SmallDisk:
    """A tmpfs of a chosen size mounted on a test's folder (needs root and the mount capability)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def resize(self, size: str) -> None:
        """Grow or shrink the disk (``200k``, ``4m``); what is on it stays."""
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.folder)], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 200 KiB tmpfs at ``tmp_path/disk``; the test is skipped where tmpfs cannot be mounted."""
    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True, timeout=30
        ).returncode == 0
    except OSError:
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root); the file-size-limit tests cover the same code")
    yield SmallDisk(folder)
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture(scope="session")
def synthetic_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic talking-head clips of 20 frames each."""
    folder = tmp_path_factory.mktemp("clips")
    make_synthetic_videos(folder, n=2, seconds=0.8, seed=0)
    return folder
