"""Fixtures of the reliability suite: real portraits (tests/fixtures/portraits) and a subprocess runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tavce.testing import make_synthetic_videos
from tavce.types import SAMPLE_RATE
from tests.helpers import speech_like

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


@pytest.fixture(scope="session")
def short_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.4 s of speech-like audio: 10 frames."""
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    soundfile.write(path, speech_like(0.4).samples, SAMPLE_RATE)
    return path


def files_under(folder: Path) -> list[str]:
    """Every path below ``folder``, relative, sorted (hidden ones included)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def dataset_contents(folder: Path) -> dict[str, object]:
    """A prepared dataset's files: meta.json without its timing, annotations.npz as arrays (the zip has dates)."""
    contents: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == "manifest.jsonl":
            continue
        name = str(path.relative_to(folder))
        if path.name == "meta.json":
            contents[name] = {key: value for key, value in json.loads(path.read_text()).items() if key != "seconds"}
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                contents[name] = {key: arrays[key].tobytes() for key in arrays.files}
        else:
            contents[name] = path.read_bytes()
    return contents
