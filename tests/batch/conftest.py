"""Fixtures of the batch tests: a job folder (portrait, face-less image, speech, jobs.csv) and one local batch run."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

GOOD_OUTPUTS = ("a.mp4", "sub/b.mp4")


@pytest.fixture(scope="session")
def job_folder(tmp_path_factory: pytest.TempPathFactory, portrait, speech: Path) -> Path:
    """jobs.csv with two good rows, a face-less image and a bad value; paths relative to the folder."""
    folder = tmp_path_factory.mktemp("jobs")
    photo, box = portrait
    shutil.copy(photo, folder / "portrait.png")
    shutil.copy(speech, folder / "speech.wav")
    iio.imwrite(folder / "blank.png", np.full((240, 320, 3), 128, np.uint8))
    face_box = ",".join(f"{value:.2f}" for value in box)
    rows = [
        f'portrait.png,speech.wav,a.mp4,1,"{face_box}",',
        f'portrait.png,speech.wav,sub/b.mp4,2,"{face_box}",3',
        "blank.png,speech.wav,faceless.mp4,1,,",
        f'portrait.png,speech.wav,bad.mp4,1,"{face_box}",99',
    ]
    (folder / "jobs.csv").write_text("image,audio,output,seed,face_box,pose_style\n" + "\n".join(rows) + "\n")
    (folder / "good.csv").write_text("image,audio,output,seed,face_box,pose_style\n" + "\n".join(rows[:2]) + "\n")
    return folder


@pytest.fixture(scope="session")
def local_batch(job_folder: Path, tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """``tavce batch jobs.csv OUT --workers 2`` on tiny weights: (exit status, OUT)."""
    from tavce.cli import main

    out = tmp_path_factory.mktemp("local") / "out"
    status = main(["batch", str(job_folder / "jobs.csv"), str(out), "--weights", str(tiny_weights),
                   "--workers", "2", "--device", "cpu", "--no-progress"])  # fmt: skip
    return status, out
