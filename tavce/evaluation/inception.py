"""The Inception-v3 of FID (TensorFlow's 2015-12-05 graph, as ported by pytorch-fid), without torchvision.

pytorch-fid (the maintained port everyone's FID numbers come from) builds its network
from ``torchvision.models.inception_v3`` and patches four block types; torchvision does
not import beside every torch build, so the same network is written out here. Module
and parameter names are torchvision's, so pytorch-fid's weights file
``pt_inception-2015-12-05-6726825d.pth`` (https://github.com/mseitzer/pytorch-fid/releases)
loads as is (:func:`load_fid_inception`). The FID-specific patches are kept:

* the average-pool branches of blocks A, C and E_1 exclude the zero padding
  (``count_include_pad=False``, TensorFlow's behaviour);
* the last block (``Mixed_7c``, pytorch-fid's ``FIDInceptionE_2``) pools its branch
  with a max pool instead of an average pool;
* the classifier has 1008 classes (kept only so the file loads; FID uses the pool features).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule, load_state_dict_strict

__all__ = ["FID_WEIGHTS_FILENAME", "FIDInceptionConfig", "FIDInceptionV3", "load_fid_inception"]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
BN_EPS = 0.001  # torchvision's BasicConv2d (TensorFlow's value)


class BasicConv2d(nn.Module):
    """conv (no bias) → BatchNorm(eps 0.001) → ReLU, named ``conv`` / ``bn`` as in torchvision."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _tf_average_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool ignores the padded zeros (pytorch-fid's patch).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_tf_average_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_tf_average_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """Block E; ``max_pool_branch`` is pytorch-fid's ``FIDInceptionE_2`` patch (last block)."""

    def __init__(self, in_channels: int, *, max_pool_branch: bool = False) -> None:
        super().__init__()
        self.max_pool_branch = max_pool_branch
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.max_pool_branch:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_average_pool(x)
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)


@dataclass(frozen=True)
class FIDInceptionConfig:
    """input_size: frames are resized (bilinear, align_corners=False, as pytorch-fid) to this square
    side before the network; 299 for FID values comparable with published ones. num_classes: the
    size of the (unused) classifier stored in the weights file."""

    input_size: int = 299
    num_classes: int = 1008


class FIDInceptionV3(TavceModule):
    """Pool features of FID's Inception-v3: (B, 3, H, W) RGB in [0, 1] → (B, 2048).

    A :class:`~tavce.evaluation.fid.FeatureExtractor`. Frames are resized to
    ``config.input_size`` and scaled to [−1, 1] inside, as pytorch-fid's ``InceptionV3``
    with ``resize_input=True, normalize_input=True`` and output block 3.
    """

    config_class = FIDInceptionConfig
    feature_dim = FEATURE_DIM

    def __init__(self, config: FIDInceptionConfig | None = None) -> None:
        super().__init__(config)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool_branch=True)
        self.fc = nn.Linear(FEATURE_DIM, self.config.num_classes)  # in the weights file; FID does not use it
        self.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise InvalidArgumentError(
                f"FIDInceptionV3: frames must be (B, 3, H, W) RGB in [0, 1], got {tuple(frames.shape)}"
            )
        size = self.config.input_size
        x = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):  # fmt: skip
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def load_fid_inception(path: str | Path, config: FIDInceptionConfig | None = None) -> FIDInceptionV3:
    """FID's Inception from pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (or a safetensors
    file with the same keys), read with ``torch.load(weights_only=True)``; eval mode.

    Raises:
        WeightsNotFoundError: no such file. IncompatibleWeightsError: other keys or shapes.
    """
    from tavce.hub import load_legacy_checkpoint, load_safetensors

    path = Path(path).expanduser()
    state = load_safetensors(path) if path.suffix == ".safetensors" else load_legacy_checkpoint(path)
    model = FIDInceptionV3(config)
    # Files saved before BatchNorm counted its batches lack num_batches_tracked, which inference never reads.
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    load_state_dict_strict(model, state, source=f"{path} (FID Inception-v3, pytorch-fid layout)")
    return model.eval()
