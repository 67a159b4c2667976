"""tavce.testing.make_synthetic_videos: tiny talking-head clips whose mouth follows their audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tavce.testing import make_synthetic_videos, synthetic_face_landmarks
from tavce.types import SAMPLES_PER_FRAME
from tavce.video_reader import read_video


def _mouth_darkness(frame: np.ndarray, size: int) -> float:
    """Pixels of the dark open-mouth colour inside the mouth region (more when the mouth is open)."""
    landmarks = synthetic_face_landmarks(size, opening=1.0)
    left, top = landmarks[48:68].min(axis=0).astype(int) - 2
    right, bottom = landmarks[48:68].max(axis=0).astype(int) + 3
    region = frame[top:bottom, left:right].astype(int)
    return float(((region[..., 0] < 110) & (region[..., 1] < 60)).sum())


def test_clips_have_the_asked_length_audio_and_a_moving_mouth(tmp_path: Path) -> None:
    paths = make_synthetic_videos(tmp_path, n=2, seconds=1.6, seed=3)
    assert [path.name for path in paths] == ["talker_000.mp4", "talker_001.mp4"]
    clip = read_video(paths[0])
    assert clip.frames.shape == (40, 128, 128, 3)
    assert clip.audio is not None and abs(len(clip.audio.samples) - 40 * SAMPLES_PER_FRAME) <= 64

    samples = clip.audio.samples[: 40 * SAMPLES_PER_FRAME].reshape(40, -1)
    loudness = np.sqrt((samples**2).mean(axis=1))
    mouth = np.array([_mouth_darkness(frame, 128) for frame in clip.frames])
    assert mouth.std() > 0 and loudness.std() > 0
    assert np.corrcoef(loudness, mouth)[0, 1] > 0.7  # the mouth opens when the audio is loud

    other = read_video(paths[1])
    assert not np.array_equal(other.frames[0], clip.frames[0])  # each clip its own colours and voice


def test_same_seed_same_clip(tmp_path: Path) -> None:
    first = read_video(make_synthetic_videos(tmp_path / "a", n=1, seconds=0.4, seed=7)[0])
    second = read_video(make_synthetic_videos(tmp_path / "b", n=1, seconds=0.4, seed=7)[0])
    third = read_video(make_synthetic_videos(tmp_path / "c", n=1, seconds=0.4, seed=8)[0])
    assert np.array_equal(first.frames, second.frames)
    assert np.array_equal(first.audio.samples, second.audio.samples)
    assert not np.array_equal(first.frames, third.frames)


def test_landmarks_open_the_mouth_downwards() -> None:
    closed, opened = synthetic_face_landmarks(256, 0.0), synthetic_face_landmarks(256, 1.0)
    assert closed.shape == (68, 2) and closed.dtype == np.float32
    assert np.allclose(closed[11:48], opened[11:48])  # eyes, brows, nose and jaw sides stay
    assert (opened[57, 1] - closed[57, 1]) > 5 and np.isclose(opened[51, 1], closed[51, 1])
