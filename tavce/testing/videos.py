"""Tiny synthetic talking-head videos with audio, for tests and for trying the trainers without a dataset.

Each clip is a drawn face (skin ellipse, eyes, brows, nose, lips laid out on the
standard 68-point face) whose mouth opens with the loudness of its own audio: a
voiced buzz (harmonics of a wandering pitch) shaped by random syllables of
80–300 ms. The audio/mouth coupling is exactly what the TAVC metric learns, so a
stage-1 run on these clips has something real to fit. Public entry point:
:func:`tavce.testing.make_synthetic_videos`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tavce.errors import InvalidArgumentError
from tavce.testing.portraits import face_landmarks
from tavce.types import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, AudioClip

__all__ = ["make_synthetic_videos", "synthetic_face_landmarks"]

_FACE_SCALE = 0.3  # landmark units -> fraction of the frame side
_FACE_CENTRE_Y = 0.45  # the standard face's origin, as a fraction of the frame height
_MAX_MOUTH_OPENING = 0.16  # lower-lip drop at full loudness, in landmark units (the mouth is ~0.5 wide)
_LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
_CHIN = [6, 7, 8, 9, 10]


def synthetic_face_landmarks(size: int, opening: float = 0.0) -> np.ndarray:
    """(68, 2) float32 landmarks (x right, y down, pixels) of the synthetic face in a ``size``×``size`` frame.

    Args:
        size: frame side in pixels.
        opening: mouth opening in [0, 1] (0 closed, 1 fully open); the lower lip and chin move down.
    """
    scale = _FACE_SCALE * size
    points = face_landmarks((size / 2, size * _FACE_CENTRE_Y), scale).astype(np.float64)
    drop = float(np.clip(opening, 0.0, 1.0)) * _MAX_MOUTH_OPENING * scale
    points[_LOWER_LIP, 1] += drop
    points[_CHIN, 1] += drop * 0.5
    return points.astype(np.float32)


def _speech_like_audio(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(samples (N,) float32 in [-1, 1], loudness envelope (N,) in [0, 1]) at 16 kHz."""
    count = int(round(seconds * SAMPLE_RATE))
    envelope = np.zeros(count)
    position = rng.integers(0, SAMPLE_RATE // 10).item()
    while position < count:
        length = int(rng.uniform(0.08, 0.3) * SAMPLE_RATE)
        bump = np.sin(np.linspace(0, np.pi, length)) ** 2 * rng.uniform(0.5, 1.0)
        end = min(position + length, count)
        envelope[position:end] = bump[: end - position]
        position = end + int(rng.uniform(0.03, 0.2) * SAMPLE_RATE)  # pause between syllables
    time = np.arange(count) / SAMPLE_RATE
    pitch = rng.uniform(100, 220) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * time))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(harmonic * phase) / harmonic for harmonic in range(1, 11))
    voice = voice / np.abs(voice).max() + 0.05 * rng.standard_normal(count)
    samples = 0.5 * envelope * voice + 0.002 * rng.standard_normal(count)  # a faint noise floor
    return np.clip(samples, -1, 1).astype(np.float32), envelope


def _draw_face(size: int, landmarks: np.ndarray, background: np.ndarray, skin: tuple[int, ...]) -> np.ndarray:
    frame = background.copy()
    shift = 4  # cv2 fixed-point drawing: 4 fractional bits for smooth sub-pixel shapes

    def pts(indices) -> np.ndarray:
        return np.round(landmarks[list(indices)] * (1 << shift)).astype(np.int32)

    centre = landmarks[:27].mean(axis=0)
    axes = (landmarks[:27].max(axis=0) - landmarks[:27].min(axis=0)) * [0.55, 0.62]
    cv2.ellipse(frame, (round(centre[0]), round(centre[1] - axes[1] * 0.15)), (round(axes[0]), round(axes[1])),
                0, 0, 360, skin, -1, cv2.LINE_AA)  # fmt: skip
    dark = (50, 35, 30)
    width = max(1, size // 96)
    for brow in (range(17, 22), range(22, 27)):
        cv2.polylines(frame, [pts(brow)], False, dark, width, cv2.LINE_AA, shift)
    for eye in (range(36, 42), range(42, 48)):
        cv2.fillPoly(frame, [pts(eye)], (245, 245, 240), cv2.LINE_AA, shift)
        iris = landmarks[list(eye)].mean(axis=0)
        cv2.circle(frame, (round(iris[0]), round(iris[1])), max(1, size // 64), dark, -1, cv2.LINE_AA)
    cv2.polylines(frame, [pts(range(27, 31)), pts(range(31, 36))], False, (150, 100, 90), width, cv2.LINE_AA, shift)
    cv2.fillPoly(frame, [pts(range(48, 60))], (170, 60, 70), cv2.LINE_AA, shift)  # lips
    cv2.fillPoly(frame, [pts(range(60, 68))], (60, 20, 25), cv2.LINE_AA, shift)  # open mouth
    return frame


def make_synthetic_videos(
    folder: str | Path, n: int = 2, seconds: float = 2.0, seed: int = 0, *, size: int = 128
) -> list[Path]:
    """Write ``n`` synthetic talking-head mp4s (H.264 + AAC, 25 fps, ``size``×``size``) into ``folder``.

    The mouth opening of frame t is the peak loudness of the audio during that
    frame's 40 ms, so mouth motion and audio are in sync; the head does not move.
    Landmarks of every frame: :func:`synthetic_face_landmarks` with that opening.

    Args:
        folder: destination (created); files are named ``talker_000.mp4``, ``talker_001.mp4``, ...
        n: number of clips.
        seconds: length of each clip (at least one frame, 0.04 s).
        seed: the same seed writes the same pictures and audio (the AAC encoder is deterministic
            for a given ffmpeg build).
        size: frame side in pixels (at least 64).

    Returns:
        The written paths, in order.
    """
    from tavce.video import VideoWriter

    if n < 0 or seconds < 1 / FPS or size < 64:
        raise InvalidArgumentError(
            f"make_synthetic_videos: need n >= 0, seconds >= 0.04 and size >= 64, got {n}, {seconds}, {size}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        samples, envelope = _speech_like_audio(seconds, rng)
        num_frames = len(samples) // SAMPLES_PER_FRAME
        openings = envelope[: num_frames * SAMPLES_PER_FRAME].reshape(num_frames, -1).max(axis=1)
        rows, columns = np.mgrid[0:size, 0:size] / size
        tint = rng.uniform(40, 200, size=3)
        background = np.clip(tint + 40 * np.stack([columns, rows, 1 - rows], -1), 0, 255).astype(np.uint8)
        skin = tuple(int(v) for v in rng.uniform([200, 150, 120], [240, 200, 170]))
        path = folder / f"talker_{index:03d}.mp4"
        with VideoWriter(path, audio=AudioClip(samples, source=str(path))) as writer:
            for opening in openings:
                writer.write(_draw_face(size, synthetic_face_landmarks(size, opening), background, skin))
        paths.append(path)
    return paths
