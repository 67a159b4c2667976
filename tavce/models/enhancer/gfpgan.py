"""GFPGAN v1.4 (clean architecture): a U-Net encoder that steers a StyleGAN2 decoder to restore a face.

The encoder reduces a 512×512 aligned face to a 4×4 feature and reads one style
latent per decoder layer from it (16 × 512 at full size); its up-path yields, at
every resolution from 8 to 512 px, a spatial scale and shift (SFT conditions)
that modulate half of the decoder's channels. The decoder is StyleGAN2 without
custom CUDA ops: modulated, demodulated 3×3 convolutions, bilinear ×2
upsampling, per-pixel noise injection and a skip-connected RGB output.

Noise: the original draws fresh standard-normal noise maps at every call, which
makes its output irreproducible. Here the caller chooses: the registered noise
buffers (``noise=None``; reproducible, what the recorded cases use) or maps drawn
from a ``torch.Generator`` (seeded by the pipeline's seed).

Precision: the module runs in the dtype it is cast to; the style modulation and
demodulation coefficients (a sum of squares over up to 4 608 products) are
computed in float32 whatever that dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule
from tavce.models.renderer.precision import preferred_memory_format

__all__ = ["GFPGANConfig", "GFPGAN", "GFPGANOutput"]

_SLOPE = 0.2


@dataclass(frozen=True)
class GFPGANConfig:
    """Sizes; defaults are GFPGAN v1.4's (``GFPGANv1Clean(out_size=512, channel_multiplier=2)``).

    Attributes:
        image_size: input and output side in pixels, a power of two ≥ 8.
        style_dim: width of each style latent.
        channel_multiplier: widens the decoder (and U-Net) levels from 64 px up.
        narrow: scales every decoder width; the U-Net uses half of it.
    """

    image_size: int = 512
    style_dim: int = 512
    channel_multiplier: int = 2
    narrow: float = 1.0

    def __post_init__(self) -> None:
        log_size = math.log2(self.image_size)
        if self.image_size < 8 or log_size != int(log_size):
            raise InvalidArgumentError(f"GFPGANConfig.image_size={self.image_size}: must be a power of two >= 8")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.image_size))

    @property
    def num_latents(self) -> int:
        """Style latents: one per decoder layer (first conv, first RGB, then 2 convs per level + its RGB share)."""
        return 2 * self.log_size - 2

    def channels(self, resolution: int, narrow: float | None = None) -> int:
        """Width at ``resolution`` px (decoder widths; pass ``narrow / 2`` for the U-Net's)."""
        narrow = self.narrow if narrow is None else narrow
        multiplier = self.channel_multiplier
        base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * multiplier, 128: 128 * multiplier,
                256: 64 * multiplier, 512: 32 * multiplier, 1024: 16 * multiplier}[resolution]
        return int(base * narrow)

    def unet_channels(self, resolution: int) -> int:
        return self.channels(resolution, self.narrow / 2)


@dataclass
class GFPGANOutput:
    """Restored faces and the U-Net's intermediate RGB images.

    Attributes:
        image: (B, 3, S, S) restored RGB face, nominally in [-1, 1] (not clamped).
        style_code: (B, num_latents · style_dim) the encoder's style latents, flattened.
        intermediate_rgb: per U-Net up level (8, 16, … S px): (B, 3, r, r) RGB read-outs.
    """

    image: torch.Tensor
    style_code: torch.Tensor
    intermediate_rgb: list[torch.Tensor]


def _lrelu_(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) in place: applied only to a layer's fresh output, so no other reader sees the change."""
    return F.leaky_relu_(x, _SLOPE)


