"""GFPGAN v1.4 and ParseNet state dicts (official names) -> tavce's :mod:`tavce.models.enhancer` names.

``GFPGANv1.4.pth`` holds ``{'params_ema': state_dict}`` (or ``{'params': ...}``);
``parsing_parsenet.pth`` is a bare state dict. Both are renamed strictly. The
StyleGAN2 style MLP stored in ``GFPGANv1.4.pth`` is not loaded: with the encoder's
latents given directly (``input_is_latent``) the original never runs it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tavce.convert.common import RenameRule, rename_state_dict
from tavce.errors import IncompatibleWeightsError
from tavce.models.enhancer import GFPGANConfig, ParseNetConfig

__all__ = [
    "GFPGAN_RULES",
    "PARSENET_RULES",
    "convert_gfpgan",
    "convert_parsenet",
    "gfpgan_config_from_original",
    "parsenet_config_from_original",
]

# GFPGANv1Clean options tavce reproduces only in the one setting GFPGAN v1.4 uses.
_GFPGAN_FIXED = {"input_is_latent": True, "different_w": True, "sft_half": True, "decoder_load_path": None}

_MODULATED = r"modulated_conv\.(weight|modulation\.weight|modulation\.bias)"

GFPGAN_RULES: tuple[RenameRule, ...] = (
    (r"conv_body_first\.(weight|bias)", r"encoder_first.\1"),
    (r"conv_body_down\.(\d+)\.(conv1|conv2|skip)\.(weight|bias)", r"encoder_blocks.\1.\2.\3"),
    (r"final_conv\.(weight|bias)", r"encoder_final.\1"),
    (r"final_linear\.(weight|bias)", r"style_code.\1"),
    (r"conv_body_up\.(\d+)\.(conv1|conv2|skip)\.(weight|bias)", r"decoder_blocks.\1.\2.\3"),
    (r"toRGB\.(\d+)\.(weight|bias)", r"intermediate_rgb.\1.\2"),
    (r"condition_(scale|shift)\.(\d+)\.([02])\.(weight|bias)", r"condition_\1.\2.\3.\4"),
    (r"stylegan_decoder\.constant_input\.weight", "decoder.constant"),
    (r"stylegan_decoder\.noises\.(noise\d+)", r"decoder.\1"),
    (r"stylegan_decoder\.style_conv1\.weight", "decoder.first_conv.noise_strength"),
    (r"stylegan_decoder\.style_conv1\.bias", "decoder.first_conv.bias"),
    (r"stylegan_decoder\.style_convs\.(\d+)\.weight", r"decoder.convs.\1.noise_strength"),
    (r"stylegan_decoder\.style_convs\.(\d+)\.bias", r"decoder.convs.\1.bias"),
    (r"stylegan_decoder\.to_rgb1\.bias", "decoder.first_rgb.bias"),
    (r"stylegan_decoder\.to_rgbs\.(\d+)\.bias", r"decoder.to_rgbs.\1.bias"),
    (rf"stylegan_decoder\.style_conv1\.{_MODULATED}", r"decoder.first_conv.conv.\1"),
    (rf"stylegan_decoder\.style_convs\.(\d+)\.{_MODULATED}", r"decoder.convs.\1.conv.\2"),
    (rf"stylegan_decoder\.to_rgb1\.{_MODULATED}", r"decoder.first_rgb.conv.\1"),
    (rf"stylegan_decoder\.to_rgbs\.(\d+)\.{_MODULATED}", r"decoder.to_rgbs.\1.conv.\2"),
)
"""Official GFPGANv1Clean key -> tavce :class:`~tavce.models.enhancer.GFPGAN` key."""

GFPGAN_UNUSED = (r"stylegan_decoder\.style_mlp\..*",)
"""The style MLP: unused when the latents come from the encoder."""

PARSENET_RULES: tuple[RenameRule, ...] = (
    (r"(encoder|body|decoder)\.(\d+)\.shortcut_func\.conv2d\.(weight|bias)", r"\1.\2.shortcut.conv.\3"),
    (r"(encoder|body|decoder)\.(\d+)\.(conv1|conv2)\.conv2d\.(weight|bias)", r"\1.\2.\3.conv.\4"),
    (
        r"(encoder|body|decoder)\.(\d+)\.(conv1|conv2)\.norm\.norm\.(weight|bias|running_mean|running_var|num_batches_tracked)",
        r"\1.\2.\3.norm.\4",
    ),
    (r"encoder\.0\.conv2d\.(weight|bias)", r"encoder.0.conv.\1"),
    (r"out_img_conv\.conv2d\.(weight|bias)", r"image_head.conv.\1"),
    (r"out_mask_conv\.conv2d\.(weight|bias)", r"parsing_head.conv.\1"),
)
"""Official facexlib ParseNet key -> tavce :class:`~tavce.models.enhancer.ParseNet` key."""


def convert_gfpgan(state_dict: Mapping[str, torch.Tensor], source: str = "GFPGANv1.4.pth") -> dict[str, torch.Tensor]:
    """GFPGANv1Clean state dict -> :class:`~tavce.models.enhancer.GFPGAN` state dict.

    The modulated weights lose their leading batch axis ((1, out, in, k, k) -> (out, in, k, k)).

    Raises:
        IncompatibleWeightsError: a key no rule covers.
    """
    renamed = rename_state_dict(state_dict, GFPGAN_RULES, source=source, ignore=GFPGAN_UNUSED)
    return {
        key: value[0] if key.startswith("decoder.") and key.endswith(".conv.weight") and value.ndim == 5 else value
        for key, value in renamed.items()
    }


def convert_parsenet(state_dict: Mapping[str, torch.Tensor], source: str = "parsing_parsenet.pth") -> dict[str, torch.Tensor]:
    """facexlib ParseNet state dict -> :class:`~tavce.models.enhancer.ParseNet` state dict.

    Raises:
        IncompatibleWeightsError: a key no rule covers.
    """
    return rename_state_dict(state_dict, PARSENET_RULES, source=source)


def gfpgan_config_from_original(kwargs: Mapping[str, object]) -> GFPGANConfig:
    """:class:`GFPGANConfig` from ``GFPGANv1Clean`` constructor arguments.

    Raises:
        IncompatibleWeightsError: an option other than v1.4's (latents from the encoder,
            one latent per layer, SFT on half the channels).
    """
    unsupported = {name: kwargs[name] for name, value in _GFPGAN_FIXED.items() if name in kwargs and kwargs[name] != value}
    if unsupported:
        raise IncompatibleWeightsError(
            f"GFPGANv1Clean options {unsupported} are not supported; tavce runs GFPGAN v1.4's configuration "
            f"({_GFPGAN_FIXED})"
        )
    return GFPGANConfig(
        image_size=int(kwargs.get("out_size", 512)),
        style_dim=int(kwargs.get("num_style_feat", 512)),
        channel_multiplier=int(kwargs.get("channel_multiplier", 2)),
        narrow=float(kwargs.get("narrow", 1)),
    )


def parsenet_config_from_original(kwargs: Mapping[str, object]) -> ParseNetConfig:
    """:class:`ParseNetConfig` from facexlib ``ParseNet`` constructor arguments (in_size must equal out_size)."""
    in_size, out_size = int(kwargs.get("in_size", 512)), int(kwargs.get("out_size", 512))
    if in_size != out_size:
        raise IncompatibleWeightsError(f"ParseNet in_size={in_size} != out_size={out_size} is not supported")
    return ParseNetConfig(image_size=in_size, num_classes=int(kwargs.get("parsing_ch", 19)))
