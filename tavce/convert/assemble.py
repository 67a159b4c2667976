"""Converted parts (tavce state dicts) -> loaded, eval-mode components.

The file converters (:mod:`tavce.convert.files`) give state dicts per part; here
each part is loaded strictly into its module (official sizes; the few sizes that
differ between official files, such as the MappingNet's 70 or 73 inputs, are read
from the weights) and the parts are composed into the pipeline's components.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from tavce.models.base import TavceModule, load_state_dict_strict

__all__ = [
    "build_audio2coeff",
    "build_face_recon",
    "build_mapping",
    "build_relationship_encoder",
    "build_renderer",
]

StateDict = Mapping[str, torch.Tensor]


def _loaded(module: TavceModule, state_dict: StateDict, source: str) -> TavceModule:
    load_state_dict_strict(module, dict(state_dict), source=source)
    return module.eval()


def build_face_recon(state_dict: StateDict, source: str = "face_3drecon") -> TavceModule:
    """The 3DMM coefficient network (``FaceReconNet``, official ResNet-50 sizes)."""
    from tavce.models.face_recon import FaceReconNet

    return _loaded(FaceReconNet(), state_dict, source)


def build_mapping(state_dict: StateDict, source: str = "mapping") -> TavceModule:
    """A ``MappingNet``; its input size (70, or 73 for the full modes) is read from the first conv."""
    from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig

    first_conv = next(value for key, value in state_dict.items() if key.endswith("weight") and value.ndim == 3)
    config = dataclasses.replace(MappingNetConfig(), coeff_dim=int(first_conv.shape[1]))
    return _loaded(MappingNet(config), state_dict, source)


def build_renderer(parts: Mapping[str, StateDict], source: str = "face renderer") -> TavceModule:
    """``CERLRenderer`` from parts kp_detector, mapping and generator.

    CERL is on exactly when the generator's weights hold the fusion layers.
    """
    from tavce.models.renderer.generator import load_inference_generator
    from tavce.models.renderer.keypoint_detector import KeypointDetector
    from tavce.models.renderer.renderer import CERLRenderer

    keypoint_detector = _loaded(KeypointDetector(), parts["kp_detector"], f"{source} keypoint detector")
    mapping = build_mapping(parts["mapping"], f"{source} MappingNet")
    generator = load_inference_generator(dict(parts["generator"]), source=f"{source} generator")
    return CERLRenderer.from_modules(keypoint_detector, mapping, generator)


def build_audio2coeff(audio2exp: StateDict, audio2pose: StateDict, source: str = "audio2coeff") -> TavceModule:
    """``SadTalkerAudio2Coeff`` (ExpNet + PoseVAE decoder) from the two converted parts."""
    from tavce.convert.audio2coeff import audio2coeff_state_dict
    from tavce.models.audio2coeff import SadTalkerAudio2Coeff

    return _loaded(SadTalkerAudio2Coeff(), audio2coeff_state_dict(audio2exp, audio2pose), source)


def build_relationship_encoder(state_dict: StateDict, source: str = "TAVCE audio encoder") -> TavceModule:
    """The TAVC audio encoder (Wav2Lip encoder + 512->128 projection) that gives CERL its relationship."""
    from tavce.models.tavc import TAVCAudioEncoder

    return _loaded(TAVCAudioEncoder(), state_dict, source)
