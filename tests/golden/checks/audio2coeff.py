"""Golden checks for Audio2Coeff (reference-pipeline.md §3): ExpNet and the PoseVAE decoder.

Weights go original names -> :mod:`tavce.convert.audio2coeff` -> strict load; network
sizes are read from the converted weights, clip lengths and chunk counts from the
recorded inputs. The recorded CVAE latents ``z`` replace the random draws.
"""

from __future__ import annotations

import torch

from tavce.convert.audio2coeff import (
    convert_audio2exp,
    convert_audio2pose,
    expression_net_config_from_state_dict,
    pose_vae_config_from_state_dict,
)
from tavce.models.audio2coeff import ExpressionNet, PoseVAE, encode_windows, smooth_pose
from tavce.models.base import load_state_dict_strict
from tavce.types import MOTION_DIM
from tests.golden.harness import CaseResult, GoldenCase

EXPRESSION_DIM = 64


def check_audio2exp(case: GoldenCase) -> CaseResult:
    """SadTalker (per-frame reference) and TAVCE (first-frame reference) ExpNet outputs, and the embedding."""
    state_dict = convert_audio2exp(case.only_state_dict())
    network = ExpressionNet(expression_net_config_from_state_dict(state_dict))
    load_state_dict_strict(network, state_dict, source=case.name)
    network.eval()
    windows = case.inputs["indiv_mels"][0]
    num_frames = windows.shape[0]
    reference = case.inputs["ref"][0, :, :EXPRESSION_DIM]
    blinks = case.inputs["ratio_gt"][0]
    with torch.no_grad():
        sadtalker = network(windows, reference, blinks)
        tavce = network(windows, reference[:1].expand(num_frames, -1), blinks)
        embedding = encode_windows(network.audio_encoder, windows)
    return CaseResult(
        outputs={
            "exp_coeff_pred": sadtalker.unsqueeze(0),
            "exp_coeff_pred_tavce": tavce.unsqueeze(0),
            "audio_embedding": embedding,
        }
    )


def check_audio2pose(case: GoldenCase) -> CaseResult:
    """PoseVAE motion with SadTalker and TAVCE chunk alignment, the pose and its smoothed version."""
    state_dict = convert_audio2pose(case.only_state_dict())
    network = PoseVAE(pose_vae_config_from_state_dict(state_dict))
    load_state_dict_strict(network, state_dict, source=case.name)
    network.eval()
    windows = case.inputs["indiv_mels"][0]
    assert windows.shape[0] == int(case.inputs["num_frames"])
    reference_pose = case.inputs["ref"][0, 0, MOTION_DIM - 6 : MOTION_DIM]
    style = int(case.inputs["class"][0])
    latents = case.inputs["z"].reshape(case.inputs["z"].shape[0], -1)
    with torch.no_grad():
        motion = network.sample_motion(windows, reference_pose, style, latents, "sadtalker")
        tavce_motion = network.sample_motion(windows, reference_pose, style, latents, "tavce-eval")
    pose = reference_pose + motion
    return CaseResult(
        outputs={
            "pose_motion_pred": motion.unsqueeze(0),
            "pose_pred": pose.unsqueeze(0),
            "pose_pred_smoothed": smooth_pose(pose).unsqueeze(0),
            "pose_pred_tavce": (reference_pose + tavce_motion).unsqueeze(0),
        }
    )
