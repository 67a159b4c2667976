"""Audio front-end: decoding, the Wav2Lip mel spectrogram and per-frame mel windows."""

from tavce.audio.loading import load_audio, to_mono_16k
from tavce.audio.mel import (
    amplitude_to_db,
    mel_basis,
    mel_spectrogram,
    normalize,
    num_mel_frames,
    preemphasis,
    stft_magnitude,
)
from tavce.audio.windows import MEL_FRAMES_PER_SECOND, crop_to_frames, frame_windows, window_indices

__all__ = [
    "load_audio",
    "to_mono_16k",
    "preemphasis",
    "stft_magnitude",
    "mel_basis",
    "amplitude_to_db",
    "normalize",
    "mel_spectrogram",
    "num_mel_frames",
    "MEL_FRAMES_PER_SECOND",
    "crop_to_frames",
    "window_indices",
    "frame_windows",
]
