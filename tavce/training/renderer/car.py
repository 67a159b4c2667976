"""CAR on generated frames: find the generated mouth, crop it, compare its motion with the audio's.

L_CAR = w · mean_b[1 − cos²(δa, δv̂)], δa = a_j − a_{j+1} from the frozen audio encoder on the
mel windows of frames j and j+1, δv̂ = v(real mouth j) − v(generated mouth j+1) from the
frozen mouth encoder (:class:`~tavce.training.car.CARLoss`, w = 0.1).

The generated mouth centre is the median of landmarks 48–67 that a
:class:`~tavce.preprocess.FaceLandmarker` finds on the generated frame (uint8 RGB, no
gradient; the original handed its detector an RGB array where it expected BGR — here the
landmarker gets RGB, as its interface says). The crops are the stage-2 mouth crops
(72×72 box, bilinear to the mouth encoder's input size, [−1, 1]); the crop indices are
constants, so the gradient reaches the generator only through the generated crop's pixels.

When the landmarker finds no face on some generated frame of the batch, the original
drops the CAR outputs of the whole batch (a bare ``except``); so does
:class:`GeneratedMouthCAR`, counting such batches in :attr:`GeneratedMouthCAR.skipped_batches`.
The other losses of the batch are unaffected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tavce.errors import FaceNotDetectedError, InvalidArgumentError
from tavce.models.tavc import TemporalCorrelationMetric
from tavce.preprocess.landmarks import FaceLandmarker
from tavce.preprocess.mouth import MOUTH_CROP_SIZE, crop_mouths, mouth_centre
from tavce.training.car import CARLoss

__all__ = ["CAROutput", "GeneratedMouthCAR", "locate_mouths", "mouth_crop_size"]

logger = logging.getLogger(__name__)


def mouth_crop_size(metric: TemporalCorrelationMetric) -> int:
    """The mouth-crop side the metric's mouth encoder takes (its ``config.image_size``; 112 by default)."""
    encoder = getattr(metric, "mouth_encoder", None)
    return int(getattr(getattr(encoder, "config", None), "image_size", MOUTH_CROP_SIZE))


def locate_mouths(landmarker: FaceLandmarker, frames: torch.Tensor) -> torch.Tensor | None:
    """(B, 2) int64 (x, y) mouth centres of the best-scoring face in each frame, or None if one frame has none.

    Args:
        landmarker: detects 68 landmarks in (H, W, 3) uint8 RGB images.
        frames: (B, 3, H, W) in [0, 1] (not differentiated).
    """
    pixels = (frames.detach().clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    centres = []
    for image in pixels:
        try:
            faces = landmarker.detect(np.ascontiguousarray(image))
        except FaceNotDetectedError:
            faces = []
        if not faces:
            return None
        best = max(faces, key=lambda face: face.score)
        centres.append(mouth_centre(best.landmarks))
    return torch.tensor(centres, dtype=torch.int64, device=frames.device)


@dataclass
class CAROutput:
    """One batch's CAR term.

    Attributes:
        loss: the weighted scalar, or None when the batch was skipped (no face on a generated frame).
        generated_centres: (B, 2) detected mouth centres of the generated frames, or None when skipped.
        generated_mouths: (B, 3, s, s) generated mouth crops in [−1, 1] (differentiable), or None.
    """

    loss: torch.Tensor | None
    generated_centres: torch.Tensor | None = None
    generated_mouths: torch.Tensor | None = None

    @property
    def skipped(self) -> bool:
        return self.loss is None


class GeneratedMouthCAR(nn.Module):
    """CAR between the previous real frame and the generated frame, with the mouth found by a landmarker.

    Args:
        metric: the frozen stage-1 metric (kept in eval mode, no gradient to its weights).
        landmarker: 68-point landmarks on generated frames (e.g. the preprocessor's).
        weight: the CAR weight (0.1).
    """

    def __init__(self, metric: TemporalCorrelationMetric, landmarker: FaceLandmarker, weight: float) -> None:
        super().__init__()
        self.car = CARLoss(metric, weight)
        self.landmarker = landmarker
        self.crop_size = mouth_crop_size(metric)
        self.applied_batches = 0
        self.skipped_batches = 0

    def forward(
        self,
        audio_relationship: torch.Tensor,
        previous_frames: torch.Tensor,
        previous_centres: torch.Tensor,
        generated_frames: torch.Tensor,
    ) -> CAROutput:
        """The CAR term of one batch.

        Args:
            audio_relationship: (B, D) factors δa = a_j − a_{j+1} (no gradient).
            previous_frames: (B, 3, H, W) real frames j in [0, 1].
            previous_centres: (B, 2) their (x, y) mouth centres from the dataset.
            generated_frames: (B, 3, H, W) predictions of frame j+1 in [0, 1] (differentiable).
        """
        if previous_frames.shape != generated_frames.shape:
            raise InvalidArgumentError(
                f"CAR: previous frames {tuple(previous_frames.shape)} and generated frames "
                f"{tuple(generated_frames.shape)} must have the same shape"
            )
        centres = locate_mouths(self.landmarker, generated_frames)
        if centres is None:
            self.skipped_batches += 1
            logger.debug("CAR skipped: no face on a generated frame (%d batches so far)", self.skipped_batches)
            return CAROutput(loss=None)
        previous_mouths = crop_mouths(previous_frames, previous_centres, crop_size=self.crop_size)
        generated_mouths = crop_mouths(generated_frames, centres, crop_size=self.crop_size)
        self.applied_batches += 1
        return CAROutput(self.car(audio_relationship, previous_mouths, generated_mouths), centres, generated_mouths)
