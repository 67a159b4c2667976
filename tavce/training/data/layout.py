"""The prepared-dataset layout on disk, and reading one prepared video back.

::

    OUT/
      manifest.jsonl              one JSON object per video (see docs/training.md)
      <name>/                     one folder per finished video (renamed into place when complete)
        frames/000000.png ...     RGB face crops, S×S (256), 25 fps, 0-based contiguous numbering
        audio.wav                 the audio track, mono 16 kHz 16-bit PCM
        annotations.npz           per-frame arrays, see :data:`ANNOTATION_ARRAYS`
        meta.json                 counts, source, crop geometry, landmark backend
      .<name>.partial/            a video being prepared (removed and redone if a run stopped in it)

``<name>`` is the video's path relative to the videos folder, without extension,
with folder separators replaced by ``#`` (VoxCeleb's ``id#video#utterance``
convention), so identities can be grouped by the text before the first ``#``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from tavce.audio import frame_windows, load_audio
from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.types import AudioClip

__all__ = [
    "ANNOTATIONS_NAME",
    "ANNOTATION_ARRAYS",
    "AUDIO_NAME",
    "FRAMES_DIR",
    "MANIFEST_NAME",
    "META_NAME",
    "PARTIAL_SUFFIX",
    "PreparedVideo",
    "frame_filename",
    "open_prepared_videos",
    "read_manifest",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
FRAMES_DIR = "frames"
AUDIO_NAME = "audio.wav"
ANNOTATIONS_NAME = "annotations.npz"
META_NAME = "meta.json"
PARTIAL_SUFFIX = ".partial"

ANNOTATION_ARRAYS = {
    "landmarks": "(T, 68, 2) float32: 68-point landmarks (x right, y down) in crop pixels",
    "coefficients": "(T, 73) float32: expression 64, angle 3, translation 3, crop (s, tx, ty)",
    "full_coefficients": "(T, 257) float32: the 3DMM network's whole output",
    "mouth_centres": "(T, 2) int32: (x, y) median of landmarks 48-67, truncated",
    "face_detected": "(T,) bool: False where the landmarks were copied from the nearest detected frame",
}


def frame_filename(index: int) -> str:
    """``frames/`` file of 0-based frame ``index`` (6 digits, as the original's pipeline names them)."""
    return f"{index:06d}.png"


def read_manifest(root: str | Path) -> list[dict]:
    """Entries of ``root/manifest.jsonl`` in file order; a damaged line (an interrupted write) is skipped."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("%s:%d: unreadable manifest line skipped", path, number)
    return entries


@dataclass(frozen=True)
class PreparedVideo:
    """One finished video folder of a prepared dataset (read-only).

    Attributes:
        folder: the ``<name>/`` folder.
        meta: its ``meta.json``.
    """

    folder: Path
    meta: dict

    @classmethod
    def open(cls, folder: str | Path) -> PreparedVideo:
        folder = Path(folder)
        meta_path = folder / META_NAME
        if not meta_path.is_file():
            raise InvalidArgumentError(
                f"{folder}: not a prepared video (no {META_NAME}); run `tavce prepare-data` on the videos first"
            )
        return cls(folder=folder, meta=json.loads(meta_path.read_text()))

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def identity(self) -> str:
        """The text before the first ``#`` of the name (the speaker in VoxCeleb naming)."""
        return self.name.split("#", 1)[0]

    @property
    def num_frames(self) -> int:
        """Usable frames: min(video frames, whole 40 ms audio frames), as the original's datasets count them."""
        return min(int(self.meta["num_frames"]), int(self.meta["audio_frames"]))

    @cached_property
    def annotations(self) -> dict[str, np.ndarray]:
        """The arrays of ``annotations.npz`` (see :data:`ANNOTATION_ARRAYS`), loaded once."""
        with np.load(self.folder / ANNOTATIONS_NAME) as archive:
            return {key: archive[key] for key in archive.files}

    def frame(self, index: int) -> np.ndarray:
        """(S, S, 3) uint8 RGB crop of 0-based frame ``index``."""
        path = self.folder / FRAMES_DIR / frame_filename(index)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InvalidImageError(f"{path}: missing or unreadable frame; prepare the video again")
        return np.ascontiguousarray(image[..., ::-1])

    def audio(self) -> AudioClip:
        """The 16 kHz mono audio track."""
        return load_audio(self.folder / AUDIO_NAME)

    def mel_windows(self) -> np.ndarray:
        """(T_audio, 1, 80, 16) float32 mel windows in [-4, 4], one per 25 fps frame (tavce.audio)."""
        return frame_windows(self.audio()).windows.numpy()


def open_prepared_videos(root: str | Path, *, min_frames: int = 1) -> list[PreparedVideo]:
    """The finished videos listed as ``ok`` in ``root``'s manifest with at least ``min_frames`` usable frames.

    Raises:
        InvalidArgumentError: no manifest, or no video qualifies.
    """
    root = Path(root)
    if not (root / MANIFEST_NAME).is_file():
        raise InvalidArgumentError(f"{root}: no {MANIFEST_NAME}; prepare the videos with `tavce prepare-data` first")
    videos, short = [], 0
    for entry in read_manifest(root):
        if entry.get("status") != "ok":
            continue
        video = PreparedVideo.open(root / entry["name"])
        if video.num_frames >= min_frames:
            videos.append(video)
        else:
            short += 1
    if short:
        logger.info("%s: %d video(s) shorter than %d frames left out", root, short, min_frames)
    if not videos:
        raise InvalidArgumentError(
            f"{root}: no prepared video with at least {min_frames} frames; check {MANIFEST_NAME} for failures"
        )
    return videos