class ResampleBlock(nn.Module):
    """Residual block that halves or doubles the resolution (bilinear, ``align_corners=False``).

    ``lrelu(conv2(resize(lrelu(conv1(x))))) + skip(resize(x))``; (B, C_in, H, W) → (B, C_out, H·f, W·f).
    """

    def __init__(self, in_channels: int, out_channels: int, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _lrelu_(self.conv2(self._resize(_lrelu_(self.conv1(x)))))
        # The bias-free 1×1 skip and the resize commute (one mixes channels, the other pixels): when
        # upsampling, the skip runs first, on the map a quarter the size, and fewer channels are resized.
        skip = self.skip(self._resize(x)) if self.factor < 1 else self._resize(self.skip(x))
        return out.add_(skip)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 convolution whose weights are scaled per sample by a style, optionally demodulated.

    Computed as in StyleGAN2's non-fused form: the input channels are multiplied by the
    style, one shared convolution runs over the whole batch, and the output channels are
    multiplied by the demodulation coefficients ``rsqrt(Σ (w·s)² + 1e-8)`` -- equal to
    convolving each sample with its own modulated kernel, without a grouped convolution.
    The stored weight is used as it is: the clean architecture folds StyleGAN2's
    1/√fan_in equalised-learning-rate factor into the weights at initialisation, so a
    trained file already holds the scaled values.

    Args:
        upsample: resize the input bilinearly ×2 before the convolution.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, *, demodulate: bool, upsample: bool
    ) -> None:
        super().__init__()
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        self.modulation = nn.Linear(style_dim, in_channels)
        nn.init.ones_(self.modulation.bias)  # an untrained style leaves the weights as they are
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / math.sqrt(in_channels * kernel_size**2)
        )

    def forward(self, x: torch.Tensor, latent: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """x (B, C_in, H, W), latent (B, style_dim) → (B, C_out, H', W') (H' = 2H when upsampling), times ``gain``.

        With demodulation the gain joins the (B, C_out) coefficients, which saves a pass over the output.
        """
        style = F.linear(latent.float(), self.modulation.weight.float(), self.modulation.bias.float())  # (B, C_in)
        x = x * style.to(x.dtype)[:, :, None, None]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x, self.weight, padding=self.padding)
        if self.demodulate:
            squared = self.weight.float().square().sum(dim=(2, 3))  # (C_out, C_in)
            coefficients = torch.rsqrt(style.square() @ squared.t() + 1e-8) * gain  # (B, C_out)
            return out.mul_(coefficients.to(out.dtype)[:, :, None, None])
        return out if gain == 1 else out.mul_(gain)


class StyleConv(nn.Module):
    """Modulated 3×3 conv · √2 + noise_strength · noise + bias, LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, *, upsample: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, demodulate=True, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, latent: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W), latent (B, style_dim), noise (1 or B, 1, H', W') → (B, C_out, H', W')."""
        out = self.conv(x, latent, gain=math.sqrt(2))
        out.add_(self.noise_strength * noise.to(out.dtype))
        return _lrelu_(out.add_(self.bias))


