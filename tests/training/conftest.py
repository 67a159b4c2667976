"""Fixtures of the training-data tests (their stand-ins live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import logging

import pytest

from tavce.testing import make_synthetic_videos

CLIP_SECONDS = 0.8  # 20 frames: enough for stage 1 (6) and stage 2 (3), quick to prepare


@pytest.fixture(scope="session")
def synthetic_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two synthetic talking-head clips (20 frames each)."""
    folder = tmp_path_factory.mktemp("clips")
    make_synthetic_videos(folder, n=2, seconds=CLIP_SECONDS, seed=0)
    return folder


@pytest.fixture(scope="session")
def prepared_clips(synthetic_clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic clips prepared for training (stand-in landmarker and 3DMM network)."""
    from tavce.training.data import PrepareConfig, prepare_dataset
    from tests.helpers import SyntheticFaceLandmarker, tiny_face_recon

    output = tmp_path_factory.mktemp("prepared")
    prepare_dataset(
        synthetic_clips, output, face_recon=tiny_face_recon(), landmarker=SyntheticFaceLandmarker(),
        config=PrepareConfig(crop_mode="resize"), progress=False,
    )  # fmt: skip
    return output


@pytest.fixture
def restore_root_logging():
    """cli.main() configures the root logger for the process; undo it so later tests are unaffected."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
