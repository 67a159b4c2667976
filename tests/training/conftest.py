"""Fixtures of the training-data tests (their stand-ins live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tavce.testing import make_synthetic_videos

CLIP_SECONDS = 0.8  # 20 frames: enough for stage 1 (6) and stage 2 (3), quick to prepare


@pytest.fixture(scope="session")
def synthetic_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two synthetic talking-head clips (20 frames each)."""
    folder = tmp_path_factory.mktemp("clips")
    make_synthetic_videos(folder, n=2, seconds=CLIP_SECONDS, seed=0)
    return folder
