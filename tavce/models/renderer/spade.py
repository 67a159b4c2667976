"""SPADE decoder of the face renderer.

The warped, occlusion-masked feature S (256 channels at a quarter of the image
size) is both the decoder input and the "segmentation map" every SPADE layer is
conditioned on. Spectral normalisation of the residual convs exists only for
training (``spectral_norm=True``); inference networks hold folded plain weights
(see spectral.py).

Exact work reductions (fast_conv.py; the parameters and their names are unchanged,
merged weights are derived and cached):

* every SPADE layer of the middle blocks reads S itself: their shared-MLP convs are one
  conv with 128·n outputs (the separate convs' parameters become slices of its weights, so
  the weights stay one copy);
* up blocks see S nearest-upsampled ×2 / ×4: each layer's shared conv runs on S itself in
  polyphase form (2.25× fewer multiply-adds), never on the upsampled copy;
* a block with a learned shortcut normalises its input once for both SPADE layers, and
  folds its bias-free 1×1 shortcut conv into the shortcut SPADE's β conv (linear maps
  compose), which then has f_out instead of f_in outputs;
* an up block normalises its input before the nearest upsampling (the instance statistics
  are the same), so the upsampled input itself is never built.

Memory: at 256² one 256-channel map is 64 MiB in float32 (256 MiB at 512²), and the last up
block set the render peak. So while rendering, an up block makes its input-wide maps (the
normalised, modulated and activated input at the output size) a band of rows at a time,
each band consumed by the shortcut and first convs at once (bands.py: the same frames, bit
for bit here; 8 MiB bands); the γ and β convs write separate maps, modulated in place
(a merged γ/β conv would hold both at once), each up-block layer computes its hidden map
where it is used, and activations are applied in place.

In half precision the decoder keeps its activations channels-last (oneDNN's fast
bfloat16 convolutions read and write that layout without reorders) and computes the
last conv and the sigmoid in float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from tavce.models.renderer.bands import RowSource, band_bounds, conv3x3_rows, mul_nearest_rows_
from tavce.models.renderer.fast_conv import (
    DerivedWeights,
    clear_derived,
    concatenated_conv,
    conv3x3_of_nearest_upsampled,
    merged_parameters,
    polyphase_weights,
    reductions_enabled,
)
from tavce.models.renderer.precision import (
    Float32Conv2d,
    contiguous_state_dict,
    hold_conv_weights_in,
    preferred_memory_format,
)
from tavce.models.renderer.spectral import maybe_spectral

__all__ = [
    "LEAKY_SLOPE",
    "nearest_scale",
    "instance_norm",
    "shared_hidden",
    "SPADE",
    "SPADEResBlock",
    "SPADEDecoderConfig",
    "SPADEDecoder",
]

LEAKY_SLOPE = 0.2


def nearest_scale(low: Sequence[int], high: Sequence[int]) -> int | None:
    """The common power-of-two factor s with high = s·low on every axis, or None.

    Powers of two only: for them ``F.interpolate(mode='nearest')`` picks source index ⌊i/s⌋
    exactly (its float scale 1/s is exact), which the polyphase form assumes.
    """
    ratios = {h // l if l and h % l == 0 else 0 for l, h in zip(low, high)}
    if len(ratios) != 1:
        return None
    scale = ratios.pop()
    return scale if scale >= 1 and scale & (scale - 1) == 0 else None


def instance_norm(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Parameter-free InstanceNorm2d as a group norm with one channel per group.

    The same statistics (biased variance over H, W per sample and channel, same eps);
    unlike ``F.instance_norm`` it keeps a channels-last input channels-last and has fast
    CPU kernels for it (statistics accumulated in float32 for half types).
    """
    return F.group_norm(features, features.shape[1], eps=eps)


