"""Audio decoding through the ffmpeg bundled with imageio-ffmpeg (video containers, AAC, MP3, M4A, ...).

:func:`tavce.audio.load_audio` tries libsndfile first and comes here only when
libsndfile cannot open the source, so WAV/FLAC/OGG keep their exact decode. The
audio is decoded at its own rate and channel count (32-bit float WAV on a pipe);
resampling to 16 kHz stays in :func:`tavce.audio.to_mono_16k`, identical for
every format.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile

from tavce.errors import InvalidAudioError

__all__ = ["decode_with_ffmpeg", "ffmpeg_problem"]

# ffmpeg's generic epilogue lines; the cause is stated before them.
_GENERIC_PREFIXES = (
    "Error opening",
    "Error parsing",
    "Failed to set",
    "To ignore",
    "Conversion failed",
    "Exiting",
    "Could not load meta",
    "Could not read frame",
    "=== stderr",
)
_CAUSE_WORDS = ("error", "invalid", "not found", "no such", "does not contain", "matches no", "corrupt", "moov")


def ffmpeg_problem(stderr: bytes | str) -> str:
    """The line of an ffmpeg log that states the cause (e.g. ``moov atom not found``), for error messages."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and "] " in line:  # "[in#0 @ 0x55...] moov atom not found"
            line = line.split("] ", 1)[1]
        if line and not line.startswith(_GENERIC_PREFIXES):
            lines.append(line)
    causes = [line for line in lines if any(word in line.lower() for word in _CAUSE_WORDS)]
    return (causes or lines or [text.strip() or "no message"])[0]


def decode_with_ffmpeg(
    source: str | Path | bytes, label: str, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a file (or of in-memory bytes).

    Args:
        source: a file path, or the file's bytes (piped to ffmpeg; formats that need seeking,
            such as mp4 with its index at the end, then fail).
        label: how messages name the source.
        max_seconds: decode at most a little more than this (ffmpeg ``-t``), so a caller can
            tell a too-long clip without holding all of it. None: everything.

    Returns:
        (samples (N, channels) float32 in [-1, 1], sample rate in Hz).

    Raises:
        InvalidAudioError: ffmpeg cannot decode it, or it has no audio track.
    """
    from_memory = isinstance(source, bytes)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
        *(["-i", "pipe:0"] if from_memory else ["-nostdin", "-i", str(source)]),
        "-map", "0:a:0", "-vn",
        *(["-t", f"{max_seconds + 1:.3f}"] if max_seconds is not None else []),
        "-f", "wav", "-acodec", "pcm_f32le", "pipe:1",
    ]  # fmt: skip
    completed = subprocess.run(command, input=source if isinstance(source, bytes) else None, capture_output=True, check=False)
    problem = ffmpeg_problem(completed.stderr)
    if completed.returncode != 0 and b"matches no streams" in completed.stderr:
        raise InvalidAudioError(
            f"{label}: has no audio track; give a file with sound, or the speech as a separate audio file"
        )
    if completed.returncode != 0 or not completed.stdout:
        raise InvalidAudioError(
            f"{label}: cannot be decoded as audio ({problem}); the file is corrupt, truncated or in a format "
            "neither libsndfile nor ffmpeg reads; re-export it, e.g. `ffmpeg -i input -ar 16000 output.wav`"
        )
    # ffmpeg cannot seek back on a pipe, so the WAV header declares an unknown (0xFFFFFFFF) data size;
    # libsndfile then reads to the end of the bytes, which is what we want.
    samples, rate = soundfile.read(io.BytesIO(completed.stdout), dtype="float32", always_2d=True)
    if samples.shape[0] == 0:
        raise InvalidAudioError(f"{label}: its audio track holds no samples; re-export or re-download it")
    return samples, int(rate)
