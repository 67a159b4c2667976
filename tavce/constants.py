"""Numbers and names every layer shares, free of heavy imports (the CLI builds its parser from them).

The value types built on them live in :mod:`tavce.types`, which re-exports all of these.
"""

from __future__ import annotations

from enum import Enum

from tavce.errors import InvalidArgumentError

__all__ = [
    "SAMPLE_RATE",
    "FPS",
    "SAMPLES_PER_FRAME",
    "MEL_BINS",
    "MEL_STEPS_PER_WINDOW",
    "MOTION_DIM",
    "SOURCE_COEFF_DIM",
    "RENDER_SIZES",
    "DTYPE_NAMES",
    "LANDMARKER_NAMES",
    "CropMode",
    "CROP_MODES",
    "CROP_ONLY_MODES",
    "ENHANCERS",
    "ENHANCER_UPSCALES",
]

SAMPLE_RATE = 16_000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MEL_BINS = 80
MEL_STEPS_PER_WINDOW = 16
MOTION_DIM = 70  # expression 64 + pose 6
SOURCE_COEFF_DIM = 73  # motion 70 + crop parameters (scale, tx, ty)
RENDER_SIZES = (256, 512)
"""Sides S of the square working image the networks see (and of the official weights)."""
DTYPE_NAMES = ("float32", "float16", "bfloat16")
"""Precisions the networks run in, by torch's names."""
LANDMARKER_NAMES = ("auto", "insightface", "dlib")
"""Face landmark backends by name; ``auto`` is insightface when its model pack is installed, else dlib."""



class CropMode(str, Enum):
    """What part of the photo the networks see, and whether the result is pasted back into the photo."""

    CROP = "crop"  # tight face box
    EXTCROP = "extcrop"  # bordered crop (hair, shoulders)
    RESIZE = "resize"  # whole photo squashed to a square
    FULL = "full"  # tight box, pasted back into the photo
    EXTFULL = "extfull"  # bordered crop, pasted back into the photo

    @classmethod
    def parse(cls, mode: str | CropMode) -> CropMode:
        try:
            return cls(mode)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise InvalidArgumentError(f"mode={mode!r}: unknown crop mode; choose one of {choices}") from None

    @property
    def extended(self) -> bool:
        """Ext modes keep the whole bordered crop instead of cutting the tight box out of it."""
        return self in (CropMode.EXTCROP, CropMode.EXTFULL)

    @property
    def pastes_back(self) -> bool:
        return self in (CropMode.FULL, CropMode.EXTFULL)



CROP_MODES = tuple(mode.value for mode in CropMode)
"""How the photo becomes the working image; the full modes paste the animated crop back into the photo."""
CROP_ONLY_MODES = tuple(mode.value for mode in CropMode if not mode.pastes_back)
"""The modes whose output is the working image itself (no paste-back): training data and evaluation use these."""

ENHANCERS = ("gfpgan",)
"""Face enhancers a pipeline can load by name (``from_pretrained(enhancer=...)``, ``--enhancer``)."""

ENHANCER_UPSCALES = (1, 2)
"""Scales of the enhanced frames: 2 as SadTalker (twice the width and height), or 1 (same size)."""
