"""Shared fixtures (tiny weights, a synthetic portrait, speech); prints the golden errors reached at the end of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from tavce.testing import face_landmarks, face_photo, make_tiny_checkpoint
from tavce.types import SAMPLE_RATE
from tests.helpers import PHOTO_SIZE, speech_like

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def restore_root_logging():
    """cli.main() configures the root logger for the process; undo it so later tests are unaffected."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def shared_media() -> Path:
    """../shared/media when present (optional tests skip without it)."""
    media = SHARED_DIR / "media"
    if not media.is_dir():
        pytest.skip("../shared/media is not available")
    return media


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "weights", seed=3)


@pytest.fixture(scope="session")
def tiny_weights_without_cerl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "weights", seed=3, cerl=False)


@pytest.fixture(scope="session")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[float, float, float, float]]:
    """A synthetic photo and the face box of its face (pixels)."""
    landmarks = face_landmarks((160, 125), 60)
    path = tmp_path_factory.mktemp("photo") / "portrait.png"
    import imageio.v3 as iio

    iio.imwrite(path, face_photo(*PHOTO_SIZE, landmarks))
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    return path, (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.23 s of 44.1 kHz stereo speech-like audio: 30 frames at 25 fps (⌊1.23·25⌋)."""
    clip = speech_like(1.23)
    import resampy

    samples = resampy.resample(clip.samples, SAMPLE_RATE, 44100)
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    soundfile.write(path, np.stack([samples, 0.5 * samples], axis=1), 44100)
    return path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    try:
        from tests.golden.harness import GOLDEN_REPORT
    except ImportError:
        return
    if not GOLDEN_REPORT:
        return
    terminalreporter.section("golden errors reached")
    for case, output, measure, error, tolerance in GOLDEN_REPORT:
        terminalreporter.write_line(f"{case:28s} {output:32s} {measure:16s} {error:10.3g} (<= {tolerance:.3g})")
