"""Wav2Lip mel spectrogram, without librosa.

The recipe, on a 16 kHz mono waveform:

1. pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``y[0] = x[0]``);
2. STFT magnitude: n_fft 800, hop 200, periodic Hann window of 800, centred with
   400 zeros on each side (as librosa >= 0.9, which the original pins, pads; older versions reflect), so
   ``M = 1 + N // 200`` frames;
3. Slaney mel filterbank (80 bands, 55-7600 Hz, Slaney area normalisation),
   computed like ``librosa.filters.mel`` including its float32 storage;
4. ``S = 20 log10(max(mel, 1e-5)) - 20`` dB;
5. ``clip(8 (S + 100) / 100 - 4, -4, 4)``.

Every step is a public function so tests can compare each intermediate.
The default path runs in float32 (fast); ``dtype=torch.float64`` follows the
original's float64 arithmetic to ~1e-13.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from tavce.errors import InvalidArgumentError
from tavce.types import MEL_BINS, SAMPLE_RATE

__all__ = [
    "PREEMPHASIS",
    "N_FFT",
    "HOP_LENGTH",
    "MEL_FMIN",
    "MEL_FMAX",
    "preemphasis",
    "stft_magnitude",
    "mel_basis",
    "amplitude_to_db",
    "normalize",
    "mel_spectrogram",
    "num_mel_frames",
]

PREEMPHASIS = 0.97
N_FFT = 800
HOP_LENGTH = 200
MEL_FMIN = 55.0
MEL_FMAX = 7600.0
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS_VALUE = 4.0
AMPLITUDE_FLOOR = 10.0 ** (MIN_LEVEL_DB / 20.0)  # 1e-5


MEL_CHUNK_FRAMES = 2000
"""Mel frames (20 s of audio) computed together by :func:`mel_spectrogram`: bounds its memory."""


def num_mel_frames(num_samples: int) -> int:
    """Frames of the centred STFT: ``1 + num_samples // 200``."""
    return 1 + num_samples // HOP_LENGTH


