"""3DMM coefficient network (Deep3DFaceRecon's ResNet-50 regressor)."""

from tavce.models.face_recon.network import (
    COEFFICIENT_LAYOUT,
    FaceReconConfig,
    FaceReconNet,
    FaceReconstructor,
    split_coefficients,
    source_coefficients,
)

__all__ = [
    "COEFFICIENT_LAYOUT",
    "FaceReconConfig",
    "FaceReconNet",
    "FaceReconstructor",
    "split_coefficients",
    "source_coefficients",
]
