"""Face enhancer (GFPGAN v1.4 restoration with a ParseNet blending mask): networks, geometry, component.

:class:`FaceEnhancer` is the pipeline's optional ``enhancer`` component; the networks
it composes (:class:`GFPGAN`, :class:`ParseNet`) and the alignment / paste-back
functions (:mod:`tavce.models.enhancer.face_geometry`) are usable on their own.
"""

from tavce.models.enhancer.enhancer import UPSCALES, FaceEnhancer, FaceEnhancerConfig
from tavce.models.enhancer.face_geometry import (
    align_face,
    alignment_matrix,
    five_points,
    inverse_alignment,
    parsing_mask,
    paste_face,
)
from tavce.models.enhancer.gfpgan import GFPGAN, GFPGANConfig, GFPGANOutput
from tavce.models.enhancer.parsenet import FACE_LABELS, ParseNet, ParseNetConfig

__all__ = [
    "FACE_LABELS",
    "GFPGAN",
    "GFPGANConfig",
    "GFPGANOutput",
    "FaceEnhancer",
    "FaceEnhancerConfig",
    "ParseNet",
    "ParseNetConfig",
    "UPSCALES",
    "align_face",
    "alignment_matrix",
    "five_points",
    "inverse_alignment",
    "parsing_mask",
    "paste_face",
]
