"""Face renderer: keypoints, MappingNet, generator, CERL.

:class:`CERLRenderer` is the component the pipeline uses; the networks it composes
and the training-only ones (head-pose estimator, discriminator) live in their own
submodules.
"""

from tavce.models.renderer.discriminator import MultiScaleDiscriminator
from tavce.models.renderer.generator import GeneratorConfig, OcclusionAwareSPADEGenerator
from tavce.models.renderer.head_pose_estimator import HeadPoseEstimator
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig
from tavce.models.renderer.keypoint_transform import bins_to_degrees, rotation_matrix, transform_keypoints
from tavce.models.renderer.mapping_net import HeadMotion, MappingNet, MappingNetConfig
from tavce.models.renderer.renderer import (
    CERLRenderer,
    CERLRendererConfig,
    Renderer,
    SourceState,
    semantic_windows,
)

__all__ = [
    "CERLRenderer",
    "CERLRendererConfig",
    "GeneratorConfig",
    "HeadMotion",
    "HeadPoseEstimator",
    "KeypointDetector",
    "KeypointDetectorConfig",
    "MappingNet",
    "MappingNetConfig",
    "MultiScaleDiscriminator",
    "OcclusionAwareSPADEGenerator",
    "Renderer",
    "SourceState",
    "bins_to_degrees",
    "rotation_matrix",
    "semantic_windows",
    "transform_keypoints",
]