def shared_hidden(
    condition: torch.Tensor, parameters: Sequence[torch.Tensor | None], size: Sequence[int], folded: bool
) -> torch.Tensor:
    """ReLU(conv3x3(nearest-resize(condition, size))) with (possibly merged) shared-MLP weights.

    ``parameters``: (weight, bias), or with ``folded`` the :func:`polyphase_weights` for the
    power-of-two scale from ``condition`` to ``size`` (the conv then runs at the condition's
    resolution).
    """
    if folded:
        scale = cast(int, nearest_scale(condition.shape[2:], size))
        return conv3x3_of_nearest_upsampled(condition, cast(Sequence[torch.Tensor], parameters), (scale, scale), relu=True)
    if tuple(condition.shape[2:]) != tuple(size):
        condition = F.interpolate(condition, size=tuple(size), mode="nearest")
    weight, bias = parameters
    return F.relu(concatenated_conv(condition, cast(torch.Tensor, weight), bias, padding=1))


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: InstanceNorm(x)·(1 + γ(S)) + β(S).

    γ and β come from a shared 3x3 conv + ReLU on S resized (nearest) to x's size.
    """

    def __init__(self, channels: int, condition_channels: int, hidden_channels: int = 128) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(condition_channels, hidden_channels, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden_channels, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden_channels, channels, 3, padding=1)
        self._derived = DerivedWeights()
        self.register_load_state_dict_post_hook(clear_derived)

    @property
    def shared_conv(self) -> nn.Conv2d:
        return cast(nn.Conv2d, self.shared[0])

    def hidden(self, condition: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """(B, hidden, *size): the shared MLP on the condition resized (nearest) to ``size``."""
        conv = self.shared_conv
        scale = nearest_scale(condition.shape[2:], size)
        if scale is not None and scale > 1:
            sources = (conv.weight, conv.bias)
            parameters = self._derived.get(
                f"shared_x{scale}", sources, lambda: polyphase_weights(conv.weight, conv.bias, (scale, scale))
            )
            return shared_hidden(condition, parameters, size, folded=True)
        return shared_hidden(condition, (conv.weight, conv.bias), size, folded=False)

    def modulate(self, normalized: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """normalized·(1 + γ(hidden)) + β(hidden) for normalized (B, C, H, W) = InstanceNorm(x), hidden (B, 128, H, W)."""
        return self.shift(self.scale(normalized, hidden), hidden)

    def scale(self, normalized: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """normalized·(1 + γ(hidden)), computed in γ's own map (the plain form's operations, in place)."""
        return concatenated_conv(hidden, self.gamma.weight, self.gamma.bias, padding=1).add_(1).mul_(normalized)

    def shift(self, scaled: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """``scaled`` + β(hidden), in place: once :meth:`scale` has run, ``normalized`` may be freed before β exists."""
        return scaled.add_(concatenated_conv(hidden, self.beta.weight, self.beta.bias, padding=1))

    def modulated_rows(
        self,
        normalized: torch.Tensor,
        upsample: int,
        hidden: RowSource,
        start: int,
        stop: int,
        height: int,
        *,
        shift: bool = True,
    ) -> torch.Tensor:
        """Rows [start, stop) of up(normalized)·(1 + γ(hidden)), + β(hidden) with ``shift`` (bands.py).

        ``normalized`` is the (B, C, height / upsample, W / upsample) normalised input, up(·) its
        nearest upsampling ×``upsample`` (never made: bands.mul_nearest_rows_); ``hidden(a, b)``
        gives rows [a, b) of the (B, 128, height, W) hidden map. Returns (B, C, stop − start, W).
        """
        gamma = conv3x3_rows(hidden, self.gamma.weight, self.gamma.bias, start, stop, height)
        scaled = mul_nearest_rows_(gamma.add_(1), normalized, upsample, start)
        if shift:
            scaled.add_(conv3x3_rows(hidden, self.beta.weight, self.beta.bias, start, stop, height))
        return scaled

    def plain_forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The textbook computation (reference for the reduced one, :func:`exact_reductions`)."""
        hidden = self.shared(F.interpolate(condition, size=features.shape[2:], mode="nearest"))
        return self.norm(features) * (1 + self.gamma(hidden)) + self.beta(hidden)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) features, (B, condition_channels, h, w) condition → (B, C, H, W)."""
        if not reductions_enabled():
            return self.plain_forward(features, condition)
        return self.modulate(instance_norm(features, self.norm.eps), self.hidden(condition, features.shape[2:]))


class SPADEResBlock(nn.Module):
    """SPADE residual block f_in → f_out with f_mid = min(f_in, f_out).

    main = conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x)))))), shortcut = x, or
    conv_shortcut(norm_shortcut(x)) (1x1, no bias) when the channel count changes.
    """

    def __init__(
        self, in_channels: int, out_channels: int, condition_channels: int, spectral_norm: bool, spade_hidden: int = 128
    ) -> None:
        super().__init__()
        middle = min(in_channels, out_channels)
        self.norm_0 = SPADE(in_channels, condition_channels, spade_hidden)
        self.conv_0 = maybe_spectral(nn.Conv2d(in_channels, middle, 3, padding=1), spectral_norm)
        self.norm_1 = SPADE(middle, condition_channels, spade_hidden)
        self.conv_1 = maybe_spectral(nn.Conv2d(middle, out_channels, 3, padding=1), spectral_norm)
        self.learned_shortcut = in_channels != out_channels
        if self.learned_shortcut:
            self.norm_shortcut = SPADE(in_channels, condition_channels, spade_hidden)
            self.conv_shortcut = maybe_spectral(nn.Conv2d(in_channels, out_channels, 1, bias=False), spectral_norm)

    def spade_layers(self) -> dict[str, SPADE]:
        """The block's SPADE layers by attribute name, in the order their hidden maps are merged."""
        names = ("norm_0", "norm_1") + (("norm_shortcut",) if self.learned_shortcut else ())
        return {name: getattr(self, name) for name in names}

    def shortcut_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """conv_shortcut ∘ (the shortcut SPADE's β conv) as one conv, derived and cached.

        conv_shortcut is a bias-free 1×1 conv, hence linear: conv_shortcut(n·(1+γ) + β) =
        conv_shortcut(n·(1+γ)) + (W_sc·W_β) ⋆ hidden + W_sc·b_β. The composed β conv has f_out
        instead of f_in output channels (256→64 and 512→256 in the up blocks). Returns its
        weight (f_out, hidden, 3, 3) and bias, composed in float64.
        """
        layer, conv = self.norm_shortcut, cast(nn.Conv2d, self.conv_shortcut)
        beta_bias = cast(torch.Tensor, layer.beta.bias)
        sources = (layer.beta.weight, beta_bias, conv.weight)

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            projection = conv.weight[:, :, 0, 0].to(torch.float64)
            composed_weight = torch.einsum("oc,chij->ohij", projection, layer.beta.weight.to(torch.float64))
            composed_bias = projection @ beta_bias.to(torch.float64)
            dtype = layer.beta.weight.dtype
            return composed_weight.to(dtype), composed_bias.to(dtype)

        return layer._derived.get("shortcut", sources, build)

    def _learned_shortcut(self, normalized: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """conv_shortcut(norm_shortcut(x)) from InstanceNorm(x) and the shortcut SPADE's hidden map."""
        shortcut = self.conv_shortcut(self.norm_shortcut.scale(normalized, hidden))
        weight, bias = self.shortcut_parameters()
        return shortcut.add_(concatenated_conv(hidden, weight, bias, padding=1))

    def _up_bands(self, features: torch.Tensor, upsample: int) -> list[tuple[int, int]] | None:
        """The row bands of an up block computed band by band (bands.py), or None to compute it whole.

        Banded: inference (no autograd), a learned shortcut, plain conv weights (not spectral), and
        an f_in-channel map at the output size larger than one band.
        """
        if upsample == 1 or not self.learned_shortcut or torch.is_grad_enabled():
            return None
        if any(hasattr(conv, "weight_orig") for conv in (self.conv_0, self.conv_shortcut)):
            return None
        batch, channels, height, width = features.shape
        bounds = band_bounds(height * upsample, batch * channels * width * upsample * features.element_size())
        return bounds if len(bounds) > 1 else None

    def _banded_up(
        self, features: torch.Tensor, condition: torch.Tensor, upsample: int, bounds: Sequence[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(shortcut, conv_0's output) of an up block, its f_in-channel maps at the output size made a band at a time."""
        normalized = instance_norm(features, self.norm_0.norm.eps)
        batch, size = features.shape[0], (features.shape[2] * upsample, features.shape[3] * upsample)
        height = size[0]

        def output(channels: int) -> torch.Tensor:
            return torch.empty(
                (batch, channels, *size), dtype=features.dtype, device=features.device,
                memory_format=preferred_memory_format(features),
            )

        conv_shortcut, conv_0 = cast(nn.Conv2d, self.conv_shortcut), cast(nn.Conv2d, self.conv_0)
        hidden = self.norm_shortcut.hidden(condition, size)

        def hidden_rows(start: int, stop: int) -> torch.Tensor:
            return hidden[:, :, start:stop]

        composed_weight, composed_bias = self.shortcut_parameters()
        shortcut = output(conv_shortcut.weight.shape[0])
        for start, stop in bounds:
            scaled = self.norm_shortcut.modulated_rows(normalized, upsample, hidden_rows, start, stop, height, shift=False)
            band = conv_shortcut(scaled).add_(conv3x3_rows(hidden_rows, composed_weight, composed_bias, start, stop, height))
            shortcut[:, :, start:stop] = band
        del hidden  # the shortcut layer's hidden map, freed before norm_0's exists
        hidden = self.norm_0.hidden(condition, size)

        def activated(start: int, stop: int) -> torch.Tensor:
            modulated = self.norm_0.modulated_rows(normalized, upsample, hidden_rows, start, stop, height)
            return F.leaky_relu(modulated, LEAKY_SLOPE, inplace=True)

        main = output(conv_0.weight.shape[0])
        for start, stop in bounds:
            main[:, :, start:stop] = conv3x3_rows(activated, conv_0.weight, conv_0.bias, start, stop, height)
        return shortcut, main

    def forward(
        self,
        features: torch.Tensor,
        condition: torch.Tensor,
        hidden: Mapping[str, torch.Tensor] | None = None,
        upsample: int = 1,
    ) -> torch.Tensor:
        """(B, f_in, H, W), condition (B, c, h, w) → (B, f_out, H·upsample, W·upsample).

        ``hidden``: the shared-MLP outputs of the SPADE layers (by name, (B, 128, H, W)) when the
        caller computed them together (:class:`SPADEDecoder`); otherwise each layer computes its own.
        ``upsample``: the block's input is ``features`` nearest-upsampled by this factor (an up
        stage of the decoder). The reduced computation normalises ``features`` before upsampling
        (an instance's mean and variance are those of its nearest-upsampled copy), so the
        upsampled input itself is never built when the block has a learned shortcut.
        """
        if not reductions_enabled():
            if upsample > 1:
                features = F.interpolate(features, scale_factor=upsample, mode="nearest")
            shortcut = features
            if self.learned_shortcut:
                shortcut = self.conv_shortcut(self.norm_shortcut(features, condition))
            hidden_features = self.conv_0(F.leaky_relu(self.norm_0(features, condition), LEAKY_SLOPE))
            hidden_features = self.conv_1(F.leaky_relu(self.norm_1(hidden_features, condition), LEAKY_SLOPE))
            return shortcut + hidden_features

        def activated(name: str, normalized: list[torch.Tensor]) -> torch.Tensor:
            # LeakyReLU(SPADE(x)) from [InstanceNorm(x)]: the list is emptied, so the normalized
            # map is freed once scaled, before β's map exists (at 256² a 256-channel map is
            # 64 MiB in float32, and the last up block sets the render peak).
            layer = getattr(self, name)
            size = normalized[0].shape[2:]
            layer_hidden = hidden[name] if hidden is not None else layer.hidden(condition, size)
            scaled = layer.scale(normalized.pop(), layer_hidden)
            return F.leaky_relu(layer.shift(scaled, layer_hidden), LEAKY_SLOPE, inplace=True)

        bounds = None if hidden is not None else self._up_bands(features, upsample)
        if bounds is not None:
            shortcut, hidden_features = self._banded_up(features, condition, upsample, bounds)
        else:
            # norm_0 and norm_shortcut are the same parameter-free InstanceNorm of the same input.
            normalized = instance_norm(features, self.norm_0.norm.eps)
            shortcut = features
            if upsample > 1:
                normalized = F.interpolate(normalized, scale_factor=upsample, mode="nearest")
                if not self.learned_shortcut:
                    shortcut = F.interpolate(features, scale_factor=upsample, mode="nearest")
            if self.learned_shortcut:
                layer_hidden = (
                    hidden["norm_shortcut"] if hidden is not None else self.norm_shortcut.hidden(condition, normalized.shape[2:])
                )
                if hasattr(self.conv_shortcut, "weight_orig"):
                    # Spectral norm (training) recomputes the weight in the conv's own forward hook:
                    # nothing to fold before that call.
                    shortcut = self.conv_shortcut(self.norm_shortcut.modulate(normalized, layer_hidden))
                else:
                    shortcut = self._learned_shortcut(normalized, layer_hidden)
                del layer_hidden
            pending = [normalized]
            del normalized
            hidden_features = self.conv_0(activated("norm_0", pending))
        pending = [instance_norm(hidden_features, self.norm_1.norm.eps)]
        del hidden_features
        return self.conv_1(activated("norm_1", pending)).add_(shortcut)


@dataclass(frozen=True)
class SPADEDecoderConfig:
    """Decoder sizes (official: 256-channel input, 512 wide, 6 middle blocks, 512→256→64 up)."""

    input_channels: int = 256
    hidden_channels: int = 512
    num_middle_blocks: int = 6
    up_channels: tuple[int, ...] = (256, 64)
    image_channels: int = 3
    spectral_norm: bool = False
    spade_hidden_channels: int = 128


class SPADEDecoder(nn.Module):
    """S (B, 256, h, w) → image (B, 3, 4h, 4w) in (0, 1).

    input_conv 3x3 → middle SPADE blocks → (nearest ×2, SPADE block) per up stage →
    LeakyReLU(0.2) → output_conv 3x3 → sigmoid.
    """

    def __init__(self, config: SPADEDecoderConfig) -> None:
        super().__init__()
        self.config = config
        condition = config.input_channels
        self.input_conv = nn.Conv2d(config.input_channels, config.hidden_channels, 3, padding=1)
        self.middle_blocks = nn.ModuleList(
            SPADEResBlock(
                config.hidden_channels, config.hidden_channels, condition, config.spectral_norm, config.spade_hidden_channels
            )
            for _ in range(config.num_middle_blocks)
        )
        channels = (config.hidden_channels, *config.up_channels)
        self.up_blocks = nn.ModuleList(
            SPADEResBlock(channels[i], channels[i + 1], condition, config.spectral_norm, config.spade_hidden_channels)
            for i in range(len(config.up_channels))
        )
        # Float32 whatever the decoder's dtype: 64→3 channels is cheap, and the sigmoid's input
        # keeps its precision (the image is the output everyone compares).
        self.output_conv = Float32Conv2d(channels[-1], config.image_channels, 3, padding=1)
        self.register_state_dict_post_hook(contiguous_state_dict)

    def _middle_hidden(self, condition: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """The shared-MLP outputs of every SPADE layer of the middle blocks, from one conv on the condition.

        The middle blocks all run at the condition's size, so their shared convs read the same
        map: one conv with 128·n outputs, whose weights the separate convs' parameters are slices of
        while rendering (:func:`~tavce.models.renderer.fast_conv.merged_parameters`: one copy).
        """
        middle = cast(list[SPADEResBlock], list(self.middle_blocks))
        layers = [(index, name, layer) for index, block in enumerate(middle) for name, layer in block.spade_layers().items()]
        convs = [layer.shared_conv for _, _, layer in layers]
        weight, bias = merged_parameters(convs)
        merged = shared_hidden(condition, (weight, bias), condition.shape[2:], folded=False)
        per_block: list[dict[str, torch.Tensor]] = [{} for _ in self.middle_blocks]
        for (index, name, _), hidden in zip(layers, merged.split([conv.weight.shape[0] for conv in convs], dim=1)):
            per_block[index][name] = hidden
        return per_block

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """(B, input_channels, h, w) → (B, image_channels, 4h, 4w) in (0, 1), in the condition's dtype."""
        condition = condition.to(self.input_conv.weight.dtype)
        if not reductions_enabled():
            features = self.input_conv(condition)
            for block in self.middle_blocks:
                features = block(features, condition)
            for block in self.up_blocks:
                features = block(features, condition, upsample=2)
            return torch.sigmoid(self.output_conv(F.leaky_relu(features, LEAKY_SLOPE))).to(condition.dtype)
        layout = preferred_memory_format(condition)
        condition = condition.contiguous(memory_format=layout)
        # The convs' weights in their activations' layout, so no conv re-lays its weight out per call.
        hold_conv_weights_in(self, layout)
        features = self.input_conv(condition)
        for block, block_hidden in zip(self.middle_blocks, self._middle_hidden(condition)):
            # A slice of the merged map is dense in no layout: each of its γ and β convs would copy it.
            dense = {name: hidden.contiguous(memory_format=layout) for name, hidden in block_hidden.items()}
            features = block(features, condition, dense)
        for block in self.up_blocks:
            # Each SPADE layer's hidden map right where it is used (polyphase from the condition):
            # the up blocks' three maps at once would be 96 MiB in float32 at 256².
            features = block(features, condition, upsample=2)
        image = torch.sigmoid(self.output_conv(F.leaky_relu(features, LEAKY_SLOPE)))
        return image.to(condition.dtype).contiguous()
