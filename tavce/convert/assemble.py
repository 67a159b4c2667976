"""Converted parts (tavce state dicts) -> loaded, eval-mode components.

The file converters (:mod:`tavce.convert.files`) give state dicts per part; here
each part is loaded strictly into its module (official sizes; the few sizes that
differ between official files, such as the MappingNet's 70 or 73 inputs, are read
from the weights) and the parts are composed into the pipeline's components.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

import torch

from tavce.models.base import TavceModule, load_state_dict_strict

if TYPE_CHECKING:
    from tavce.models.renderer.mapping_net import MappingNet

__all__ = [
    "build_audio2coeff",
    "build_enhancer",
    "build_mapping",
    "build_metric",
    "build_preprocessor",
    "build_renderer",
]

StateDict = Mapping[str, torch.Tensor]


ModuleT = TypeVar("ModuleT", bound=TavceModule)


def _loaded(module: ModuleT, state_dict: StateDict, source: str) -> ModuleT:
    load_state_dict_strict(module, dict(state_dict), source=source)
    return module.eval()


def build_preprocessor(face_recon: StateDict, source: str = "face_3drecon") -> TavceModule:
    """``FacePreprocessor`` around the 3DMM coefficient network (``FaceReconNet``, official ResNet-50 sizes)."""
    from tavce.models.face_recon import FaceReconNet
    from tavce.preprocess import FacePreprocessor

    return FacePreprocessor(face_recon=_loaded(FaceReconNet(), face_recon, source))


def build_mapping(state_dict: StateDict, source: str = "mapping") -> MappingNet:
    """A ``MappingNet``; its input size (70, or 73 for the full modes) is read from the first conv."""
    from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig

    first_conv = next(value for key, value in state_dict.items() if key.endswith("weight") and value.ndim == 3)
    config = dataclasses.replace(MappingNetConfig(), coeff_dim=int(first_conv.shape[1]))
    return _loaded(MappingNet(config), state_dict, source)


def build_renderer(
    parts: Mapping[str, StateDict],
    *,
    full_mode_mapping: StateDict | None = None,
    image_size: int = 256,
    source: str = "face renderer",
) -> TavceModule:
    """``CERLRenderer`` from parts kp_detector, mapping and generator (+ the 73-input full-mode MappingNet).

    CERL is on exactly when the generator's weights hold the fusion layers.
    """
    from tavce.models.renderer.generator import load_inference_generator
    from tavce.models.renderer.keypoint_detector import KeypointDetector
    from tavce.models.renderer.renderer import CERLRenderer

    keypoint_detector = _loaded(KeypointDetector(), parts["kp_detector"], f"{source} keypoint detector")
    mapping = build_mapping(parts["mapping"], f"{source} MappingNet")
    generator = load_inference_generator(dict(parts["generator"]), source=f"{source} generator")
    full_mapping = None if full_mode_mapping is None else build_mapping(full_mode_mapping, f"{source} full-mode MappingNet")
    return CERLRenderer.from_modules(keypoint_detector, mapping, generator, full_mapping, image_size)


def build_audio2coeff(audio2exp: StateDict, audio2pose: StateDict, source: str = "audio2coeff") -> TavceModule:
    """``SadTalkerAudio2Coeff`` (ExpNet + PoseVAE decoder) from the two converted parts."""
    from tavce.convert.audio2coeff import audio2coeff_state_dict
    from tavce.models.audio2coeff import SadTalkerAudio2Coeff

    return _loaded(SadTalkerAudio2Coeff(), audio2coeff_state_dict(audio2exp, audio2pose), source)


def build_metric(parts: Mapping[str, StateDict], source: str = "TAVCE correlation checkpoint") -> TavceModule:
    """``TAVCMetric`` from parts tavc_audio_encoder (CERL's relationship) and mouth_encoder."""
    from tavce.models.tavc import MouthEncoder, TAVCAudioEncoder, TAVCMetric

    return TAVCMetric(
        audio_encoder=_loaded(TAVCAudioEncoder(), parts["tavc_audio_encoder"], f"{source} audio encoder"),
        mouth_encoder=_loaded(MouthEncoder(), parts["mouth_encoder"], f"{source} mouth encoder"),
    ).eval()


def build_enhancer(restorer: StateDict, parser: StateDict, *, upscale: int = 2, source: str = "face enhancer") -> TavceModule:
    """``FaceEnhancer`` (GFPGAN v1.4 + ParseNet at their official sizes) from parts restorer and parser."""
    from tavce.models.enhancer import FaceEnhancer, FaceEnhancerConfig

    state = {f"restorer.{key}": value for key, value in restorer.items()}
    state |= {f"parser.{key}": value for key, value in parser.items()}
    return _loaded(FaceEnhancer(FaceEnhancerConfig(upscale=upscale)), state, source)
