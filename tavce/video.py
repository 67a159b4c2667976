"""Streaming H.264 mp4 writer with an AAC audio track.

Frames go one at a time to imageio-ffmpeg's bundled ffmpeg, so a clip is never
held in memory. Everything is written inside a hidden temporary folder next to
the destination; only a complete file is moved into place (``os.replace``). If
anything fails or is interrupted inside the ``with`` block, ffmpeg is killed,
the temporary folder removed, and nothing appears at the destination. A process
killed outright leaves its folder (named with its pid); the next writer of the same
destination removes it once that process is gone.

Deliberate deviations from the original:

* sizes are kept exactly; yuv420p needs even sizes, so an odd width or height is
  padded by ONE edge-replicated column / row (the original enlarged each side to a
  multiple of 16);
* the audio track is the driving audio trimmed to exactly T·40 ms: either the
  16 kHz :class:`~tavce.types.AudioClip` or, when a path is given, the original
  file at its own rate and channel count.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, cast

import imageio_ffmpeg
import numpy as np
import soundfile

from tavce._kill_points import kill_point
from tavce._writes import lacks_space, out_of_space_error, reporting_full_disk
from tavce.errors import InvalidArgumentError, OutputError
from tavce.types import FPS, SAMPLE_RATE, AudioClip

__all__ = ["DEFAULT_CRF", "check_output_path", "VideoWriter", "write_video"]

logger = logging.getLogger(__name__)

DEFAULT_CRF = 25  # what the original's imageio quality 5 means for libx264
_LOG_TAIL_CHARS = 2000
_ENCODER_EXIT_SECONDS = 10
_WORKSPACE_SUFFIX = ".tavce-tmp"


def check_output_path(path: str | Path, *, create_folder: bool = False) -> Path:
    """Validate an output video path before any rendering starts.

    Args:
        create_folder: create the missing parent folders (as ``mkdir -p``) instead of refusing.

    Returns:
        The path, with ``~`` expanded.

    Raises:
        OutputError: not ``.mp4``, an existing folder, or its folder is missing or not writable.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() != ".mp4":
        raise OutputError(f"{path}: output must be an .mp4 file; change the extension to .mp4")
    if path.is_dir():
        raise OutputError(f"{path}: is an existing folder; give a file name ending in .mp4")
    folder = path.parent
    if create_folder:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"{path}: cannot create the folder {folder} ({error.strerror}); choose another") from None
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist; create it first or choose another location")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputError(f"{path}: cannot write into {folder} ({error.strerror}); choose a writable folder") from error
    return path


