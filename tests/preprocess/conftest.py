"""One dlib landmarker for the whole preprocess test session (loading its predictor takes ~1 s)."""

from __future__ import annotations

import pytest

from tavce.preprocess import DlibLandmarker


@pytest.fixture(scope="session")
def dlib_landmarker() -> DlibLandmarker:
    return DlibLandmarker()