class ToRGB(nn.Module):
    """Modulated 1×1 conv (no demodulation) + bias, plus the previous RGB upsampled bilinearly ×2."""

    def __init__(self, in_channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False, upsample=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, latent: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W), latent (B, style_dim), previous (B, 3, H/2, W/2) or None → (B, 3, H, W)."""
        out = self.conv(x, latent) + self.bias
        if previous is not None:
            out = out + F.interpolate(previous, scale_factor=2, mode="bilinear", align_corners=False)
        return out


class StyleDecoder(nn.Module):
    """StyleGAN2 synthesis network with SFT: a learned 4×4 constant up to the output size.

    The noise buffers ``noise{j}`` (1, 1, r, r), j = 0 … 2·log_size − 4, belong to
    ``first_conv`` (j = 0, 4 px) then to the two convs of each level.
    """

    def __init__(self, config: GFPGANConfig) -> None:
        super().__init__()
        channels = config.channels
        self.constant = nn.Parameter(torch.randn(1, channels(4), 4, 4))
        self.first_conv = StyleConv(channels(4), channels(4), config.style_dim, upsample=False)
        self.first_rgb = ToRGB(channels(4), config.style_dim)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels(4)
        for level in range(3, config.log_size + 1):
            out_channels = channels(2**level)
            self.convs.append(StyleConv(in_channels, out_channels, config.style_dim, upsample=True))
            self.convs.append(StyleConv(out_channels, out_channels, config.style_dim, upsample=False))
            self.to_rgbs.append(ToRGB(out_channels, config.style_dim))
            in_channels = out_channels
        for index in range(2 * config.log_size - 3):
            resolution = 2 ** ((index + 5) // 2)
            self.register_buffer(f"noise{index}", torch.randn(1, 1, resolution, resolution))

    def noise_maps(self, batch: int, generator: torch.Generator | None) -> list[torch.Tensor]:
        """The registered buffers (``generator=None``) or fresh standard-normal (B, 1, r, r) maps drawn from it."""
        buffers = [getattr(self, f"noise{index}") for index in range(len(self.convs) + 1)]
        if generator is None:
            return buffers
        return [
            torch.randn((batch, *buffer.shape[1:]), generator=generator, device=generator.device).to(buffer.device)
            for buffer in buffers
        ]

    def forward(
        self, latents: torch.Tensor, conditions: list[tuple[torch.Tensor, torch.Tensor]], noise: list[torch.Tensor]
    ) -> torch.Tensor:
        """latents (B, num_latents, style_dim), per level (scale, shift) (B, C/2, r, r) → (B, 3, S, S) RGB."""
        batch = latents.shape[0]
        out = self.first_conv(self.constant.expand(batch, -1, -1, -1), latents[:, 0], noise[0])
        rgb = self.first_rgb(out, latents[:, 1])
        for level, (scale, shift) in enumerate(conditions):
            index = 2 * level + 1
            out = self.convs[2 * level](out, latents[:, index], noise[index])
            out[:, out.shape[1] // 2 :].mul_(scale).add_(shift)  # SFT on the second half of the channels
            out = self.convs[2 * level + 1](out, latents[:, index + 1], noise[index + 1])
            rgb = self.to_rgbs[level](out, latents[:, index + 2], rgb)
        return rgb


def _condition(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.LeakyReLU(_SLOPE, inplace=True),
        nn.Conv2d(channels, channels, 3, padding=1),
    )


class GFPGAN(TavceModule):
    """GFPGAN v1.4 face restorer (clean architecture, SFT on half of the decoder channels).

    Input: (B, 3, S, S) aligned RGB faces in [-1, 1] (S = ``config.image_size``; the
    alignment puts the eyes, nose and mouth where the FFHQ template has them).
    Output: :class:`GFPGANOutput`; ``image`` is (B, 3, S, S), nominally [-1, 1].

    Inference only: its layers work in place on their own outputs (fewer passes over the maps),
    so autograd refuses a backward through it.
    """

    config_class = GFPGANConfig

    def __init__(self, config: GFPGANConfig | None = None) -> None:
        super().__init__(config)
        config = self.config
        unet = config.unet_channels
        self.encoder_first = nn.Conv2d(3, unet(config.image_size), 1)
        self.encoder_blocks = nn.ModuleList(
            ResampleBlock(unet(2**level), unet(2 ** (level - 1)), 0.5) for level in range(config.log_size, 2, -1)
        )
        self.encoder_final = nn.Conv2d(unet(4), unet(4), 3, padding=1)
        self.style_code = nn.Linear(unet(4) * 16, config.num_latents * config.style_dim)
        self.decoder_blocks = nn.ModuleList(
            ResampleBlock(unet(2 ** (level - 1)), unet(2**level), 2.0) for level in range(3, config.log_size + 1)
        )
        self.intermediate_rgb = nn.ModuleList(nn.Conv2d(unet(2**level), 3, 1) for level in range(3, config.log_size + 1))
        self.condition_scale = nn.ModuleList(_condition(unet(2**level)) for level in range(3, config.log_size + 1))
        self.condition_shift = nn.ModuleList(_condition(unet(2**level)) for level in range(3, config.log_size + 1))
        self.decoder = StyleDecoder(config)

    def forward(
        self, faces: torch.Tensor, *, generator: torch.Generator | None = None, intermediate_rgb: bool = False
    ) -> GFPGANOutput:
        """Restore a batch of aligned faces.

        Args:
            faces: (B, 3, S, S) RGB in [-1, 1].
            generator: draw the decoder's noise from it (one map per frame and layer);
                None uses the registered noise buffers (reproducible).
            intermediate_rgb: also compute the U-Net's RGB read-outs (diagnostics).

        The maps run in the layout the convolution kernels read fastest (channels-last for half
        types and float32 on the CPU: :func:`~tavce.models.renderer.precision.preferred_memory_format`;
        with :class:`~tavce.models.enhancer.FaceEnhancer`'s channels-last kernels, restorer and parser
        in bfloat16 on a 2-core Xeon run 2.3× faster than contiguous); the outputs keep it.

        Raises:
            InvalidArgumentError: the faces are not (B, 3, S, S).
        """
        size = self.config.image_size
        if faces.ndim != 4 or tuple(faces.shape[1:]) != (3, size, size):
            raise InvalidArgumentError(f"GFPGAN expects faces of shape (B, 3, {size}, {size}), got {tuple(faces.shape)}")
        faces = faces.contiguous(memory_format=preferred_memory_format(faces))
        feature = _lrelu_(self.encoder_first(faces))
        skips = []
        for block in self.encoder_blocks:
            feature = block(feature)
            skips.append(feature)
        feature = _lrelu_(self.encoder_final(feature))
        style_code = self.style_code(feature.flatten(1))
        conditions, rgbs = [], []
        for level, block in enumerate(self.decoder_blocks):
            feature = block(feature + skips[-1 - level])
            conditions.append((self.condition_scale[level](feature), self.condition_shift[level](feature)))
            if intermediate_rgb:
                rgbs.append(self.intermediate_rgb[level](feature))
        latents = style_code.view(faces.shape[0], self.config.num_latents, self.config.style_dim)
        image = self.decoder(latents, conditions, self.decoder.noise_maps(faces.shape[0], generator))
        return GFPGANOutput(image=image, style_code=style_code, intermediate_rgb=rgbs)
