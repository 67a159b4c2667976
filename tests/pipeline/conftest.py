"""Tiny weights, a synthetic portrait and a speech-like clip shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from tavce.testing import make_tiny_checkpoint
from tavce.types import SAMPLE_RATE
from tests.preprocess.synthetic import face_landmarks, face_photo
from tests.test_video import speech_like

PHOTO_SIZE = (320, 240)  # (W, H): not square, so crop-mode aspect restoration shows


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
