"""Per-video-frame 16-step mel windows.

A clip of N samples gives T = N // 640 video frames at 25 fps; the waveform is
cut to 640·T samples and its mel spectrogram (M = 1 + 3.2·T frames, 80 per
second) is sliced into one 16-step window per video frame. The window of frame
i starts at ``int(80 · (i - 2) / 25)`` -- Python ``int`` truncates toward zero,
so frame 0 starts at -6 and frame 1 at -3, as in the original -- and
indices outside [0, M - 1] repeat the edge frame.
"""

from __future__ import annotations

import numpy as np
import torch

from tavce.audio.mel import mel_spectrogram
from tavce.errors import InvalidAudioError
from tavce.types import FPS, MEL_STEPS_PER_WINDOW, SAMPLE_RATE, SAMPLES_PER_FRAME, AudioClip, AudioWindows

__all__ = ["MEL_FRAMES_PER_SECOND", "crop_to_frames", "window_indices", "frame_windows"]

MEL_FRAMES_PER_SECOND = 80  # 16000 Hz / hop 200


def crop_to_frames(samples: np.ndarray) -> np.ndarray:
    """Cut a 16 kHz waveform to a whole number of 25 fps frames: its first 640 · (N // 640) samples."""
    return samples[: (len(samples) // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME]


def window_indices(num_frames: int, num_mel_frames: int) -> torch.Tensor:
    """Mel-frame rows of every video frame's window.

    Returns:
        (num_frames, 16) int64 tensor; row i is ``start(i) + 0..15`` clamped to [0, num_mel_frames - 1].
    """
    frames = np.arange(num_frames, dtype=np.float64)
    # Same float expression as the original, so truncation matches it bit for bit.
    starts = np.trunc(float(MEL_FRAMES_PER_SECOND) * ((frames - 2) / float(FPS))).astype(np.int64)
    rows = starts[:, np.newaxis] + np.arange(MEL_STEPS_PER_WINDOW, dtype=np.int64)
    return torch.from_numpy(np.clip(rows, 0, num_mel_frames - 1))


def frame_windows(clip: AudioClip, *, dtype: torch.dtype = torch.float32) -> AudioWindows:
    """The (T, 1, 80, 16) mel windows that drive T video frames.

    Args:
        clip: 16 kHz mono audio of at least one frame (640 samples).
        dtype: precision of the mel computation (``torch.float64`` follows the original
            exactly); the windows are always stored as float32.

    Cost is linear in the clip length (one STFT); the windows are gathered from the
    spectrogram as they are read (see :class:`~tavce.types.AudioWindows`).
    """
    cropped = crop_to_frames(clip.samples)
    num_frames = len(cropped) // SAMPLES_PER_FRAME
    if num_frames == 0:
        raise InvalidAudioError(
            f"{clip.source}: audio is shorter than one 25 fps frame ({SAMPLES_PER_FRAME} samples at "
            f"{SAMPLE_RATE} Hz); give a longer clip"
        )
    # Stored as float32 before the windows are gathered: cast and gather commute.
    mel = mel_spectrogram(cropped, dtype=dtype, out_dtype=torch.float32)  # (80, M)
    return AudioWindows.from_mel(mel.T, window_indices(num_frames, mel.shape[1]))
