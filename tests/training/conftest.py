"""Shared fixtures for the training-data tests: synthetic videos, a stand-in landmarker, a tiny 3DMM net."""

from __future__ import annotations

from pathlib import Path

import pytest

from tavce.models.face_recon import FaceReconConfig, FaceReconNet
from tavce.preprocess.landmarks import Face
from tavce.testing import make_synthetic_videos, synthetic_face_landmarks

CLIP_SECONDS = 0.8  # 20 frames: enough for stage 1 (6) and stage 2 (3), quick to prepare


class SyntheticFaceLandmarker:
    """Stand-in landmarker: the synthetic face's landmarks for the image's size (closed mouth).

    Exact on the synthetic clips' frames and on their ``resize``-mode crops (the
    face scales with the frame). Counts calls; ``faces=False`` finds nothing.
    Module-level and stateless apart from the counter, so it pickles to worker processes.
    """

    name = "synthetic"

    def __init__(self, faces: bool = True) -> None:
        self.faces = faces
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        if not self.faces:
            return []
        size = image.shape[1]
        return [Face(box=(0.0, 0.0, float(size), float(size)), landmarks=synthetic_face_landmarks(size), score=1.0)]

    def landmarks_in_box(self, image, box):
        return synthetic_face_landmarks(image.shape[1])


def tiny_face_recon() -> FaceReconNet:
    return FaceReconNet(FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=4)).eval()


@pytest.fixture(scope="session")
def synthetic_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two synthetic talking-head clips (20 frames each)."""
    folder = tmp_path_factory.mktemp("clips")
    make_synthetic_videos(folder, n=2, seconds=CLIP_SECONDS, seed=0)
    return folder
