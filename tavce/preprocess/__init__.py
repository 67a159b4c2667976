"""Source-image preprocessing: face landmarks, crop modes, 3DMM coefficients, paste-back.

See docs/preprocess.md. Typical use::

    preprocessor = FacePreprocessor(face_recon=face_recon_net)  # landmarker picked automatically
    source = preprocessor.prepare("photo.jpg", mode="full")    # once per photo
    source.save("photo.prepared.safetensors")
    video_frames = preprocessor.restore_frames(rendered_frames, source)  # pasted into the photo
"""

from tavce.preprocess.alignment import AlignedFace, align_for_reconstruction, flip_landmarks_y
from tavce.preprocess.crop import (
    compute_crop_geometry,
    crop_frame,
    crop_working_image,
    restore_aspect_size,
)
from tavce.preprocess.landmarks import (
    DlibLandmarker,
    Face,
    FaceLandmarker,
    InsightFaceLandmarker,
    LandmarkerError,
    default_landmarker,
)
from tavce.preprocess.mouth import crop_mouth, crop_mouths, mouth_box, mouth_centre
from tavce.preprocess.paste import paste_back
from tavce.preprocess.preprocessor import (
    AcceptsLandmarker,
    FacePreprocessor,
    FacePreprocessorConfig,
    Preprocessor,
    ReadsReferenceVideos,
)
from tavce.types import CropGeometry, CropMode, PreparedSource  # re-exported: their home is tavce.types

__all__ = [
    "AcceptsLandmarker",
    "ReadsReferenceVideos",
    "AlignedFace",
    "CropGeometry",
    "CropMode",
    "DlibLandmarker",
    "Face",
    "FaceLandmarker",
    "FacePreprocessor",
    "FacePreprocessorConfig",
    "InsightFaceLandmarker",
    "LandmarkerError",
    "PreparedSource",
    "Preprocessor",
    "align_for_reconstruction",
    "compute_crop_geometry",
    "crop_mouth",
    "crop_mouths",
    "crop_frame",
    "crop_working_image",
    "default_landmarker",
    "flip_landmarks_y",
    "mouth_box",
    "mouth_centre",
    "paste_back",
    "restore_aspect_size",
]
