"""Original → tavce names for the renderer's motion networks.

* MappingNet: ``mapping_00229`` / ``mapping_00109`` ``checkpoint['mapping']`` and the
  TAVCE face-render checkpoint's ``mapping`` entry.
* Keypoint detector: ``kp_extractor.*`` of the SadTalker safetensors (prefix stripped),
  ``checkpoint['kp_detector']`` of facevid2vid_00189 and of the TAVCE face-render checkpoint.
* Head-pose estimator (training only): ``checkpoint['he_estimator']`` of the same two files.
* Discriminator (training only): ``checkpoint['discriminator']`` where present.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tavce.convert.common import rename_state_dict, strip_module_prefix

__all__ = [
    "DISCRIMINATOR_RULES",
    "HEAD_POSE_ESTIMATOR_RULES",
    "KP_DETECTOR_RULES",
    "MAPPING_RULES",
    "convert_discriminator",
    "convert_he_estimator",
    "convert_kp_detector",
    "convert_mapping",
]

MAPPING_RULES = (
    (r"first\.0\.(weight|bias)", r"input_conv.\1"),
    (r"encoder(\d+)\.1\.(weight|bias)", r"layers.\1.\2"),
    (r"fc_(yaw|pitch|roll)\.(weight|bias)", r"heads.\1.\2"),
    (r"fc_t\.(weight|bias)", r"heads.translation.\1"),
    (r"fc_exp\.(weight|bias)", r"heads.expression.\1"),
)


def convert_mapping(original: Mapping[str, torch.Tensor], source: str = "mapping") -> dict[str, torch.Tensor]:
    """MappingNet tensors under our names (input size 70 or 73 kept as stored)."""
    return rename_state_dict(original, MAPPING_RULES, source=source)


KP_DETECTOR_RULES = (
    (r"predictor\.down_blocks\.down(\d+)\.(conv|norm)\.(.+)", r"down_blocks.\1.\2.\3"),
    (r"predictor\.conv\.(weight|bias)", r"to_volume.\1"),
    (r"predictor\.up_blocks\.up(\d+)\.(conv|norm)\.(.+)", r"up_blocks.\1.\2.\3"),
    (r"kp\.(weight|bias)", r"keypoint_head.\1"),
    # The anti-alias Gaussian is a buffer, stored (and loaded) like a weight.
    (r"down\.weight", r"downsample.kernel"),
)


def convert_kp_detector(original: Mapping[str, torch.Tensor], source: str = "kp_detector") -> dict[str, torch.Tensor]:
    """KPDetector tensors (``module.`` prefixes allowed) under our names, the ``down.weight`` kernel included."""
    return rename_state_dict(strip_module_prefix(original), KP_DETECTOR_RULES, source=source)


def _head_pose_stage_rules(stage: int) -> tuple[tuple[str, str], ...]:
    """Stage ``stage`` of the HEEstimator trunk: projection ``conv{stage+2}``/``norm{stage+2}``, the strided
    bottleneck ``block{2·stage}`` (stages 1-3) and the plain bottlenecks ``block{2·stage+1}.b{2·stage+1}_<j>``."""
    plain = 2 * stage + 1
    rules = [
        (rf"conv{stage + 2}\.(weight|bias)", rf"stages.{stage}.projection.conv.\1"),
        (rf"norm{stage + 2}\.(.+)", rf"stages.{stage}.projection.norm.\1"),
        (rf"block{plain}\.b{plain}_(\d+)\.(.+)", rf"stages.{stage}.blocks.\1.\2"),
    ]
    if stage > 0:
        strided = rf"block{2 * stage}\."
        rules += [
            (strided + r"(conv[123]|norm[123])\.(.+)", rf"stages.{stage}.strided_block.\1.\2"),
            (strided + r"skip\.(.+)", rf"stages.{stage}.strided_block.shortcut.\1"),
            (strided + r"norm4\.(.+)", rf"stages.{stage}.strided_block.shortcut_norm.\1"),
        ]
    return tuple(rules)


HEAD_POSE_ESTIMATOR_RULES = (
    (r"conv1\.(weight|bias)", r"stem.conv.\1"),
    (r"norm1\.(.+)", r"stem.norm.\1"),
    *(rule for stage in range(4) for rule in _head_pose_stage_rules(stage)),
    # The original returns fc_roll's output as "yaw" and fc_yaw's as "roll". The swap is
    # made here, once, so HeadPoseEstimator.heads.yaw computes what the original calls yaw.
    (r"fc_roll\.(weight|bias)", r"heads.yaw.\1"),
    (r"fc_yaw\.(weight|bias)", r"heads.roll.\1"),
    (r"fc_pitch\.(weight|bias)", r"heads.pitch.\1"),
    (r"fc_t\.(weight|bias)", r"heads.translation.\1"),
    (r"fc_exp\.(weight|bias)", r"heads.expression.\1"),
)


def convert_he_estimator(original: Mapping[str, torch.Tensor], source: str = "he_estimator") -> dict[str, torch.Tensor]:
    """HEEstimator tensors under our names, ``fc_roll`` → ``heads.yaw`` and ``fc_yaw`` → ``heads.roll``
    (the original wires its roll head to yaw and its yaw head to roll; the weights were trained that way)."""
    return rename_state_dict(strip_module_prefix(original), HEAD_POSE_ESTIMATOR_RULES, source=source)


DISCRIMINATOR_RULES = (
    # discs.<scale label> (1, 0-5, ...) keeps its label; spectral-norm triples keep their names.
    (r"discs\.([0-9-]+)\.down_blocks\.(\d+)\.(conv|norm)\.(.+)", r"discriminators.\1.blocks.\2.\3.\4"),
    (r"discs\.([0-9-]+)\.conv\.(.+)", r"discriminators.\1.prediction.\2"),
)


def convert_discriminator(
    original: Mapping[str, torch.Tensor], source: str = "discriminator"
) -> dict[str, torch.Tensor]:
    """MultiScaleDiscriminator tensors under our names (``weight_orig``/``weight_u``/``weight_v`` kept)."""
    return rename_state_dict(strip_module_prefix(original), DISCRIMINATOR_RULES, source=source)
