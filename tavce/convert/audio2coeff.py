"""Original -> tavce names for ExpNet (``audio2exp.``) and the PoseVAE (``audio2pose.``).

Both functions take the sub-dict with its ``audio2exp.`` / ``audio2pose.`` prefix
already removed (as :mod:`tavce.convert.files` splits the SadTalker safetensors).

Deliberately unused: ``netD_motion.*``, the PoseVAE's pose-sequence discriminator,
which only the original's GAN training reads. The CVAE training encoder
``netG.encoder.*`` is converted when present (``PoseVAEConfig(with_encoder=True)``);
the official-file readers drop it beforehand, as inference never runs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

import torch

from tavce.convert.audio_encoder import WAV2LIP_ENCODER_RULES, prefixed
from tavce.convert.common import rename_state_dict

if TYPE_CHECKING:
    from tavce.models.audio2coeff import ExpressionNetConfig, PoseVAEConfig

StateDict = dict[str, torch.Tensor]

AUDIO2EXP_RULES = prefixed("audio_encoder.", "audio_encoder.", WAV2LIP_ENCODER_RULES) + (
    (r"mapping1\.(weight|bias)", r"head.\1"),
)

_RESUNET_BLOCKS = {
    "residual_conv_1": "down.0",
    "residual_conv_2": "down.1",
    "bridge": "down.2",
    "up_residual_conv1": "up.0",
    "up_residual_conv2": "up.1",
    "up_residual_conv3": "up.2",
}
_RESIDUAL_BLOCK_LAYERS = {
    "conv_block.0": "norm1",
    "conv_block.2": "conv1",
    "conv_block.3": "norm2",
    "conv_block.5": "conv2",
    "conv_skip.0": "skip_conv",
    "conv_skip.1": "skip_norm",
}
RESUNET_RULES = (
    (r"input_layer\.0\.(.+)", r"stem_conv1.\1"),
    (r"input_layer\.1\.(.+)", r"stem_norm.\1"),
    (r"input_layer\.3\.(.+)", r"stem_conv2.\1"),
    (r"input_skip\.0\.(.+)", r"stem_skip.\1"),
    (r"upsample_1\.upsample\.(.+)", r"upsample.0.\1"),
    (r"upsample_2\.upsample\.(.+)", r"upsample.1.\1"),
    (r"upsample_3\.upsample\.(.+)", r"upsample.2.\1"),
    (r"output_layer\.0\.(.+)", r"output_conv.\1"),
) + tuple(
    (rf"{re.escape(block)}\.{re.escape(layer)}\.(.+)", rf"{ours}.{our_layer}.\1")
    for block, ours in _RESUNET_BLOCKS.items()
    for layer, our_layer in _RESIDUAL_BLOCK_LAYERS.items()
)

_CVAE_SHARED_RULES = (
    (r"classbias", "style_bias"),
    (r"linear_audio\.(weight|bias)", r"audio_projection.\1"),
    (r"MLP\.L(\d+)\.(weight|bias)", r"mlp.\1.\2"),
)
AUDIO2POSE_RULES = (
    prefixed("audio_encoder.audio_encoder.", "audio_encoder.", WAV2LIP_ENCODER_RULES)
    + prefixed("netG.decoder.resunet.", "decoder.resunet.", RESUNET_RULES)
    + prefixed("netG.encoder.resunet.", "encoder.resunet.", RESUNET_RULES)
    + prefixed("netG.decoder.", "decoder.", _CVAE_SHARED_RULES)
    + prefixed("netG.encoder.", "encoder.", _CVAE_SHARED_RULES)
    + (
        (r"netG\.decoder\.pose_linear\.(weight|bias)", r"decoder.pose_projection.\1"),
        (r"netG\.encoder\.linear_means\.(weight|bias)", r"encoder.mean.\1"),
        (r"netG\.encoder\.linear_logvar\.(weight|bias)", r"encoder.log_variance.\1"),
    )
)
AUDIO2POSE_UNUSED = (r"netD_motion\..*",)


def convert_audio2exp(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """``audio2exp.*`` (prefix removed) -> :class:`~tavce.models.audio2coeff.ExpressionNet` names."""
    return rename_state_dict(state_dict, AUDIO2EXP_RULES, source="audio2exp (ExpNet)")


def convert_audio2pose(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """``audio2pose.*`` (prefix removed) -> :class:`~tavce.models.audio2coeff.PoseVAE` names.

    ``netD_motion.*`` is ignored (training-only discriminator). The result holds
    ``encoder.*`` exactly when the input holds ``netG.encoder.*``.
    """
    return rename_state_dict(state_dict, AUDIO2POSE_RULES, source="audio2pose (PoseVAE)", ignore=AUDIO2POSE_UNUSED)


def audio2coeff_state_dict(
    expression_net: Mapping[str, torch.Tensor], pose_vae: Mapping[str, torch.Tensor]
) -> StateDict:
    """Converted ExpNet and PoseVAE dicts -> one :class:`~tavce.models.audio2coeff.SadTalkerAudio2Coeff` dict."""
    combined = {f"expression_net.{key}": value for key, value in expression_net.items()}
    combined.update({f"pose_vae.{key}": value for key, value in pose_vae.items()})
    return combined


def _linear_out_dims(state_dict: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    """Output widths of the Linear layers ``<prefix>0``, ``<prefix>1``, ... in order."""
    dims: list[int] = []
    while f"{prefix}{len(dims)}.weight" in state_dict:
        dims.append(int(state_dict[f"{prefix}{len(dims)}.weight"].shape[0]))
    return dims


def pose_vae_config_from_state_dict(state_dict: Mapping[str, torch.Tensor]) -> PoseVAEConfig:
    """The :class:`~tavce.models.audio2coeff.PoseVAEConfig` a converted PoseVAE dict fits (sizes read from shapes)."""
    from tavce.models.audio2coeff import PoseVAEConfig

    num_styles, latent_dim = state_dict["decoder.style_bias"].shape
    pose_dim = int(state_dict["decoder.pose_projection.weight"].shape[0])
    decoder_dims = _linear_out_dims(state_dict, "decoder.mlp.")
    resunet = ["decoder.resunet.stem_conv1"] + [f"decoder.resunet.down.{level}.conv1" for level in range(3)]
    with_encoder = "encoder.mean.weight" in state_dict
    return PoseVAEConfig(
        seq_len=decoder_dims[-1] // pose_dim,
        latent_dim=int(latent_dim),
        pose_dim=pose_dim,
        audio_projection_dim=int(state_dict["decoder.audio_projection.weight"].shape[0]),
        num_styles=int(num_styles),
        decoder_hidden_dims=tuple(decoder_dims[:-1]),
        encoder_hidden_dims=tuple(_linear_out_dims(state_dict, "encoder.mlp.")) if with_encoder else (128,),
        resunet_channels=cast(
            tuple[int, int, int, int], tuple(int(state_dict[f"{name}.weight"].shape[0]) for name in resunet)
        ),
        with_encoder=with_encoder,
    )


def expression_net_config_from_state_dict(state_dict: Mapping[str, torch.Tensor]) -> ExpressionNetConfig:
    """The :class:`~tavce.models.audio2coeff.ExpressionNetConfig` a converted ExpNet dict fits."""
    from tavce.models.audio2coeff import ExpressionNetConfig

    return ExpressionNetConfig(expression_dim=int(state_dict["head.weight"].shape[0]))
