"""LPIPS-style perceptual distance over a VGG-like backbone whose weights come from a file.

The original stage-1 trainer uses the ``lpips`` package's VGG variant.
This module computes the same distance (Zhang et al.
2018): both images are shifted and scaled by LPIPS's constants, passed through a
VGG16-style stack, and at the output of each stage (relu1_2, relu2_2, relu3_3,
relu4_3, relu5_3) the features are unit-normalised over channels; the squared
difference is weighted per channel by a non-negative 1×1 layer, averaged over
space and summed over stages.

No weights are downloaded. :func:`load_perceptual_distance` reads one file (safetensors,
or a ``.pth`` read with ``weights_only=True``) holding either

* the ``lpips`` package's own state dict — ``torch.save(lpips.LPIPS(net="vgg").state_dict(), path)``
  — with keys ``net.slice<k>.<n>.weight`` and ``lin<k>.model.1.weight``; or
* this module's names: ``features.<n>.weight/bias`` (torchvision's ``vgg16().features``
  numbering) and ``linear.<k>.weight``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.models.base import load_state_dict_strict

__all__ = [
    "FrozenFeatureNetwork",
    "PerceptualDistance",
    "PerceptualDistanceConfig",
    "load_perceptual_distance",
    "read_feature_weights",
    "vgg_feature_layers",
]

# LPIPS's ScalingLayer: inputs in [−1, 1] are mapped to roughly ImageNet-normalised values.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
NORMALISE_EPS = 1e-10  # as lpips.normalize_tensor


@dataclass(frozen=True)
class PerceptualDistanceConfig:
    """Backbone sizes; the defaults are VGG16's (what the ``lpips`` VGG weights fit).

    Attributes:
        stage_channels: output channels of each stage (a 2×2 max-pool precedes every stage but the first).
        convs_per_stage: 3×3 conv + ReLU layers in each stage.
    """

    stage_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    convs_per_stage: tuple[int, ...] = (2, 2, 3, 3, 3)

    def __post_init__(self) -> None:
        if len(self.stage_channels) != len(self.convs_per_stage) or not self.stage_channels:
            raise InvalidArgumentError("PerceptualDistanceConfig: stage_channels and convs_per_stage differ in length")


def vgg_feature_layers(
    stage_channels: Sequence[int], convs_per_stage: Sequence[int], *, pool_after_last: bool
) -> tuple[nn.Sequential, list[list[int]]]:
    """A VGG ``features`` stack numbered as torchvision's (so its weight files load by name).

    Each stage is ``convs`` × (3×3 conv + ReLU) at ``channels``, stages separated by a 2×2
    max-pool (and one after the last stage when ``pool_after_last``, as torchvision's
    ``vgg19().features``). Returns the stack and, per stage, the indices of its ReLUs in it.
    """
    layers: list[nn.Module] = []
    relus: list[list[int]] = []
    in_channels = 3
    for stage, (channels, convs) in enumerate(zip(stage_channels, convs_per_stage)):
        if stage > 0:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        relus.append([])
        for _ in range(convs):
            layers += [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU()]
            relus[-1].append(len(layers) - 1)
            in_channels = channels
    if pool_after_last:
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers), relus


class FrozenFeatureNetwork(nn.Module):
    """Base of the fixed networks the losses measure with: no parameter trains, always in eval mode.

    Gradients still flow to the inputs. Subclasses call :meth:`freeze` at the end of ``__init__``.
    """

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenFeatureNetwork:
        """Always in eval mode (a fixed measure, whatever the trainer sets)."""
        return super().train(False)


def read_feature_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: safetensors, or a pickle read with ``weights_only=True`` (no code runs).

    Raises:
        WeightsNotFoundError: no such file.
        IncompatibleWeightsError: unreadable or unsafe.
    """
    from tavce.hub import load_legacy_checkpoint, load_safetensors

    path = Path(path)
    state = load_safetensors(path) if path.suffix == ".safetensors" else load_legacy_checkpoint(path)
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


class PerceptualDistance(FrozenFeatureNetwork):
    """LPIPS distance: images (B, 3, H, W) in [−1, 1] -> (B,) distances (0 for equal images).

    Frozen: every parameter has ``requires_grad=False``; gradients still flow to the inputs.
    """

    def __init__(self, config: PerceptualDistanceConfig | None = None) -> None:
        super().__init__()
        self.config = config or PerceptualDistanceConfig()
        self.features, relus = vgg_feature_layers(
            self.config.stage_channels, self.config.convs_per_stage, pool_after_last=False
        )
        self.taps = [stage[-1] for stage in relus]  # index in ``features`` of each stage's last ReLU
        self.linear = nn.ModuleList(nn.Conv2d(channels, 1, 1, bias=False) for channels in self.config.stage_channels)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def _stage_outputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs, features = [], (images - self.shift) / self.scale
        taps = set(self.taps)
        for index, layer in enumerate(self.features):
            features = layer(features)
            if index in taps:
                outputs.append(features)
        return outputs

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if images.shape != targets.shape or images.ndim != 4 or images.shape[1] != 3:
            raise InvalidArgumentError(
                f"PerceptualDistance: expected two (B, 3, H, W) images of one shape, got {tuple(images.shape)} and "
                f"{tuple(targets.shape)}"
            )
        batch = images.shape[0]
        stages = self._stage_outputs(torch.cat([images, targets], dim=0))
        distance = images.new_zeros(batch, dtype=torch.float32)
        for features, linear in zip(stages, self.linear):
            # float32 under autocast: the 1e-10 of an all-zero ReLU location underflows to 0 in float16 (0/0).
            features = features.float()
            unit = features / (features.square().sum(dim=1, keepdim=True).sqrt() + NORMALISE_EPS)
            difference = (unit[:batch] - unit[batch:]).square()
            distance = distance + linear(difference).mean(dim=(1, 2, 3))
        return distance


_LPIPS_RULES = (
    (re.compile(r"net\.slice\d+\.(\d+)\.(weight|bias)"), r"features.\1.\2"),
    (re.compile(r"lin(\d+)\.model\.1\.weight"), r"linear.\1.weight"),
)
_LPIPS_CONSTANTS = re.compile(r"scaling_layer\.(shift|scale)")


def _to_own_names(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, tensor in state_dict.items():
        if _LPIPS_CONSTANTS.fullmatch(key):
            continue  # the same constants as LPIPS_SHIFT / LPIPS_SCALE
        for pattern, replacement in _LPIPS_RULES:
            if pattern.fullmatch(key):
                key = pattern.sub(replacement, key)
                break
        if key in renamed:
            raise IncompatibleWeightsError(f"{source}: two entries map to {key}; the file mixes two layouts")
        renamed[key] = tensor
    return renamed


def load_perceptual_distance(path: str | Path, config: PerceptualDistanceConfig | None = None) -> PerceptualDistance:
    """A :class:`PerceptualDistance` with every weight from ``path`` (strict: no key may be missing).

    Raises:
        WeightsNotFoundError: no such file.
        IncompatibleWeightsError: unreadable, unsafe, or keys / shapes that do not fit ``config``.
    """
    path = Path(path)
    state = read_feature_weights(path)
    distance = PerceptualDistance(config)
    load_state_dict_strict(distance, _to_own_names(state, str(path)), source=f"{path} (LPIPS weights)")
    return distance