def _as_waveform(samples: np.ndarray | torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``samples`` checked as a 1-D float waveform, in ``dtype`` (None: as given)."""
    waveform = torch.as_tensor(samples)
    if waveform.ndim != 1:
        raise InvalidArgumentError(f"the waveform must be 1-D (N,), got shape {tuple(waveform.shape)}")
    if not waveform.is_floating_point():
        raise InvalidArgumentError(f"the waveform must hold floats in [-1, 1], got {waveform.dtype}")
    return waveform if dtype is None else waveform.to(dtype)


def preemphasis(samples: np.ndarray | torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``y[n] = x[n] - 0.97 x[n-1]`` with zero initial state, (N,) -> (N,) in ``dtype``."""
    waveform = _as_waveform(samples, dtype)
    emphasized = waveform.clone()
    emphasized[1:] -= PREEMPHASIS * waveform[:-1]
    return emphasized


def _frame_span(start: int, stop: int) -> tuple[int, int]:
    """Samples [first, last) of the clip that frames start … stop − 1 of the centred STFT read (400
    zeros padded each side: the span may reach outside the clip, where it reads zeros)."""
    return start * HOP_LENGTH - N_FFT // 2, (stop - 1) * HOP_LENGTH + N_FFT // 2


def _pad_to_span(inside: torch.Tensor, first: int, last: int, num_samples: int) -> torch.Tensor:
    return torch.nn.functional.pad(inside, (max(-first, 0), max(last - num_samples, 0)))


def _centred_segment(samples: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """The padded STFT input of frames start … stop − 1, padding only its part outside the samples."""
    first, last = _frame_span(start, stop)
    inside = samples[max(first, 0) : min(last, samples.shape[0])]
    return _pad_to_span(inside, first, last, samples.shape[0])


def _magnitude(segment: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(N_FFT, periodic=True, dtype=segment.dtype)
    spectrum = torch.stft(
        segment, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=N_FFT, window=window, center=False, return_complex=True
    )
    return spectrum.abs()


def stft_magnitude(emphasized: torch.Tensor, *, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """|STFT| (401, stop − start) of frames start … stop − 1 of a 1-D waveform.

    Periodic Hann 800, hop 200, 400 zeros padded each side (the centred STFT); frame m
    reads padded samples [200·m, 200·m + 800), so any frame range is computed exactly
    from its own samples.
    """
    stop = num_mel_frames(emphasized.shape[0]) if stop is None else stop
    return _magnitude(_centred_segment(emphasized, start, stop))


def _emphasized_segment(samples: torch.Tensor, start: int, stop: int, dtype: torch.dtype) -> torch.Tensor:
    """The padded, pre-emphasised STFT input of frames start … stop − 1, from the raw samples.

    Pre-emphasis reads one sample back, so the span starts one sample early (where there is one)
    and drops it: every value is the one the whole-clip computation gives.
    """
    first, last = _frame_span(start, stop)
    begin = max(first, 0)
    context = 1 if begin > 0 else 0
    inside = preemphasis(samples[begin - context : min(last, samples.shape[0])], dtype=dtype)[context:]
    return _pad_to_span(inside, first, last, samples.shape[0])


def _hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    linear_step = 200.0 / 3
    mels = frequencies / linear_step
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / linear_step
    log_step = np.log(6.4) / 27.0
    above = frequencies >= min_log_hz
    mels[above] = min_log_mel + np.log(frequencies[above] / min_log_hz) / log_step
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    linear_step = 200.0 / 3
    frequencies = linear_step * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / linear_step
    log_step = np.log(6.4) / 27.0
    above = mels >= min_log_mel
    frequencies[above] = min_log_hz * np.exp(log_step * (mels[above] - min_log_mel))
    return frequencies


@lru_cache(maxsize=4)
def _mel_basis_numpy(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    # Same arithmetic as librosa.filters.mel(htk=False, norm="slaney", dtype=float32): float64
    # triangles written row by row into a float32 array, then scaled in place (float32 result).
    fft_frequencies = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    band_edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0], n_mels + 2))
    edge_gaps = np.diff(band_edges)
    ramps = np.subtract.outer(band_edges, fft_frequencies)
    weights = np.zeros((n_mels, len(fft_frequencies)), dtype=np.float32)
    for band in range(n_mels):
        rising = -ramps[band] / edge_gaps[band]
        falling = ramps[band + 2] / edge_gaps[band + 1]
        weights[band] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (band_edges[2 : n_mels + 2] - band_edges[:n_mels]))[:, np.newaxis]
    weights.flags.writeable = False
    return weights


def mel_basis(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = MEL_BINS,
    fmin: float = MEL_FMIN,
    fmax: float = MEL_FMAX,
) -> torch.Tensor:
    """Slaney-scale, Slaney-normalised mel filterbank (n_mels, 1 + n_fft // 2), float32 like librosa."""
    return torch.from_numpy(_mel_basis_numpy(sample_rate, n_fft, n_mels, float(fmin), float(fmax)).copy())


def amplitude_to_db(mel: torch.Tensor) -> torch.Tensor:
    """``20 log10(max(mel, 1e-5)) - 20``: the floor maps to -120 dB."""
    return 20.0 * torch.log10(torch.clamp(mel, min=AMPLITUDE_FLOOR)) - REF_LEVEL_DB


def normalize(mel_db: torch.Tensor) -> torch.Tensor:
    """Map [-100, 0] dB linearly onto [-4, 4] and clip."""
    scaled = (2 * MAX_ABS_VALUE) * ((mel_db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS_VALUE
    return torch.clamp(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE)


def mel_spectrogram(
    samples: np.ndarray | torch.Tensor, *, dtype: torch.dtype = torch.float32, out_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Normalised mel spectrogram of a 16 kHz mono waveform.

    Args:
        samples: (N,) float waveform in [-1, 1] at 16 kHz.
        dtype: ``torch.float32`` (default) or ``torch.float64`` for the original's precision.
        out_dtype: dtype of the result (default ``dtype``); float64 computed, float32 returned
            equals the float64 result cast, without holding it.

    Returns:
        (80, 1 + N // 200) tensor of ``out_dtype`` in [-4, 4] (mel bins x time).
    """
    if dtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if out_dtype is not None and not out_dtype.is_floating_point:
        raise InvalidArgumentError(f"out_dtype must be a floating-point dtype, got {out_dtype}")
    waveform = _as_waveform(samples)  # checked; each chunk is converted to dtype on its own
    basis = mel_basis().to(dtype)
    frames = num_mel_frames(waveform.shape[0])
    # In chunks of frames, each from its own samples (exact: a frame depends only on them): the
    # clip in float64, its padded copy or its complex spectrum whole would grow with its length.
    mel = torch.empty(MEL_BINS, frames, dtype=out_dtype or dtype)
    for start in range(0, frames, MEL_CHUNK_FRAMES):
        stop = min(start + MEL_CHUNK_FRAMES, frames)
        mel[:, start:stop] = normalize(amplitude_to_db(basis @ _magnitude(_emphasized_segment(waveform, start, stop, dtype))))
    return mel
