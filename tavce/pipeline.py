"""TalkingHeadPipeline: one portrait + one speech clip -> a talking-head video.

The pipeline only composes interface-typed components (see docs/architecture.md);
it owns no model maths. Everything before the renderer is computed for the whole
clip (cheap); frames are rendered in batches and streamed, so memory does not
grow with the clip's length.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tavce.audio import frame_windows, load_audio
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, RenderError
from tavce.types import FPS, AudioClip, AudioWindows, MotionCoefficients

if TYPE_CHECKING:
    from tavce.models.audio2coeff import Audio2Coeff
    from tavce.models.audio_encoder import AudioEncoder
    from tavce.models.renderer import MappingNet, RendererProtocol
    from tavce.preprocess import FaceLandmarker, PreparedSource, Preprocessor
    from tavce.types import AudioRelationship

__all__ = ["GenerationOptions", "TalkingHeadPipeline", "TalkingHeadResult"]

logger = logging.getLogger(__name__)

DEFAULT_REPO = "vinthony/SadTalker-V002rc"
CROP_MODES = ("crop", "extcrop", "resize", "full", "extfull")
FULL_MODES = ("full", "extfull")


@dataclass(frozen=True)
class GenerationOptions:
    """Everything a user can choose for one generation (the CLI fills it from its arguments).

    Attributes:
        mode: crop mode, one of crop, extcrop, resize, full, extfull (full modes paste back into the photo).
        still: keep the head pose of the photo; only the expression moves.
        pose_style: head-motion style, 0..45.
        expression_scale: multiplies the expression coefficients (0 = neutral, 1 = as predicted).
        seed: seed of the pose noise and blink placement; None draws a fresh one.
        batch_size: frames rendered together (memory grows with it, not with the clip length).
        face_box: (x0, y0, x1, y1) face box in photo pixels; skips face detection.
        ref_pose: (T_ref, 6) head-pose sequence whose motion is added to the generated pose.
        ref_eyeblink: (T_ref, 64) expression sequence replacing the reference expression (blinks).
        use_blink: add random eye blinks (ignored with ref_eyeblink).
        progress: show a progress bar while rendering.
    """

    mode: str = "crop"
    still: bool = False
    pose_style: int = 0
    expression_scale: float = 1.0
    seed: int | None = None
    batch_size: int = 4
    face_box: tuple[float, float, float, float] | None = None
    ref_pose: torch.Tensor | None = None
    ref_eyeblink: torch.Tensor | None = None
    use_blink: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise InvalidArgumentError(f"mode={self.mode!r}: must be one of {', '.join(CROP_MODES)}")
        if self.batch_size < 1:
            raise InvalidArgumentError(f"batch_size={self.batch_size}: must be at least 1")
        if self.face_box is not None:
            x0, y0, x1, y1 = (float(v) for v in self.face_box)
            if not (x1 > x0 and y1 > y0):
                raise InvalidArgumentError(f"face_box={self.face_box}: needs x0 < x1 and y0 < y1 (pixels)")


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) in [0, 1] -> (B, S, S, 3) uint8, rounding (quirk 26: the SadTalker convention)."""
    if not torch.isfinite(frames).all():
        raise RenderError(
            "the renderer produced NaN or infinite values; with float16/bfloat16 try dtype=torch.float32, "
            "otherwise check that the weights are complete"
        )
    scaled = (frames.float() * 255).round().clamp(0, 255).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def default_device_and_dtype(device: str | torch.device | None, dtype: str | torch.dtype | None):
    """Resolve user choices: CUDA when available, float16 on CUDA, float32 elsewhere.

    Raises:
        InvalidArgumentError: unknown device or dtype, or a device that is not available.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InvalidArgumentError(f"device={device!r}: not a torch device; use cpu, cuda, cuda:N or mps") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("device=cuda: no CUDA GPU is visible to torch; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError("device=mps: Metal is not available on this machine; use --device cpu")
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in ("float32", "float16", "bfloat16"):
            raise InvalidArgumentError(f"dtype={dtype!r}: use float32, float16 or bfloat16")
        dtype = getattr(torch, dtype)
    if dtype == torch.float16 and device.type == "cpu":
        raise InvalidArgumentError("dtype=float16 is not supported on the CPU; use float32 or bfloat16")
    return device, dtype


class TalkingHeadResult:
    """A planned talking-head video: coefficients are computed, frames are rendered on demand.

    Frames are produced lazily, batch by batch, so iterating :attr:`frames` or calling
    :meth:`save` keeps memory independent of the clip's length.

    Attributes:
        source: the prepared photo.
        audio: the driving audio (16 kHz mono).
        coefficients: per-frame motion coefficients (T frames).
        relationship: per-frame audio relationship for CERL, or None when CERL is off.
    """

    def __init__(
        self,
        pipeline: TalkingHeadPipeline,
        source: PreparedSource,
        audio: AudioClip,
        windows: AudioWindows,
        coefficients: MotionCoefficients,
        relationship: AudioRelationship | None,
        options: GenerationOptions,
    ) -> None:
        self._pipeline = pipeline
        self.source = source
        self.audio = audio
        self.windows = windows
        self.coefficients = coefficients
        self.relationship = relationship
        self.options = options

    @property
    def num_frames(self) -> int:
        """T = ⌊samples / 640⌋ video frames at 25 fps."""
        return self.coefficients.num_frames

    @property
    def fps(self) -> int:
        return FPS

    @property
    def frames(self) -> Iterator[np.ndarray]:
        """Yields (H, W, 3) uint8 RGB frames in order, rendered batch by batch."""
        return self._pipeline._render(self)

    def save(self, path: str | Path) -> Path:
        """Render and write an H.264 mp4 with the audio, streaming frames into the encoder.

        The destination is checked before rendering starts; the file is written to a
        temporary name and renamed only when complete.

        Raises:
            OutputError: the destination cannot be written.
        """
        from tavce.video import VideoWriter

        soundtrack = self.audio.source if Path(self.audio.source).is_file() else self.audio
        with VideoWriter(path, audio=soundtrack) as writer:
            for frame in self.frames:
                writer.write(frame)
        return writer.path


class TalkingHeadPipeline:
    """Portrait + speech -> talking-head video, composed of swappable components.

    Args:
        preprocessor: photo -> :class:`~tavce.preprocess.PreparedSource` and paste-back
            (:class:`~tavce.preprocess.Preprocessor`).
        audio2coeff: mel windows -> motion coefficients (:class:`~tavce.models.audio2coeff.Audio2Coeff`).
        renderer: coefficients -> frames (:class:`~tavce.models.renderer.RendererProtocol`),
            with the 70-dim MappingNet of the crop modes.
        full_mode_mapping: the 73-dim MappingNet used in ``full`` / ``extfull`` modes (official
            ``mapping_00109``); None makes those modes use ``renderer``'s MappingNet without the
            crop parameters.
        relationship_encoder: TAVC audio encoder giving the per-frame audio relationship that
            drives CERL; needed when the renderer has CERL weights, ignored otherwise.
    """

    def __init__(
        self,
        preprocessor: Preprocessor,
        audio2coeff: Audio2Coeff,
        renderer: RendererProtocol,
        *,
        full_mode_mapping: MappingNet | None = None,
        relationship_encoder: AudioEncoder | None = None,
        size: int = 256,
    ) -> None:
        if size not in (256, 512):
            raise InvalidArgumentError(f"size={size}: the renderers are trained at 256 or 512")
        self.preprocessor = preprocessor
        self.audio2coeff = audio2coeff
        self.renderer = renderer
        self.full_mode_mapping = full_mode_mapping
        self.relationship_encoder = relationship_encoder
        self.size = size
        if getattr(renderer, "has_cerl", False) and relationship_encoder is None:
            raise InvalidArgumentError(
                "renderer has CERL layers but no relationship_encoder was given; pass the TAVC audio encoder "
                "(TAVCE correlation checkpoint) or a renderer without CERL"
            )
        logger.info("CERL %s", "on (TAVCE renderer)" if self.has_cerl else "off (SadTalker renderer)")

    @property
    def has_cerl(self) -> bool:
        """Whether frames are rendered with the audio relationship (TAVCE weights)."""
        return bool(getattr(self.renderer, "has_cerl", False))

    # ------------------------------------------------------------------ components
    def components(self) -> dict[str, torch.nn.Module]:
        """The network components by name (what save_pretrained writes)."""
        named = {
            "audio2coeff": self.audio2coeff,
            "renderer": self.renderer,
            "face_recon": getattr(self.preprocessor, "face_recon", None),
            "full_mode_mapping": self.full_mode_mapping,
            "relationship_encoder": self.relationship_encoder,
        }
        return {name: module for name, module in named.items() if isinstance(module, torch.nn.Module)}

    @property
    def device(self) -> torch.device:
        return next(self.renderer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.renderer.parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> TalkingHeadPipeline:
        """Move the renderer (and the other networks) to ``device``; ``dtype`` applies to the renderer only.

        Audio2Coeff, the relationship encoder and the 3DMM network are small and stay in float32
        for exactness; the renderer dominates the cost and takes float16 / bfloat16 well.
        """
        device, dtype = default_device_and_dtype(device, dtype)
        for name, module in self.components().items():
            module.to(device=device, dtype=dtype if name in ("renderer", "full_mode_mapping") else torch.float32)
        return self

    # ------------------------------------------------------------------ weights
    @classmethod
    def from_pretrained(
        cls,
        weights: str | Path | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        size: int = 256,
        tavce_correlation: str | Path | None = None,
        tavce_facerender: str | Path | None = None,
        landmarker: FaceLandmarker | None = None,
    ) -> TalkingHeadPipeline:
        """Load a pipeline from a tavce folder / Hub repo, or from the official SadTalker files.

        Args:
            weights: a tavce weights folder (``pipeline_config.json``), a folder of official
                SadTalker files, or a Hub repo id of either; default ``vinthony/SadTalker-V002rc``.
                Official files are converted on load, downloading only what ``size`` needs.
            revision, cache_dir, local_files_only: Hub options (``HF_HUB_OFFLINE=1`` also works).
            size: 256 or 512, for official files (a tavce folder has its own size).
            tavce_correlation, tavce_facerender: the TAVCE release files; together they switch CERL on.
            landmarker: a :class:`~tavce.preprocess.FaceLandmarker`; default insightface if its
                model pack is installed, else dlib.

        Raises:
            WeightsNotFoundError: the weights cannot be found (the message says how to get them).
            IncompatibleWeightsError: a file does not fit tavce's components.
        """
        from tavce.components import load_components
        from tavce.convert.layout import locate_weights
        from tavce.convert.official import SADTALKER_REPO, load_official_components
        from tavce.preprocess import FacePreprocessor

        hub = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        location = SADTALKER_REPO if weights is None else weights
        layout, found = ("official", location) if tavce_facerender is not None else locate_weights(location, **hub)
        if layout == "tavce":
            components, constants = load_components(found)
            size = int(constants.get("crop_size", size))
        else:
            components = load_official_components(
                found, size=size, full_mode=True, tavce_correlation=tavce_correlation,
                tavce_facerender=tavce_facerender, **hub,
            ).components()
        missing = [name for name in ("face_recon", "audio2coeff", "renderer") if name not in components]
        if missing:
            raise IncompatibleWeightsError(
                f"{found}: no {', '.join(missing)} component; the folder is incomplete. Write it again with "
                "pipe.save_pretrained() or `tavce convert`"
            )
        return cls(
            FacePreprocessor(components["face_recon"], landmarker),
            components["audio2coeff"],
            components["renderer"],
            full_mode_mapping=components.get("full_mode_mapping"),
            relationship_encoder=components.get("relationship_encoder"),
            size=size,
        )

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the pipeline as a tavce weights folder (``pipeline_config.json`` + one folder per component)."""
        from tavce.components import save_components
        from tavce.convert.export import preprocessing_constants

        return save_components(folder, self.components(), preprocessing_constants(self.size))

    # ------------------------------------------------------------------ generation
    def __call__(self, image, audio, **options: Any) -> TalkingHeadResult:
        """Plan a video: prepare the photo, load the audio, predict the coefficients.

        Args:
            image: a path, PIL image, (H, W, 3) uint8 array or tensor, or a
                :class:`~tavce.preprocess.PreparedSource` prepared earlier (``mode`` is then ignored).
            audio: a path or file object (any format libsndfile reads, any rate), or an AudioClip.
            **options: fields of :class:`GenerationOptions` (mode, still, pose_style, expression_scale,
                seed, batch_size, face_box, ref_pose, ref_eyeblink, use_blink, progress).

        Returns:
            A :class:`TalkingHeadResult`; nothing is rendered until its frames are read or saved.
        """
        from tavce.preprocess import PreparedSource

        settings = GenerationOptions(**options)
        clip = audio if isinstance(audio, AudioClip) else load_audio(audio)
        # float64 mel reproduces the original's windows exactly; it is cheap next to the networks.
        windows = frame_windows(clip, dtype=torch.float64)
        if isinstance(image, PreparedSource):
            source = image
        else:
            source = self.preprocessor.prepare(image, settings.mode, self.size, face_box=settings.face_box)
        generator = torch.Generator().manual_seed(
            settings.seed if settings.seed is not None else int(torch.seed() % (2**63))
        )
        coefficients = self._coefficients(windows, source, settings, generator)
        relationship = None
        if self.has_cerl:
            from tavce.models.tavc import audio_relationships

            # Without inference mode the result would keep the encoder's autograd graph: every
            # activation of every window, O(T) memory held until the video is written.
            with torch.inference_mode():
                relationship = audio_relationships(windows, self.relationship_encoder)
        return TalkingHeadResult(self, source, clip, windows, coefficients, relationship, settings)

    def stream(self, image, audio, **options: Any) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 frames as they are rendered (same arguments as calling the pipeline)."""
        return self(image, audio, **options).frames

    def _coefficients(
        self, windows: AudioWindows, source: PreparedSource, settings: GenerationOptions, generator: torch.Generator
    ) -> MotionCoefficients:
        from tavce.models.audio2coeff import Audio2CoeffOptions

        audio2coeff_options = Audio2CoeffOptions(
            pose_style=settings.pose_style,
            expression_scale=settings.expression_scale,
            still=settings.still,
            use_blink=settings.use_blink,
            ref_pose=settings.ref_pose,
            ref_eyeblink=settings.ref_eyeblink,
        )
        with torch.inference_mode():
            return self.audio2coeff.generate(windows, source.coefficients, audio2coeff_options, generator=generator)

    def _renderer_for(self, source: PreparedSource) -> RendererProtocol:
        """The renderer with the MappingNet the crop mode needs (73-dim for full modes).

        With CERL the renderer keeps its own 70-dim MappingNet in every mode: TAVCE was
        fine-tuned with it and ships no 73-dim one, so the crop parameters are ignored.
        """
        if source.mode.pastes_back and self.full_mode_mapping is not None and not self.has_cerl:
            return type(self.renderer).from_modules(
                self.renderer.keypoint_detector, self.full_mode_mapping, self.renderer.generator
            )
        return self.renderer

    def _render(self, result: TalkingHeadResult) -> Iterator[np.ndarray]:
        from tqdm.auto import tqdm

        from tavce.models.renderer.renderer import semantic_windows
        from tavce.preprocess.crop import restore_aspect_size

        renderer = self._renderer_for(result.source)
        source = result.source
        semantics = result.coefficients.as_renderer_input()
        source_semantics = source.coefficients[: semantics.shape[1]]
        state = renderer.prepare_source(source.image[None], source_semantics)
        batch = result.options.batch_size
        total = result.num_frames
        aspect = None if source.mode.pastes_back else restore_aspect_size(source.geometry, source.size)
        with tqdm(total=total, unit="frame", disable=not result.options.progress, desc="rendering") as bar:
            for start in range(0, total, batch):
                stop = min(start + batch, total)
                windows = semantic_windows(semantics, start=start, stop=stop)
                relationship = None if result.relationship is None else result.relationship.differences[start:stop]
                with torch.inference_mode():
                    frames = _to_uint8(renderer.render(state, windows, relationship))
                if source.mode.pastes_back:
                    frames = self.preprocessor.paste_back(frames, source)
                for frame in frames:
                    yield frame if aspect is None else _resize(frame, aspect)
                bar.update(stop - start)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    width, height = size
    if (frame.shape[1], frame.shape[0]) == (width, height):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)

