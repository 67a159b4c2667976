"""FaceEnhancer: the pipeline's optional enhancer component (GFPGAN v1.4 + ParseNet mask).

Per batch of output frames: align each face to the FFHQ template from its five
points, restore all faces in one GFPGAN call, parse the restored faces in one
ParseNet call, and paste each back into its frame resized ×``upscale``
(:mod:`tavce.models.enhancer.face_geometry`). This is what SadTalker's
``--enhancer gfpgan`` does to every frame, with the face located by the caller
instead of a second face detector.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule
from tavce.models.enhancer.face_geometry import align_face, alignment_matrix, parsing_mask, paste_face
from tavce.models.enhancer.gfpgan import GFPGAN, GFPGANConfig, ModulatedConv2d
from tavce.models.enhancer.parsenet import ParseNet, ParseNetConfig
from tavce.models.renderer.precision import contiguous_state_dict, hold_conv_weights_in, preferred_memory_format
from tavce.constants import ENHANCER_UPSCALES

__all__ = ["FaceEnhancer", "FaceEnhancerConfig"]


@dataclass(frozen=True)
class FaceEnhancerConfig:
    """Attributes:
    upscale: output frames are ``upscale`` times the input frames' size (1 or 2).
    restorer: the GFPGAN network's sizes (its ``image_size`` is the aligned face size).
    parser: the ParseNet's sizes; None blends with a square mask instead of the parsed face.
    """

    upscale: int = 2
    restorer: GFPGANConfig = GFPGANConfig()
    parser: ParseNetConfig | None = ParseNetConfig()

    def __post_init__(self) -> None:
        if self.upscale not in ENHANCER_UPSCALES:
            raise InvalidArgumentError(f"FaceEnhancerConfig.upscale={self.upscale}: use one of {ENHANCER_UPSCALES}")


def _to_network(faces: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) in [-1, 1], on ``like``'s device and dtype (normalised in float32)."""
    tensor = torch.from_numpy(faces).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    return tensor.to(device=like.device, dtype=like.dtype)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) nominally [-1, 1] -> (B, S, S, 3) uint8, clamped and rounded in float32."""
    pixels = images.float().clamp(-1, 1).add(1).div(2).mul(255).round()
    return pixels.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()


class FaceEnhancer(TavceModule):
    """Restores the face in each frame and returns the frames upscaled.

    Runs in the dtype and on the device it is moved to; alignment and paste-back run on
    the CPU (OpenCV).
    """

    # GFPGAN takes float16 / bfloat16 well (its style modulation computes in float32 itself) and
    # dominates the cost of an enhanced frame, so the whole module follows the pipeline's dtype.
    keep_in_float32 = ()

    config_class = FaceEnhancerConfig

    def __init__(self, config: FaceEnhancerConfig | None = None) -> None:
        super().__init__(config)
        self.restorer = GFPGAN(self.config.restorer)
        self.parser = ParseNet(self.config.parser) if self.config.parser is not None else None
        self.register_state_dict_post_hook(contiguous_state_dict)
        self._lay_out_conv_weights()

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> FaceEnhancer:
        super()._apply(fn, recurse)
        self._lay_out_conv_weights()
        return self

    def _lay_out_conv_weights(self) -> None:
        """Hold the conv weights in the layout the networks' maps take for their dtype and device.

        GFPGAN and ParseNet run their maps channels-last where the kernels prefer it; a weight in
        another layout would be re-laid out by every conv call (bfloat16, 2-core Xeon, restorer and
        parser of one face: 3.7 s contiguous throughout, 2.2 s with channels-last maps only, 1.5 s
        with the weights channels-last too). The enhancer is never trained, so
        its weights are laid out once here, when it is built, moved or cast (not while threads
        enhance); what it saves stays contiguous.
        """
        weight = self.restorer.encoder_first.weight
        with torch.inference_mode():
            hold_conv_weights_in(self, preferred_memory_format(weight.detach()), also=(ModulatedConv2d,))

    @property
    def upscale(self) -> int:
        return self.config.upscale

    @property
    def face_size(self) -> int:
        return self.config.restorer.image_size

    def with_upscale(self, upscale: int) -> FaceEnhancer:
        """This enhancer, set to scale its output frames by ``upscale`` (1 or 2); the weights are unchanged."""
        self.config = dataclasses.replace(self.config, upscale=upscale)
        return self

    def enhance(
        self, frames: Sequence[np.ndarray], points: np.ndarray, *, generator: torch.Generator | None = None
    ) -> list[np.ndarray]:
        """Enhance a batch of frames.

        Args:
            frames: B frames, each (H, W, 3) uint8 RGB (sizes may differ).
            points: (B, 5, 2) five face points per frame, x right / y down in pixels
                (:func:`~tavce.models.enhancer.face_geometry.five_points` of the 68 landmarks).
            generator: draws the restorer's noise (one map per frame and layer); None uses its
                registered noise buffers.

        Returns:
            B frames, each (H·upscale, W·upscale, 3) uint8 RGB.

        Raises:
            InvalidArgumentError: ``points`` is not (B, 5, 2) for B frames.
        """
        points = np.asarray(points, dtype=np.float32)
        if points.shape != (len(frames), 5, 2):
            raise InvalidArgumentError(f"enhance: expected points of shape ({len(frames)}, 5, 2), got {points.shape}")
        if not len(frames):
            return []
        size = self.face_size
        matrices = [alignment_matrix(face_points, size) for face_points in points]
        crops = np.stack([align_face(frame, matrix, size) for frame, matrix in zip(frames, matrices)])
        weight = self.restorer.encoder_first.weight
        with torch.inference_mode():
            restored = _to_uint8(self.restorer(_to_network(crops, weight), generator=generator).image)
            masks = self._masks(restored)
        return [
            paste_face(frame, face, matrix, self.upscale, mask)
            for frame, face, matrix, mask in zip(frames, restored, matrices, masks)
        ]

    def _masks(self, restored: np.ndarray) -> list[np.ndarray | None]:
        """Soft face masks of the restored faces (B, S, S, 3) uint8; None each without a parser."""
        if self.parser is None:
            return [None] * len(restored)
        parse_size = self.parser.config.image_size
        if parse_size != self.face_size:
            restored = np.stack([cv2.resize(face, (parse_size, parse_size)) for face in restored])
        labels = self.parser.labels(_to_network(restored, self.parser.image_head.conv.weight)).cpu().numpy()
        return [parsing_mask(face_labels, self.face_size) for face_labels in labels]
