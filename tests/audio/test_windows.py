"""Per-frame mel windows: truncating start offsets, edge clamping, shapes, long audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tavce.audio import crop_to_frames, frame_windows, mel_spectrogram, window_indices
from tavce.errors import InvalidAudioError
from tavce.types import AudioClip


def test_window_starts_truncate_toward_zero_and_clamp() -> None:
    rows = window_indices(8, 27)
    # start(i) = int(80 (i - 2) / 25): -6, -3, 0, 3, 6, 9, 12, 16 (quirk 7).
    expected_starts = [-6, -3, 0, 3, 6, 9, 12, 16]
    for frame, start in enumerate(expected_starts):
        expected = torch.clamp(torch.arange(start, start + 16), 0, 26)
        assert torch.equal(rows[frame], expected), frame
    assert rows.dtype == torch.int64 and rows.shape == (8, 16)


def test_frame_windows_slice_the_cropped_mel() -> None:
    samples = np.random.default_rng(1).normal(0, 0.1, 640 * 7 + 300).astype(np.float32)
    windows = frame_windows(AudioClip(samples)).windows
    assert windows.shape == (7, 1, 80, 16) and windows.dtype == torch.float32
    mel = mel_spectrogram(crop_to_frames(samples))  # (80, 1 + 3.2 * 7 = 23)
    assert mel.shape == (80, 23)
    assert torch.equal(windows[3, 0], mel[:, 3:19])
    assert torch.equal(windows[0, 0, :, :7], mel[:, :1].expand(80, 7))  # rows -6..0 clamp to frame 0
    assert torch.equal(windows[6, 0, :, -1], mel[:, 22])  # last window clamps to the last frame


def test_windows_of_a_long_clip_slice_the_mel_on_both_sides_of_each_gathered_chunk() -> None:
    samples = np.random.default_rng(4).normal(0, 0.1, 640 * 2100).astype(np.float32)  # 84 s: chunks of 1024 frames
    windows = frame_windows(AudioClip(samples), dtype=torch.float64).windows
    mel = mel_spectrogram(crop_to_frames(samples), dtype=torch.float64).to(torch.float32)
    rows = window_indices(2100, mel.shape[1])
    for frame in (0, 1023, 1024, 2047, 2048, 2099):
        assert torch.equal(windows[frame, 0], mel[:, rows[frame]]), frame


def test_float64_windows_are_stored_as_float32() -> None:
    samples = np.random.default_rng(2).normal(0, 0.1, 640 * 3).astype(np.float32)
    precise = frame_windows(AudioClip(samples), dtype=torch.float64).windows
    assert precise.dtype == torch.float32
    assert torch.allclose(precise, frame_windows(AudioClip(samples)).windows, atol=1e-3)


def test_too_short_clip() -> None:
    with pytest.raises(InvalidAudioError, match="shorter than one 25 fps frame"):
        frame_windows(AudioClip(np.zeros(639, dtype=np.float32)))


def test_ten_minutes_in_linear_time() -> None:
    samples = np.random.default_rng(3).normal(0, 0.05, 16_000 * 600).astype(np.float32)
    windows = frame_windows(AudioClip(samples)).windows
    assert windows.shape == (15_000, 1, 80, 16)
    assert torch.isfinite(windows).all()
