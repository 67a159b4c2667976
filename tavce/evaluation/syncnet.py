"""SyncNet (Chung & Zisserman 2016, syncnet_python's ``syncnet_v2.model``), the backbone of LSE-D / LSE-C.

The layers are syncnet_python's ``SyncNetModel.S`` in the same order, so the state-dict
keys (``netcnnaud.*``, ``netfcaud.*``, ``netcnnlip.*``, ``netfclip.*``) are the file's and
``syncnet_v2.model`` loads with ``torch.load(weights_only=True)`` (:func:`load_syncnet`).
Inputs as syncnet_python feeds them:

* video: 5 consecutive 224×224 face frames, **BGR**, values 0–255 (no normalisation), (B, 3, 5, 224, 224);
* audio: 20 steps (0.2 s) of 13 MFCCs from python_speech_features on int16-scaled samples, (B, 1, 13, 20).

:class:`SyncNet` takes tavce's conventions (RGB in [0, 1], waveform in [−1, 1]) and converts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule, load_state_dict_strict
from tavce.types import SAMPLE_RATE

__all__ = ["SYNCNET_WEIGHTS_FILENAME", "SyncNet", "SyncNetConfig", "load_syncnet", "syncnet_mfcc"]

SYNCNET_WEIGHTS_FILENAME = "syncnet_v2.model"
INT16_SCALE = 32768.0  # syncnet_python reads the audio with scipy's wavfile: int16 values, not [-1, 1]
_BGR = [2, 1, 0]


def syncnet_mfcc(samples: np.ndarray) -> torch.Tensor:
    """(13, M) float32 MFCCs of a 16 kHz waveform in [−1, 1], 100 steps per second, as syncnet_python computes them.

    python_speech_features' ``mfcc`` with its defaults (25 ms windows, 10 ms hop, 26 filters,
    512-point FFT, lifter 22, log energy as coefficient 0) on the samples scaled to int16 range.
    """
    from python_speech_features import mfcc

    features = mfcc(np.asarray(samples, dtype=np.float64) * INT16_SCALE, SAMPLE_RATE)
    return torch.from_numpy(np.ascontiguousarray(features.T)).float()


@dataclass(frozen=True)
class SyncNetConfig:
    """Layer widths; the defaults are syncnet_v2's (tests use narrower ones).

    Attributes:
        lip_channels: output channels of the six 3-D convolutions of the video stream.
        audio_channels: output channels of the six 2-D convolutions of the audio stream.
        hidden_dim: width of the hidden fully connected layer of both heads.
        embedding_dim: size of the embeddings compared by distance (1024).
    """

    lip_channels: tuple[int, ...] = (96, 256, 256, 256, 256, 512)
    audio_channels: tuple[int, ...] = (64, 192, 384, 256, 256, 512)
    hidden_dim: int = 512
    embedding_dim: int = 1024


class SyncNet(TavceModule):
    """Video and audio embeddings in one space: close when the lips match the sound.

    A :class:`~tavce.evaluation.sync.SyncEncoder`: ``encode_video`` (B, 3, 5, 224, 224) RGB
    in [0, 1] → (B, D); ``encode_audio`` (B, 1, 13, 20) MFCC windows → (B, D);
    ``audio_features`` a waveform → (13, M) MFCCs.
    """

    config_class = SyncNetConfig
    image_size = 224

    def __init__(self, config: SyncNetConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        if len(c.lip_channels) != 6 or len(c.audio_channels) != 6:
            raise InvalidArgumentError("SyncNetConfig: lip_channels and audio_channels need six widths each")
        a = c.audio_channels
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, a[0], kernel_size=3, stride=1, padding=1), nn.BatchNorm2d(a[0]), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=1, stride=1),
            nn.Conv2d(a[0], a[1], kernel_size=3, stride=1, padding=1), nn.BatchNorm2d(a[1]), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=(1, 2)),
            nn.Conv2d(a[1], a[2], kernel_size=3, padding=1), nn.BatchNorm2d(a[2]), nn.ReLU(inplace=True),
            nn.Conv2d(a[2], a[3], kernel_size=3, padding=1), nn.BatchNorm2d(a[3]), nn.ReLU(inplace=True),
            nn.Conv2d(a[3], a[4], kernel_size=3, padding=1), nn.BatchNorm2d(a[4]), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(a[4], a[5], kernel_size=(5, 4), padding=0), nn.BatchNorm2d(a[5]), nn.ReLU(),
        )  # fmt: skip
        self.netfcaud = self._head(a[5])
        self.netfclip = self._head(c.lip_channels[5])
        v = c.lip_channels
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, v[0], kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0), nn.BatchNorm3d(v[0]),
            nn.ReLU(inplace=True), nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(v[0], v[1], kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), nn.BatchNorm3d(v[1]),
            nn.ReLU(inplace=True), nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(v[1], v[2], kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[2]), nn.ReLU(inplace=True),
            nn.Conv3d(v[2], v[3], kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[3]), nn.ReLU(inplace=True),
            nn.Conv3d(v[3], v[4], kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(v[4]), nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(v[4], v[5], kernel_size=(1, 6, 6), padding=0), nn.BatchNorm3d(v[5]), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.eval()

    def _head(self, channels: int) -> nn.Sequential:
        c = self.config
        return nn.Sequential(
            nn.Linear(channels, c.hidden_dim), nn.BatchNorm1d(c.hidden_dim), nn.ReLU(),
            nn.Linear(c.hidden_dim, c.embedding_dim),
        )  # fmt: skip

    def audio_features(self, samples: np.ndarray) -> torch.Tensor:
        return syncnet_mfcc(samples)

    def encode_audio(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.ndim != 4 or windows.shape[1] != 1:
            raise InvalidArgumentError(
                f"SyncNet.encode_audio: windows must be (B, 1, 13, 20), got {tuple(windows.shape)}"
            )
        return self.netfcaud(self.netcnnaud(windows).flatten(1))

    def encode_video(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.ndim != 5 or windows.shape[1] != 3 or windows.shape[-2:] != (self.image_size, self.image_size):
            raise InvalidArgumentError(
                f"SyncNet.encode_video: windows must be (B, 3, 5, 224, 224) RGB in [0, 1], got {tuple(windows.shape)}"
            )
        bgr_255 = windows[:, _BGR] * 255.0  # syncnet_python feeds cv2's BGR frames as 0-255 floats
        return self.netfclip(self.netcnnlip(bgr_255).flatten(1))


def load_syncnet(path: str | Path, config: SyncNetConfig | None = None) -> SyncNet:
    """SyncNet from syncnet_python's ``syncnet_v2.model`` (or a safetensors file with its keys); eval mode.

    Raises:
        WeightsNotFoundError: no such file. IncompatibleWeightsError: unsafe pickle, other keys or shapes.
    """
    from tavce.hub import load_legacy_checkpoint, load_safetensors

    path = Path(path).expanduser()
    state = load_safetensors(path) if path.suffix == ".safetensors" else load_legacy_checkpoint(path)
    model = SyncNet(config)
    for key, value in model.state_dict().items():  # 2018 files predate BatchNorm's batch counter
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    load_state_dict_strict(model, state, source=f"{path} (SyncNet, syncnet_python layout)")
    return model.eval()


def pairwise_distance(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """syncnet_python's distance: ‖v − a + 1e-6‖₂ per row (``F.pairwise_distance``)."""
    return F.pairwise_distance(video, audio)
