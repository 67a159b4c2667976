"""Per-frame mel windows: truncating start offsets, edge clamping, shapes, long audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tavce.audio import crop_to_frames, frame_windows, mel_spectrogram, window_indices
from tavce.errors import InvalidArgumentError, InvalidAudioError
from tavce.types import AudioClip, AudioWindows


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


def test_windows_of_a_long_clip_are_held_as_the_mel_and_gathered_in_batches() -> None:
    samples = np.random.default_rng(4).normal(0, 0.1, 640 * 2100).astype(np.float32)  # 84 s
    windows = frame_windows(AudioClip(samples), dtype=torch.float64)
    mel = mel_spectrogram(crop_to_frames(samples), dtype=torch.float64).to(torch.float32)
    rows = window_indices(2100, mel.shape[1])
    batches = list(windows.batches(1000))
    assert [len(batch) for batch in batches] == [1000, 1000, 100]
    for frame in (0, 999, 1000, 1999, 2000, 2099):
        assert torch.equal(batches[frame // 1000][frame % 1000, 0], mel[:, rows[frame]]), frame
    assert torch.equal(windows.select(torch.tensor([2099, 0])), torch.stack([batches[2][99], batches[0][0]]))
    assert torch.equal(windows[1500:1502].windows, batches[1][500:502])


def test_audio_windows_from_a_tensor_read_back_unchanged() -> None:
    tensor = torch.rand(9, 1, 80, 16, generator=torch.Generator().manual_seed(5)) * 8 - 4
    windows = AudioWindows(tensor)
    assert windows.num_frames == 9 and torch.equal(windows.windows, tensor)
    assert torch.equal(torch.cat(list(windows.batches(4))), tensor)
    assert torch.equal(windows[3:7].select(torch.tensor([3, 0])), tensor[[6, 3]])
    with pytest.raises(InvalidArgumentError, match="size must be at least 1"):
        next(windows.batches(0))
    with pytest.raises(InvalidArgumentError, match=r"index with a slice of frames"):
        windows[2]
    with pytest.raises(InvalidArgumentError, match=r"must be \(T, 1, 80, 16\)"):
        AudioWindows(torch.zeros(3, 80, 16))
    with pytest.raises(InvalidArgumentError, match=r"rows must lie in \[0, 5\)"):
        AudioWindows.from_mel(torch.zeros(5, 80), torch.arange(16).view(1, 16))


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
    windows = frame_windows(AudioClip(samples))
    assert windows.num_frames == 15_000
    assert all(torch.isfinite(batch).all() for batch in windows.batches(4096))
