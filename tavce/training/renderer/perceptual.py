"""The VGG19 perceptual loss over an image pyramid (as face-vid2vid computes it; the TAVCE code does not show it).

L_perc = Σ_scales Σ_layers w_l · mean|φ_l(pyramid_s(prediction)) − φ_l(pyramid_s(driving))|,

φ_l the VGG19 activations relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (torchvision's
``vgg19().features`` split at 2, 7, 12, 21, 30) of ImageNet-normalised images, scales
1, ½, ¼, ⅛ made by Gaussian anti-aliased subsampling (σ = (1/s − 1)/2, the keypoint
detector's :class:`~tavce.models.renderer.keypoint_detector.AntiAliasDownsample`), w_l = 10.

:class:`VGG19Features` is built by the stage-1 module's :func:`~tavce.training.perceptual.vgg_feature_layers`
(torchvision is not a dependency) with
torchvision's parameter names, ``features.<index>.weight``, so the ImageNet weights a
user already has (``vgg19-dcbb9e9d.pth``, or a safetensors copy) load through
:func:`load_vgg19_weights`, which never unpickles code (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, InvalidImageError
from tavce.models.base import load_state_dict_strict
from tavce.models.renderer.keypoint_detector import AntiAliasDownsample
from tavce.training.perceptual import FrozenFeatureNetwork, read_feature_weights, vgg_feature_layers

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImagePyramid",
    "PerceptualPyramidLoss",
    "VGG19Config",
    "VGG19Features",
    "load_vgg19_weights",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Convolutions per block of VGG19 (torchvision configuration "E"); a max-pool follows each block.
_CONVS_PER_BLOCK = (2, 2, 4, 4, 4)


@dataclass(frozen=True)
class VGG19Config:
    """Widths of the five VGG19 blocks; the defaults are torchvision's (smaller ones for tests)."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)

    def __post_init__(self) -> None:
        if len(self.widths) != 5 or any(w < 1 for w in self.widths):
            raise InvalidArgumentError(f"VGG19Config.widths={self.widths!r}: five positive block widths")


class VGG19Features(FrozenFeatureNetwork):
    """torchvision's ``vgg19().features`` (same layer indices and state-dict keys), frozen, returning 5 activations.

    Input (B, 3, H, W) RGB in [0, 1] (normalised here with the ImageNet mean / std, as the
    original); output the list of relu1_1 … relu5_1 activations, (B, 64, H, W),
    (B, 128, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8), (B, 512, H/16, W/16) at
    torchvision's widths. Layers after relu5_1 exist only so that the weights file loads strictly.
    """

    def __init__(self, config: VGG19Config = VGG19Config()) -> None:
        super().__init__()
        self.config = config
        self.features, relus = vgg_feature_layers(config.widths, _CONVS_PER_BLOCK, pool_after_last=True)
        # End (exclusive) of each slice in ``features``: relu1_1 … relu5_1 (2, 7, 12, 21, 30 in torchvision).
        self.slice_ends = tuple(block[0] + 1 for block in relus)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3:
            raise InvalidImageError(f"VGG19Features: expected (B, 3, H, W) in [0, 1], got {tuple(image.shape)}")
        hidden = (image - self.mean) / self.std
        activations = []
        start = 0
        for end in self.slice_ends:
            for layer in self.features[start:end]:
                hidden = layer(hidden)
            activations.append(hidden)
            start = end
        return activations


def load_vgg19_weights(path: str | Path, config: VGG19Config = VGG19Config()) -> VGG19Features:
    """A :class:`VGG19Features` with torchvision's ImageNet weights from ``path``.

    Args:
        path: torchvision's ``vgg19-dcbb9e9d.pth`` (a whole ``vgg19`` state dict; the
            ``classifier.*`` entries are ignored) or a ``.safetensors`` file with the
            ``features.*`` tensors. Pickles are read with ``weights_only=True``.

    Raises:
        WeightsNotFoundError: no such file.
        IncompatibleWeightsError: unsafe / corrupt file, or not VGG19 ``features`` weights.
    """
    path = Path(path)
    state = read_feature_weights(path)
    features = {key: value for key, value in state.items() if key.startswith("features.")}
    if not features:
        raise IncompatibleWeightsError(
            f"{path}: no 'features.*' tensors; pass torchvision's vgg19 ImageNet weights (vgg19-dcbb9e9d.pth)"
        )
    network = VGG19Features(config)
    load_state_dict_strict(network, features, source=str(path))
    return network.eval()


class ImagePyramid(nn.Module):
    """(B, C, H, W) → ``{scale: image at that scale}``: identity at 1, anti-aliased subsampling below.

    Scales must be 1/n for integers n (1, ½, ¼, ⅛ …).
    """

    def __init__(self, scales: Sequence[float], channels: int = 3) -> None:
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        self.downsamplers = nn.ModuleList(
            nn.Identity() if scale == 1 else AntiAliasDownsample(channels, scale, persistent=False)
            for scale in self.scales
        )

    def forward(self, image: torch.Tensor) -> dict[float, torch.Tensor]:
        return {scale: downsample(image) for scale, downsample in zip(self.scales, self.downsamplers)}


class PerceptualPyramidLoss(nn.Module):
    """Weighted L1 between VGG19 activations of two images, summed over a pyramid (scalar ≥ 0).

    Args:
        network: a frozen feature network returning one activation per weight (:class:`VGG19Features`).
        layer_weights: one weight per activation ([10] × 5).
        scales: pyramid scales ((1, ½, ¼, ⅛)).

    Call with prediction and target, both (B, 3, H, W) in [0, 1]; the target side gets no gradient.
    """

    def __init__(self, network: nn.Module, layer_weights: Sequence[float], scales: Sequence[float]) -> None:
        super().__init__()
        self.network = network
        self.layer_weights = tuple(layer_weights)
        self.pyramid = ImagePyramid(scales)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape:
            raise InvalidImageError(
                f"perceptual loss: prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
            )
        predicted, real = self.pyramid(prediction), self.pyramid(target)
        total = prediction.new_zeros(())
        for scale in self.pyramid.scales:
            predicted_features = self.network(predicted[scale])
            with torch.no_grad():
                real_features = self.network(real[scale])
            if not isinstance(predicted_features, (list, tuple)) or len(predicted_features) != len(self.layer_weights):
                raise InvalidArgumentError(
                    f"perceptual loss: the feature network must return a list of {len(self.layer_weights)} "
                    "activations (one per layer weight), like VGG19Features"
                )
            for weight, fake, true in zip(self.layer_weights, predicted_features, real_features):
                if weight:
                    total = total + weight * F.l1_loss(fake, true)
        return total
