"""Golden checks for the audio front-end (reference-pipeline.md §1): default float32 path."""

from __future__ import annotations

import torch

from tavce.audio import (
    amplitude_to_db,
    crop_to_frames,
    frame_windows,
    mel_basis,
    mel_spectrogram,
    normalize,
    num_mel_frames,
    preemphasis,
    stft_magnitude,
    window_indices,
)
from tavce.types import MOTION_DIM, AudioClip
from tests.golden.harness import CaseResult, GoldenCase


def check_mel_spectrogram(case: GoldenCase) -> CaseResult:
    """Every intermediate of melspectrogram(wav) for the recorded waveform."""
    waveform = case.inputs["wav"]
    emphasized = preemphasis(waveform)
    magnitude = stft_magnitude(emphasized)
    basis = mel_basis()
    mel_db = amplitude_to_db(basis @ magnitude)
    return CaseResult(
        outputs={
            "preemphasized": emphasized,
            "stft_magnitude": magnitude,
            "mel_basis": basis,
            "mel_db": mel_db,
            "mel": normalize(mel_db),
            "num_mel_frames": torch.tensor(num_mel_frames(len(waveform))),
        }
    )


def reference_coefficients(first_coeff: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(1, T, 70): the source image's motion coefficients repeated over T frames (no reference video)."""
    return first_coeff[:1, :MOTION_DIM].repeat(num_frames, 1).unsqueeze(0)


def check_audio_windows(case: GoldenCase) -> CaseResult:
    """Frame count, cut length, mel, window rows and the stacked windows of get_data."""
    clip = AudioClip(samples=case.inputs["wav"].numpy())
    cropped = crop_to_frames(clip.samples)
    windows = frame_windows(clip)
    orig_mel = mel_spectrogram(cropped).T
    return CaseResult(
        outputs={
            "num_frames": torch.tensor(clip.num_frames),
            "cropped_length": torch.tensor(len(cropped)),
            "orig_mel": orig_mel,
            "window_indices": window_indices(clip.num_frames, orig_mel.shape[0]),
            "indiv_mels": windows.windows.unsqueeze(0),
            "ref": reference_coefficients(case.inputs["first_coeff"], windows.num_frames),
        }
    )
