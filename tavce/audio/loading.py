"""Decode any audio source into a 16 kHz mono float32 :class:`~tavce.types.AudioClip`.

Matches what the original's ``librosa.load(path, sr=16000)`` (librosa 0.9.2) returns:
libsndfile decode to float32, channels averaged, resampled with resampy's
``kaiser_best`` filter and fixed to ``ceil(N * 16000 / rate)`` samples. No loudness
normalisation, no silence trimming.

Sources libsndfile cannot open (mp4 / mov / mkv videos, m4a, AAC, MP3 on old
libsndfile builds) are decoded by the bundled ffmpeg instead
(:mod:`tavce.audio.ffmpeg`) and then go through the same mono / resampling steps.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import soundfile
import torch

from tavce.audio.ffmpeg import decode_with_ffmpeg
from tavce.errors import InvalidAudioError
from tavce.types import SAMPLE_RATE, SAMPLES_PER_FRAME, AudioClip

__all__ = ["load_audio", "to_mono_16k"]

AudioSource = str | Path | BinaryIO | np.ndarray | torch.Tensor

# libsndfile reports a WAV whose data chunk is shorter than its header declares as
# "data : <declared> (should be <present>)". Streaming writers declare 0 or 0xFFFFFFFF.
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF}


def load_audio(source: AudioSource, *, sample_rate: int | None = None, max_seconds: float | None = None) -> AudioClip:
    """Load driving audio as a 16 kHz mono float32 clip.

    Args:
        source: a path (anything libsndfile reads: WAV, FLAC, OGG/Vorbis, AIFF, ...; anything
            else ffmpeg reads: the audio track of a video (mp4, mov, mkv, webm), m4a, AAC, MP3),
            a binary file object, or samples as a numpy array / torch tensor shaped
            (N,) or (N, channels) (soundfile's layout). Integer samples are scaled by
            their full range (int16 / 32768), floats are taken as is.
        sample_rate: rate of array/tensor samples in Hz; required for them, ignored
            (must be None) for files.
        max_seconds: refuse a file longer than this before decoding more of it than that (from
            libsndfile's header, or by stopping ffmpeg just past it): memory stays bounded for
            compressed uploads that would decode to hours of samples. None: no limit.

    Returns:
        An :class:`AudioClip` of at least 640 samples (one 25 fps frame). Silence is valid.

    Raises:
        InvalidAudioError: missing, empty, unreadable, truncated, too short, too long or non-finite audio.
    """
    if isinstance(source, (np.ndarray, torch.Tensor)):
        if sample_rate is None:
            raise InvalidAudioError(
                "<array>: samples given without a rate; pass sample_rate=<Hz> with an array or tensor"
            )
        label = "<array>"
        samples, rate = _array_samples(source, sample_rate), int(sample_rate)
    else:
        if sample_rate is not None:
            raise InvalidAudioError(
                f"{_describe(source)}: sample_rate is only for arrays; a file's rate is read from its header"
            )
        label = _describe(source)
        samples, rate = _decode(source, label, max_seconds)
    return to_mono_16k(samples, rate, source=label)


def to_mono_16k(samples: np.ndarray, rate: int, *, source: str = "<array>") -> AudioClip:
    """Average (N, channels) float32 samples to mono, resample to 16 kHz and validate."""
    if rate <= 0:
        raise InvalidAudioError(f"{source}: sample rate must be positive, got {rate}")
    if samples.shape[0] == 0:
        raise InvalidAudioError(f"{source}: contains no audio samples; give a file with speech in it")
    if not np.isfinite(samples).all():
        raise InvalidAudioError(
            f"{source}: contains NaN or infinite samples; re-export the audio (e.g. as 16-bit PCM WAV)"
        )
    target_length = math.ceil(len(samples) * SAMPLE_RATE / rate)
    if target_length < SAMPLES_PER_FRAME:
        raise InvalidAudioError(
            f"{source}: audio is {len(samples) / rate * 1000:.1f} ms long, shorter than one 25 fps video "
            f"frame (40 ms = {SAMPLES_PER_FRAME} samples at 16 kHz); give a longer clip"
        )
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        import resampy  # imported here: it brings numba and LLVM (~60 MiB), needless for 16 kHz audio

        # librosa.load: resampy output fixed (zero-padded or cut) to ceil(N * 16000 / rate) samples.
        resampled = resampy.resample(mono, rate, SAMPLE_RATE, filter="kaiser_best")
        mono = np.zeros(target_length, dtype=np.float32)
        mono[: min(target_length, len(resampled))] = resampled[:target_length]
    return AudioClip(samples=np.ascontiguousarray(mono, dtype=np.float32), source=source)


def _describe(source: object) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", "<file object>"))


def _array_samples(source: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[1] > array.shape[0]:
        raise InvalidAudioError(
            f"<array>: samples must be shaped (N,) or (N, channels), got {array.shape}; "
            "transpose a (channels, N) array first"
        )
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min == 0:  # unsigned PCM is centred on its midpoint
            midpoint = (int(info.max) + 1) // 2
            return ((array.astype(np.float64) - midpoint) / midpoint).astype(np.float32)
        return (array.astype(np.float64) / (int(info.max) + 1)).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    raise InvalidAudioError(f"<array>: samples must be integers or floats, got dtype {array.dtype}")


def _too_long(label: str, max_seconds: float, seconds: float | None = None) -> InvalidAudioError:
    length = f"{seconds:.1f} s long" if seconds is not None else f"longer than {max_seconds:g} s"
    return InvalidAudioError(
        f"{label}: the audio is {length}; at most {max_seconds:g} s is accepted here. Cut the clip or split it"
    )


def _decode(source: str | Path | BinaryIO, label: str, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    original = source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise InvalidAudioError(f"{label}: audio file not found; check the path")
        if path.is_dir():
            raise InvalidAudioError(f"{label}: is a folder, not an audio file; give the path of a file")
        if path.stat().st_size == 0:
            raise InvalidAudioError(f"{label}: audio file is empty (0 bytes); re-export or re-download it")
    else:
        data = source.read()
        if not data:
            raise InvalidAudioError(f"{label}: audio stream is empty (0 bytes); pass a file object at its start")
        source = io.BytesIO(data)
    try:
        with soundfile.SoundFile(source) as audio_file:
            declared_frames = audio_file.frames
            if max_seconds is not None and declared_frames > max_seconds * audio_file.samplerate:
                raise _too_long(label, max_seconds, declared_frames / audio_file.samplerate)
            details = audio_file.extra_info
            samples = audio_file.read(dtype="float32", always_2d=True)
            rate = audio_file.samplerate
    except soundfile.LibsndfileError as error:
        if "Error opening" not in str(error):  # opened but failed mid-stream: a damaged file, not a foreign format
            raise InvalidAudioError(
                f"{label}: cannot be decoded as audio ({str(error).strip()}); the file is corrupt or truncated; "
                "re-export or re-download it"
            ) from error
        # A format libsndfile does not read (a video, m4a, ...): ffmpeg decodes it, or explains why not.
        samples, rate = decode_with_ffmpeg(
            original if isinstance(original, (str, Path)) else cast(io.BytesIO, source).getvalue(), label, max_seconds
        )
        if max_seconds is not None and samples.shape[0] > max_seconds * rate:
            raise _too_long(label, max_seconds) from None
        return samples, rate
    short_chunk = _SHORT_DATA_CHUNK.search(details)
    truncated = short_chunk and int(short_chunk.group(1)) not in _STREAMING_SIZES
    if truncated or samples.shape[0] < declared_frames:
        raise InvalidAudioError(
            f"{label}: audio file is truncated (the header announces more audio than the file holds); "
            "re-export or re-download it"
        )
    if samples.shape[0] == 0:
        raise InvalidAudioError(
            f"{label}: no audio samples could be decoded (empty or truncated file); re-export or re-download it"
        )
    return samples, rate
