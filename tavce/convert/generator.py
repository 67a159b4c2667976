"""Original → tavce names for the face-render generator (SadTalker + TAVCE CERL layers).

Input: the generator sub-dict of an official checkpoint (``generator.*`` of the
SadTalker safetensors with the prefix stripped, ``checkpoint['generator']`` of
facevid2vid_00189 or of the TAVCE face-render checkpoint). The spectral-norm
triples (``weight_orig``/``weight_u``/``weight_v``) are renamed, not folded:
folding them into plain weights is the separate inference step
:func:`tavce.models.renderer.spectral.fold_spectral_norm`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from tavce.convert.common import rename_state_dict, strip_module_prefix
from tavce.errors import IncompatibleWeightsError
from tavce.models.renderer.generator import GeneratorConfig, has_cerl_weights

__all__ = ["GENERATOR_RULES", "convert_generator", "generator_config_from_original", "has_cerl_weights"]


def _spade_block_rules(original: str, ours: str) -> tuple[tuple[str, str], ...]:
    """Rules for one family of SPADE residual blocks (``G_middle_<n>`` or ``up_<n>``)."""
    block = rf"decoder\.{original}(\d+)\."
    target = rf"decoder.{ours}.\1."
    return (
        (block + r"conv_([01])\.(.+)", target + r"conv_\2.\3"),
        (block + r"conv_s\.(.+)", target + r"conv_shortcut.\2"),
        (block + r"norm_([01])\.mlp_shared\.0\.(.+)", target + r"norm_\2.shared.0.\3"),
        (block + r"norm_([01])\.mlp_(gamma|beta)\.(.+)", target + r"norm_\2.\3.\4"),
        (block + r"norm_s\.mlp_shared\.0\.(.+)", target + r"norm_shortcut.shared.0.\2"),
        (block + r"norm_s\.mlp_(gamma|beta)\.(.+)", target + r"norm_shortcut.\2.\3"),
    )


GENERATOR_RULES = (
    (r"first\.(conv|norm)\.(.+)", r"first.\1.\2"),
    (r"down_blocks\.(\d+)\.(conv|norm)\.(.+)", r"down_blocks.\1.\2.\3"),
    (r"second\.(.+)", r"to_features.\1"),
    (r"proj1\.(.+)", r"fusion.proj_down.\1"),
    (r"proj2\.(.+)", r"fusion.proj_up.\1"),
    (r"linear\.(.+)", r"fusion.output.\1"),
    (r"resblocks_3d\.3dr(\d+)\.(conv1|conv2|norm1|norm2)\.(.+)", r"volume_blocks.\1.\2.\3"),
    (r"dense_motion_network\.hourglass\.encoder\.down_blocks\.(\d+)\.(.+)", r"dense_motion.hourglass.down_blocks.\1.\2"),
    (r"dense_motion_network\.hourglass\.decoder\.up_blocks\.(\d+)\.(.+)", r"dense_motion.hourglass.up_blocks.\1.\2"),
    (r"dense_motion_network\.hourglass\.decoder\.conv\.(.+)", r"dense_motion.hourglass.out_conv.\1"),
    (r"dense_motion_network\.hourglass\.decoder\.norm\.(.+)", r"dense_motion.hourglass.out_norm.\1"),
    (r"dense_motion_network\.(mask|compress|occlusion)\.(.+)", r"dense_motion.\1.\2"),
    (r"dense_motion_network\.norm\.(.+)", r"dense_motion.compress_norm.\1"),
    (r"third\.(conv|norm)\.(.+)", r"bottleneck.\1.\2"),
    (r"fourth\.(.+)", r"bottleneck_projection.\1"),
    (r"decoder\.fc\.(.+)", r"decoder.input_conv.\1"),
    (r"decoder\.conv_img\.(.+)", r"decoder.output_conv.\1"),
    *_spade_block_rules("G_middle_", "middle_blocks"),
    *_spade_block_rules("up_", "up_blocks"),
)

def convert_generator(original: Mapping[str, torch.Tensor], source: str = "generator") -> dict[str, torch.Tensor]:
    """Rename an original generator state dict (``module.`` prefixes allowed) to tavce names.

    Raises:
        IncompatibleWeightsError: a key is not part of the known layout.
    """
    return rename_state_dict(strip_module_prefix(original), GENERATOR_RULES, source=source)


def generator_config_from_original(kwargs: Mapping[str, Any]) -> GeneratorConfig:
    """Our inference config from the original constructor kwargs (facerender.yaml generator + common params).

    Raises:
        IncompatibleWeightsError: an option tavce does not implement (Jacobians, no occlusion map,
            a fusion width other than the feature width).
    """
    if kwargs.get("estimate_jacobian", False) or not kwargs.get("estimate_occlusion_map", True):
        raise IncompatibleWeightsError(
            "generator config: only estimate_jacobian=False with estimate_occlusion_map=True is supported "
            "(the SadTalker/TAVCE configuration)."
        )
    motion = dict(kwargs.get("dense_motion_params", {}))
    fusion = kwargs.get("fusion") or None
    defaults = GeneratorConfig()
    if fusion is not None and fusion.get("feat_dim", kwargs.get("max_features")) != kwargs.get("max_features", defaults.max_channels):
        raise IncompatibleWeightsError("generator config: fusion.feat_dim must equal max_features.")
    if motion.get("reshape_depth", kwargs.get("reshape_depth")) != kwargs.get("reshape_depth", defaults.volume_depth):
        raise IncompatibleWeightsError("generator config: dense_motion_params.reshape_depth must equal reshape_depth.")
    return GeneratorConfig(
        image_channels=int(kwargs.get("image_channel", defaults.image_channels)),
        base_channels=int(kwargs.get("block_expansion", defaults.base_channels)),
        max_channels=int(kwargs.get("max_features", defaults.max_channels)),
        num_down_blocks=int(kwargs.get("num_down_blocks", defaults.num_down_blocks)),
        volume_channels=int(kwargs.get("reshape_channel", defaults.volume_channels)),
        volume_depth=int(kwargs.get("reshape_depth", defaults.volume_depth)),
        num_volume_blocks=int(kwargs.get("num_resblocks", defaults.num_volume_blocks)),
        num_keypoints=int(kwargs.get("num_kp", defaults.num_keypoints)),
        motion_base_channels=int(motion.get("block_expansion", defaults.motion_base_channels)),
        motion_num_blocks=int(motion.get("num_blocks", defaults.motion_num_blocks)),
        motion_max_channels=int(motion.get("max_features", defaults.motion_max_channels)),
        motion_compressed_channels=int(motion.get("compress", defaults.motion_compressed_channels)),
        cerl=fusion is not None,
        relationship_dim=int(fusion["cor_dim"]) if fusion is not None else defaults.relationship_dim,
    )
