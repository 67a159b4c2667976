"""Read videos: RGB frames at a constant 25 fps and the audio track at 16 kHz (training data input).

Frames come from the ffmpeg bundled with imageio-ffmpeg, one at a time, so a
long video is never held in memory by :class:`VideoReader`. Any source frame
rate is resampled with ffmpeg's ``fps`` filter (frames are dropped or repeated
by timestamp, nearest rounding), which is what the original's ``ffmpeg -r 25``
re-encode does. The audio track is decoded by :func:`tavce.audio.load_audio`
(ffmpeg, then the same 16 kHz mono resampling as any audio file).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import cv2
import imageio_ffmpeg
import numpy as np

from tavce.audio.ffmpeg import ffmpeg_problem
from tavce.errors import InvalidArgumentError, InvalidVideoError
from tavce.types import FPS, AudioClip

__all__ = ["VIDEO_EXTENSIONS", "VideoClip", "VideoInfo", "VideoReader", "read_video"]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a video before the first frame.

    Attributes:
        path: the file.
        source_size: (width, height) of the encoded frames.
        source_fps: the file's frame rate (0 when ffmpeg cannot tell).
        duration: length in seconds (0 when unknown).
        size: (width, height) of the frames the reader yields.
        fps: the rate the reader yields frames at.
    """

    path: Path
    source_size: tuple[int, int]
    source_fps: float
    duration: float
    size: tuple[int, int]
    fps: float


class VideoReader:
    """Iterate a video's frames as (H, W, 3) uint8 RGB arrays at a constant rate.

    Use as a context manager (ffmpeg is stopped on exit, also after a ``break``)::

        with VideoReader("clip.mp4") as reader:
            print(reader.info.source_fps)
            for frame in reader:
                ...

    Args:
        path: any video ffmpeg reads (mp4, mov, mkv, avi, webm, ...).
        fps: output frame rate (25 for tavce); frames are dropped or repeated by timestamp.
        size: optional (width, height) to resize every frame to (OpenCV area interpolation); None keeps the size.

    Raises:
        InvalidVideoError: the file is missing, not a video, corrupt, or has no frames.
    """

    def __init__(self, path: str | Path, *, fps: float = FPS, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path).expanduser()
        if fps <= 0:
            raise InvalidArgumentError(f"fps must be positive, got {fps}")
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise InvalidArgumentError(f"size must be (width, height) in pixels, got {size!r}")
        _check_file(self.path)
        self.fps = fps
        self.size = size
        self._frames: Generator[Any, None, None] | None = None  # the metadata dict, then each frame's bytes
        self._info: VideoInfo | None = None

    @property
    def info(self) -> VideoInfo:
        """Stream facts; available once the reader is open (inside ``with``)."""
        if self._info is None:
            raise InvalidArgumentError("VideoReader.info is available inside `with VideoReader(...) as reader:`")
        return self._info

    def __enter__(self) -> VideoReader:
        self._frames = imageio_ffmpeg.read_frames(
            str(self.path), pix_fmt="rgb24", output_params=["-an", "-vf", f"fps={self.fps:g}"]
        )
        try:
            meta = next(self._frames)
        except (OSError, RuntimeError, StopIteration) as error:
            self.close()
            if "does not contain any stream" in str(error):
                raise InvalidVideoError(
                    f"{self.path}: has no video stream (an audio-only file?); give a video with picture"
                ) from None
            raise InvalidVideoError(
                f"{self.path}: cannot be read as a video ({ffmpeg_problem(str(error))}); the file is corrupt, "
                "truncated or has no video stream; re-encode it, e.g. `ffmpeg -i input -c:v libx264 output.mp4`"
            ) from None  # ffmpeg's whole log is in the message's source; a traceback adds nothing
        decoded_size = cast(tuple[int, int], tuple(int(v) for v in meta["size"]))
        self._decoded_size = decoded_size
        self._info = VideoInfo(
            path=self.path,
            source_size=cast(tuple[int, int], tuple(int(v) for v in meta.get("source_size", decoded_size))),
            source_fps=float(meta.get("fps") or 0.0),
            duration=float(meta.get("duration") or 0.0),
            size=cast(tuple[int, int], tuple(self.size)) if self.size is not None else decoded_size,
            fps=float(self.fps),
        )
        logger.debug("reading %s: %s", self.path, self._info)
        return self

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._frames is None:
            raise InvalidArgumentError("iterate a VideoReader inside `with VideoReader(...) as reader:`")
        width, height = self._decoded_size
        count = 0
        try:
            for data in self._frames:
                count += 1
                frame: np.ndarray = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
                if self.size is not None and tuple(self.size) != (width, height):
                    # Resized here rather than by ffmpeg's scale filter: same area averaging, one code path.
                    frame = cv2.resize(frame, tuple(self.size), interpolation=cv2.INTER_AREA)
                yield frame
        except RuntimeError as error:
            raise InvalidVideoError(
                f"{self.path}: decoding stopped at frame {count} ({ffmpeg_problem(str(error))}); the file is "
                "corrupt or truncated; re-encode or re-download it"
            ) from None
        if count == 0:
            raise InvalidVideoError(f"{self.path}: the video stream holds no frames; re-encode or re-download it")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop ffmpeg (closing imageio-ffmpeg's generator terminates the process)."""
        if self._frames is not None:
            self._frames.close()
            self._frames = None


@dataclass(frozen=True)
class VideoClip:
    """A whole video in memory.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB at ``info.fps``.
        audio: the audio track as a 16 kHz mono clip, or None when not requested.
        info: stream facts (:class:`VideoInfo`).
    """

    frames: np.ndarray
    audio: AudioClip | None
    info: VideoInfo


def read_video(
    path: str | Path,
    *,
    fps: float = FPS,
    size: tuple[int, int] | None = None,
    max_frames: int | None = None,
    audio: bool = True,
) -> VideoClip:
    """Read a video's frames (and its audio track) into memory; see :class:`VideoReader` for streaming.

    Args:
        path: the video file.
        fps: output frame rate (25).
        size: optional (width, height) to resize frames to.
        max_frames: stop after this many frames (None: all).
        audio: also decode the audio track at 16 kHz mono (:func:`tavce.audio.load_audio`).

    Raises:
        InvalidVideoError: unreadable video; InvalidAudioError: no or unreadable audio track.
    """
    from tavce.audio.loading import load_audio

    frames = []
    with VideoReader(path, fps=fps, size=size) as reader:
        for frame in reader:
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
        info = reader.info
    track = load_audio(Path(path).expanduser()) if audio else None
    return VideoClip(frames=np.stack(frames), audio=track, info=info)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InvalidVideoError(f"{path}: video file not found; check the path")
    if path.is_dir():
        raise InvalidVideoError(f"{path}: is a folder, not a video file; give the path of a file")
    if path.stat().st_size == 0:
        raise InvalidVideoError(f"{path}: video file is empty (0 bytes); re-encode or re-download it")