def _remove_abandoned_workspaces(path: Path) -> None:
    """Work folders left beside ``path`` by writers that were killed (their process is gone)."""
    prefix = f".{path.stem}."
    for leftover in path.parent.glob(f"{glob.escape(prefix)}*{_WORKSPACE_SUFFIX}"):
        owner = leftover.name[len(prefix) :].split(".", 1)[0]
        if owner.isdigit() and not _process_alive(int(owner)) and leftover.is_dir():
            logger.info("removing %s (left by a killed run)", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class VideoWriter:
    """Write RGB frames to an mp4 (H.264, yuv420p, 25 fps) with optional AAC audio.

    Use as a context manager::

        with VideoWriter("out.mp4", audio=clip) as writer:
            for frame in frames:
                writer.write(frame)

    Args:
        path: destination ``.mp4``; checked by :func:`check_output_path` at construction.
        audio: an :class:`AudioClip` (16 kHz), a path to the original audio file, or None.
        fps: frame rate (25 in tavce).
        crf: x264 constant rate factor, 0 (lossless) to 51; 25 matches the original.
    """

    def __init__(
        self, path: str | Path, *, audio: AudioClip | str | Path | None = None, fps: int = FPS, crf: int = DEFAULT_CRF
    ) -> None:
        self.path = check_output_path(path)
        if audio is not None and not isinstance(audio, AudioClip) and not Path(audio).is_file():
            raise InvalidArgumentError(f"audio: {audio} is not a file; give the driving audio file or an AudioClip")
        if not 0 <= crf <= 51:
            raise InvalidArgumentError(f"crf must be in 0..51, got {crf}")
        self.audio = audio
        self.fps = fps
        self.crf = crf
        self.num_frames = 0
        self._frame_shape: tuple[int, int] | None = None
        self._workspace: Path | None = None
        self._encoder: subprocess.Popen | None = None

    def __enter__(self) -> VideoWriter:
        _remove_abandoned_workspaces(self.path)
        with reporting_full_disk(self.path):
            workspace = tempfile.mkdtemp(
                prefix=f".{self.path.stem}.{os.getpid()}.", suffix=_WORKSPACE_SUFFIX, dir=self.path.parent
            )
        self._workspace = Path(workspace)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                self._abort()
                raise
        else:
            self._abort()

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame; every frame must have the first frame's size."""
        if self._workspace is None:
            raise InvalidArgumentError("VideoWriter.write must be called inside `with VideoWriter(...) as writer:`")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InvalidArgumentError(f"frames must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}")
        if self._frame_shape is None:
            self._frame_shape = frame.shape[:2]
            self._encoder = self._start_encoder()
        elif frame.shape[:2] != self._frame_shape:
            raise InvalidArgumentError(
                f"frame {self.num_frames} is {frame.shape[:2]}, the first was {self._frame_shape}; "
                "every frame must have the same size"
            )
        height, width = frame.shape[:2]
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        try:
            cast(IO[bytes], cast(subprocess.Popen, self._encoder).stdin).write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError) as error:
            raise self._encoder_failure("stopped while encoding") from error
        self.num_frames += 1
        kill_point("generate:encode")

    @property
    def _video_only(self) -> Path:
        return cast(Path, self._workspace) / "video.mp4"

    def _start_encoder(self) -> subprocess.Popen:
        height, width = cast(tuple[int, int], self._frame_shape)
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width + width % 2}x{height + height % 2}",
            "-r", str(self.fps), "-i", "-",
            "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.crf),
            "-f", "mp4", str(self._video_only),
        ]  # fmt: skip
        logger.debug("starting ffmpeg: %s", " ".join(command))
        log = open(cast(Path, self._workspace) / "ffmpeg.log", "wb")  # a file, so a chatty ffmpeg never blocks on a full pipe
        try:
            return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()

    def _log_tail(self) -> str:
        log = self._workspace / "ffmpeg.log" if self._workspace else None
        text = log.read_text(errors="replace").strip() if log and log.exists() else ""
        return text[-_LOG_TAIL_CHARS:] or "no message"

    def _encoder_failure(self, what: str) -> OutputError:
        # The log is read once ffmpeg has exited: read at the broken pipe, it is often still empty.
        try:
            status = cast(subprocess.Popen, self._encoder).wait(timeout=_ENCODER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            status = None
        log = self._log_tail()
        if status == -signal.SIGXFSZ:
            log = f"File too large (ffmpeg was stopped by the file-size limit) {log}"
        if lacks_space(log, self._workspace or self.path.parent):
            return out_of_space_error(self.path, log)
        return OutputError(f"{self.path}: ffmpeg {what} ({log})")

    def _finish(self) -> None:
        if self._encoder is None:
            raise OutputError(f"{self.path}: no frames were written; nothing to save")
        try:
            cast(IO[bytes], self._encoder.stdin).close()
        except OSError:
            pass  # ffmpeg is gone; its exit status and log say why
        if self._encoder.wait() != 0:
            raise self._encoder_failure("failed to encode the video")
        self._encoder = None
        result = self._video_only if self.audio is None else self._mux_audio()
        os.replace(result, self.path)
        shutil.rmtree(cast(Path, self._workspace), ignore_errors=True)
        self._workspace = None
        logger.info("wrote %s (%d frames)", self.path, self.num_frames)

    def _mux_audio(self) -> Path:
        duration = self.num_frames / self.fps
        if isinstance(self.audio, AudioClip):
            audio_path = cast(Path, self._workspace) / "audio.wav"
            samples = self.audio.samples[: round(duration * SAMPLE_RATE)]
            with reporting_full_disk(self.path, needed=2 * len(samples)):
                soundfile.write(audio_path, samples, SAMPLE_RATE, subtype="PCM_16")
        else:
            audio_path = Path(cast("str | Path", self.audio))
        muxed = cast(Path, self._workspace) / "muxed.mp4"
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
            "-i", str(self._video_only), "-i", str(audio_path),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac",
            "-t", f"{duration:.6f}", "-movflags", "+faststart", "-f", "mp4", str(muxed),
        ]  # fmt: skip
        # subprocess.run kills ffmpeg itself if we are interrupted while waiting.
        completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip()[-_LOG_TAIL_CHARS:]
            if completed.returncode == -signal.SIGXFSZ:
                message = f"File too large (ffmpeg was stopped by the file-size limit) {message}"
            needed = self._video_only.stat().st_size  # the muxed copy: at least the video again, beside it
            if lacks_space(message, cast(Path, self._workspace), needed):
                raise out_of_space_error(self.path, message, needed=needed)
            raise OutputError(f"{self.path}: ffmpeg failed to add the audio track from {audio_path} ({message})")
        return muxed

    def _abort(self) -> None:
        if self._encoder is not None:
            self._encoder.kill()
            self._encoder.wait()
            if self._encoder.stdin:
                try:
                    self._encoder.stdin.close()
                except OSError:
                    pass  # the pipe is already broken; the process is gone
            self._encoder = None
        if self._workspace is not None:
            shutil.rmtree(self._workspace, ignore_errors=True)
            self._workspace = None


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], *, audio: AudioClip | str | Path | None = None, fps: int = FPS
) -> Path:
    """Write an iterable of (H, W, 3) uint8 frames to ``path`` (see :class:`VideoWriter`)."""
    with VideoWriter(path, audio=audio, fps=fps) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path

