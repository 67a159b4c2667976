"""The one place that maps a golden case name to the check that reproduces it.

Values are "module:function" inside ``tests.golden.checks``; a case without an
entry, or an entry naming a missing check, fails (every component is built).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

CHECKS: dict[str, str] = {
    # audio front-end
    "mel_spectrogram": "audio:check_mel_spectrogram",
    "mel_spectrogram_odd_length": "audio:check_mel_spectrogram",
    "audio_windows": "audio:check_audio_windows",
    # Audio2Coeff
    "audio2exp": "audio2coeff:check_audio2exp",
    "audio2pose": "audio2coeff:check_audio2pose",
    "audio2pose_short": "audio2coeff:check_audio2pose",
    # renderer
    "kp_detector": "renderer:check_kp_detector",
    "he_estimator": "renderer:check_he_estimator",
    "mapping": "renderer:check_mapping",
    "keypoint_transformation": "renderer:check_keypoint_transformation",
    "generator": "renderer:check_generator",
    "generator_small": "renderer:check_generator",
    "generator_cerl": "renderer:check_generator",
    "generator_cerl_small": "renderer:check_generator",
    "cerl_fusion": "renderer:check_cerl_fusion",
    "animation": "renderer:check_animation",
    "animation_tavce": "renderer:check_animation",
    "discriminator": "renderer:check_discriminator",
    # TAVC metric
    "tavc_audio_encoder": "tavc:check_audio_encoder",
    "tavc_image_encoder": "tavc:check_image_encoder",
    "tavc_correlation": "tavc:check_correlation",
    "audio_correlation": "tavc:check_audio_correlation",
    # preprocessing
    "crop_align": "preprocess:check_crop_align",
    "crop_align_edge": "preprocess:check_crop_align",
    "align_img": "preprocess:check_align_img",
    "align_img_edge": "preprocess:check_align_img",
    "face_recon": "preprocess:check_face_recon",
    # face enhancer
    "gfpgan": "enhancer:check_gfpgan",
    "gfpgan_small": "enhancer:check_gfpgan",
    "parsenet": "enhancer:check_parsenet",
    "face_restore_geometry": "enhancer:check_face_restore_geometry",
    "face_restore_geometry_x1": "enhancer:check_face_restore_geometry",
}


def resolve(case_name: str) -> Callable:
    """The check function for ``case_name``.

    Raises:
        KeyError: the case is unknown (a new case must be added to CHECKS).
        ImportError / AttributeError: its check module or function is broken or missing.
    """
    module_name, function_name = CHECKS[case_name].split(":")
    return getattr(importlib.import_module(f"tests.golden.checks.{module_name}"), function_name)
