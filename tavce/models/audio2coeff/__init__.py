"""Audio2Coeff: mel windows -> per-frame 3DMM expression and head pose."""

from tavce.models.audio2coeff.blinks import random_blink_ratio
from tavce.models.audio2coeff.component import (
    Audio2Coeff,
    Audio2CoeffOptions,
    SadTalkerAudio2Coeff,
    SadTalkerAudio2CoeffConfig,
)
from tavce.models.audio2coeff.expression_net import ExpressionNet, ExpressionNetConfig, encode_windows
from tavce.models.audio2coeff.pose_controls import add_reference_motion, camera_degrees, smooth_pose, tile_to_length
from tavce.models.audio2coeff.pose_vae import PoseDecoder, PoseEncoder, PoseVAE, PoseVAEConfig, motion_chunks
from tavce.models.audio2coeff.resunet import ResUnet

__all__ = [
    "Audio2Coeff",
    "Audio2CoeffOptions",
    "ExpressionNet",
    "ExpressionNetConfig",
    "PoseDecoder",
    "PoseEncoder",
    "PoseVAE",
    "PoseVAEConfig",
    "ResUnet",
    "SadTalkerAudio2Coeff",
    "SadTalkerAudio2CoeffConfig",
    "add_reference_motion",
    "camera_degrees",
    "encode_windows",
    "motion_chunks",
    "random_blink_ratio",
    "smooth_pose",
    "tile_to_length",
]
