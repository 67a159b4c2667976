"""TalkingHeadPipeline: one portrait + one speech clip -> a talking-head video.

The pipeline only composes interface-typed components (see docs/architecture.md);
it owns no model maths. Everything before the renderer is computed for the whole
clip (cheap); frames are rendered in batches and streamed, so memory does not
grow with the clip's length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from tavce.audio import frame_windows, load_audio
from tavce.constants import ENHANCER_UPSCALES, ENHANCERS
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, TavceError, WeightsNotFoundError
from tavce.models.base import module_device
from tavce.models.renderer.precision import cpu_supports_bfloat16
from tavce.options import GenerationOptions
from tavce.types import FPS, AudioClip, AudioWindows, MotionCoefficients

if TYPE_CHECKING:
    from tavce.models.audio2coeff import Audio2Coeff
    from tavce.models.enhancer import FaceEnhancer
    from tavce.preprocess.tracking import FaceTracker
    from tavce.models.renderer import Renderer
    from tavce.models.tavc import TemporalCorrelationMetric
    from tavce.preprocess import FaceLandmarker, PreparedSource, Preprocessor
    from tavce.types import AudioRelationship

__all__ = ["GenerationOptions", "TalkingHeadPipeline", "TalkingHeadResult"]

logger = logging.getLogger(__name__)

RENDER_AHEAD_BATCHES = 2
"""Rendered batches that may wait for the paste-back and the encoder (tavce.background.iterate_ahead)."""


def default_device_and_dtype(
    device: str | torch.device | None, dtype: str | torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
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
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_supports_bfloat16():
        # Without native bf16 instructions oneDNN falls back to reference kernels 100x+ slower than float32.
        logger.warning("dtype=bfloat16: this CPU has no native bfloat16 support; rendering in float32 instead")
        dtype = torch.float32
    return device, cast(torch.dtype, dtype)


def _wants_gfpgan(components: dict[str, Any], enhancer_weights: Any, enhancer_upscale: int | None) -> bool:
    """Whether GFPGAN is asked for by name (or by its weights); removes the name from ``components``."""
    if enhancer_upscale is not None and enhancer_upscale not in ENHANCER_UPSCALES:
        raise InvalidArgumentError(f"enhancer_upscale={enhancer_upscale!r}: use one of {ENHANCER_UPSCALES}")
    enhancer = components.get("enhancer")
    if isinstance(enhancer, str):
        if enhancer not in ENHANCERS:
            raise InvalidArgumentError(
                f"enhancer={enhancer!r}: unknown enhancer; use one of {', '.join(ENHANCERS)} or pass an instance"
            )
        del components["enhancer"]
        return True
    if enhancer is not None and enhancer_weights is not None:
        raise InvalidArgumentError("enhancer_weights= loads GFPGAN; it cannot be combined with an enhancer instance")
    return enhancer_weights is not None


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
        """A new iterator over the (H, W, 3) uint8 RGB frames, rendered batch by batch.

        Nothing is cached: each access renders the clip again (same frames: the coefficients
        are fixed), so keep the frames you need, or call :meth:`save` once.
        """
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

    Each argument is a component behind an interface (docs/components.md); the pipeline
    only composes them. ``TalkingHeadPipeline(**pipe.components)`` rebuilds a pipeline,
    so one component is replaced with ``TalkingHeadPipeline(**{**pipe.components, "renderer": mine})``
    or ``from_pretrained(folder, renderer=mine)``.

    Args:
        preprocessor: photo -> :class:`~tavce.preprocess.PreparedSource`, rendered frames ->
            video frames (:class:`~tavce.preprocess.Preprocessor`).
        audio2coeff: mel windows -> motion coefficients (:class:`~tavce.models.audio2coeff.Audio2Coeff`).
        renderer: prepared source + coefficients -> frames (:class:`~tavce.models.renderer.Renderer`).
        metric: the temporal correlation metric whose per-frame audio relationship drives CERL
            (:class:`~tavce.models.tavc.TemporalCorrelationMetric`); optional, needed exactly when
            ``renderer.has_cerl``.
        enhancer: restores the face of every output frame and upscales the frames
            (:class:`~tavce.models.enhancer.FaceEnhancer`, GFPGAN v1.4); optional. A pipeline with
            one enhances unless a call passes ``enhance=False``.

    Raises:
        InvalidArgumentError: a renderer with CERL and no metric.
    """

    def __init__(
        self,
        preprocessor: Preprocessor,
        audio2coeff: Audio2Coeff,
        renderer: Renderer,
        metric: TemporalCorrelationMetric | None = None,
        enhancer: FaceEnhancer | None = None,
    ) -> None:
        if renderer.has_cerl and metric is None:
            raise InvalidArgumentError(
                "renderer has CERL layers but no metric was given; pass the TAVC metric (TAVCE correlation "
                "checkpoint) as metric=, or a renderer without CERL"
            )
        self.preprocessor = preprocessor
        self.audio2coeff = audio2coeff
        self.renderer = renderer
        self.metric = metric
        self.enhancer = enhancer
        logger.info("CERL %s", "on (TAVCE renderer)" if self.has_cerl else "off (SadTalker renderer)")

    @property
    def has_cerl(self) -> bool:
        """Whether frames are rendered with the audio relationship (TAVCE weights)."""
        return self.renderer.has_cerl

    @property
    def size(self) -> int:
        """S, the side of the working image the renderer draws (256 or 512)."""
        return self.renderer.image_size

    # ------------------------------------------------------------------ components
    @property
    def components(self) -> dict[str, Any]:
        """Every component by constructor argument name, optional ones as None when absent."""
        from tavce.components import COMPONENT_NAMES

        return {name: getattr(self, name) for name in COMPONENT_NAMES}

    @property
    def device(self) -> torch.device:
        """Where the renderer computes (see :meth:`to`)."""
        return module_device(self.renderer)

    @property
    def dtype(self) -> torch.dtype:
        """The renderer's floating-point type (float32 for a renderer without parameters)."""
        if isinstance(self.renderer, torch.nn.Module):
            for parameter in self.renderer.parameters():
                return parameter.dtype
        return torch.float32

    def to(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> TalkingHeadPipeline:
        """Move every ``nn.Module`` component to ``device``; ``dtype`` applies to the renderer and the enhancer.

        The other networks are small and stay in float32 for exactness; the renderer and the
        enhancer dominate the cost and take float16 / bfloat16 well. ``device`` defaults to CUDA when available,
        ``dtype`` to float16 on CUDA and float32 elsewhere (bfloat16 on a CPU without native
        support falls back to float32, with a warning). Components that are not modules manage
        their own device.
        """
        device, dtype = default_device_and_dtype(device, dtype)
        for name, component in self.components.items():
            if isinstance(component, torch.nn.Module):
                component.to(device=device, dtype=dtype if name in ("renderer", "enhancer") else torch.float32)
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
        enhancer_weights: str | Path | None = None,
        enhancer_upscale: int | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **components: Any,
    ) -> TalkingHeadPipeline:
        """Load a pipeline from a tavce folder / Hub repo, or from the official SadTalker files.

        Args:
            weights: a tavce weights folder (``pipeline_config.json``), a folder of official
                SadTalker files, or a Hub repo id of either; default ``vinthony/SadTalker-V002rc``.
                Official files are converted on load, downloading only what ``size`` needs.
            revision, cache_dir, local_files_only: Hub options (``HF_HUB_OFFLINE=1`` also works).
            size: 256 or 512, for official files (a tavce folder has its own size).
            tavce_correlation, tavce_facerender: the TAVCE release files; together they switch CERL on.
            landmarker: a :class:`~tavce.preprocess.FaceLandmarker` for the preprocessor; default
                insightface if its model pack is installed, else dlib.
            enhancer_weights: the face enhancer's weights (``enhancer="gfpgan"``): a folder holding
                ``GFPGANv1.4.pth`` and ``parsing_parsenet.pth``, the GFPGAN file, or a Hub repo id
                (see :func:`tavce.convert.official.load_enhancer`).
            enhancer_upscale: 1 or 2 (default 2, as SadTalker): the enhanced frames' scale.
            device, dtype: where and in which precision to run (see :meth:`to`); default: left on
                the CPU in float32.
            **components: replacements by component name (``preprocessor``, ``audio2coeff``,
                ``renderer``, ``metric``, ``enhancer``); a replaced component is not loaded from
                ``weights``. ``enhancer="gfpgan"`` loads GFPGAN v1.4 from ``enhancer_weights``
                (or keeps the weights folder's own enhancer).

        Raises:
            WeightsNotFoundError: the weights cannot be found (the message says how to get them).
            IncompatibleWeightsError: a file does not fit tavce's components, or lacks a required one.
            InvalidArgumentError: an unknown component name.
        """
        from tavce import DEFAULT_REPO
        from tavce.components import COMPONENT_NAMES, OPTIONAL_COMPONENTS, load_components
        from tavce.convert.layout import locate_weights
        from tavce.convert.official import load_official_components

        unknown = sorted(set(components) - set(COMPONENT_NAMES))
        if unknown:
            raise InvalidArgumentError(
                f"from_pretrained: unknown arguments {unknown}; components are {', '.join(COMPONENT_NAMES)}"
            )
        wants_gfpgan = _wants_gfpgan(components, enhancer_weights, enhancer_upscale)
        hub: dict[str, Any] = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        location = DEFAULT_REPO if weights is None else weights
        layout, found = ("official", location) if tavce_facerender is not None else locate_weights(location, **hub)
        loaded: dict[str, Any]
        if layout == "tavce":
            skip = set(components) | ({"enhancer"} if enhancer_weights is not None else set())
            loaded, _ = load_components(found, skip=skip)
        else:
            loaded = load_official_components(
                found, size=size, full_mode=True, tavce_correlation=tavce_correlation,
                tavce_facerender=tavce_facerender, **hub,
            ).components
        loaded |= components
        if enhancer_weights is not None:
            from tavce.convert.official import load_enhancer

            loaded["enhancer"] = load_enhancer(
                enhancer_weights, upscale=enhancer_upscale or 2, cache_dir=cache_dir, local_files_only=local_files_only
            )
        elif wants_gfpgan and loaded.get("enhancer") is None:
            raise WeightsNotFoundError(
                f"enhancer='gfpgan': {found} holds no enhancer; pass enhancer_weights= (a folder with GFPGANv1.4.pth "
                "and parsing_parsenet.pth, or a Hub repo id holding them)"
            )
        elif enhancer_upscale is not None and loaded.get("enhancer") is not None:
            loaded["enhancer"].with_upscale(enhancer_upscale)
        missing = [name for name in COMPONENT_NAMES if name not in OPTIONAL_COMPONENTS and loaded.get(name) is None]
        if missing:
            raise IncompatibleWeightsError(
                f"{found}: no {', '.join(missing)} component; the folder is incomplete. Write it again with "
                "pipe.save_pretrained() or `tavce convert`, or pass the component: from_pretrained(..., "
                f"{missing[0]}=...)"
            )
        if landmarker is not None:
            preprocessor = loaded["preprocessor"]
            # Looked up on the class: reading FacePreprocessor.landmarker would build the default backend.
            if not (hasattr(type(preprocessor), "landmarker") or "landmarker" in getattr(preprocessor, "__dict__", {})):
                raise InvalidArgumentError(
                    f"landmarker: the preprocessor {type(loaded['preprocessor']).__name__} takes no landmarker; "
                    "give it yours when you build it"
                )
            loaded["preprocessor"].landmarker = landmarker
        pipeline = cls(**cast(dict[str, Any], {name: loaded.get(name) for name in COMPONENT_NAMES}))
        if device is not None or dtype is not None:
            pipeline.to(device, dtype)
        return pipeline

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the pipeline as a tavce weights folder (``pipeline_config.json`` + one folder per component).

        Raises:
            ComponentNotSerializableError: a component is not a
                :class:`~tavce.models.base.TavceModule` (nothing is written then).
        """
        from tavce.components import save_components
        from tavce.convert.export import preprocessing_constants

        return save_components(folder, self.components, preprocessing_constants(self.size))

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

        settings = GenerationOptions.from_mapping(options)
        if settings.enhance and self.enhancer is None:
            raise InvalidArgumentError(
                "enhance=True: this pipeline has no enhancer; load one with from_pretrained(..., enhancer='gfpgan', "
                "enhancer_weights=...) or pass enhancer= to the pipeline"
            )
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
            # Without inference mode the result would keep the encoder's autograd graph: every
            # activation of every window, O(T) memory held until the video is written.
            with torch.inference_mode():
                relationship = cast("TemporalCorrelationMetric", self.metric).audio_relationships(windows)
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

    def _render(self, result: TalkingHeadResult) -> Iterator[np.ndarray]:
        from tqdm.auto import tqdm

        from tavce.background import iterate_ahead
        from tavce.models.renderer.acceleration import choose_batch_size

        total, batch = result.num_frames, result.options.batch_size
        with torch.inference_mode():
            state = self.renderer.prepare_source(result.source)
            if batch is None:
                batch = choose_batch_size(
                    lambda: self.renderer.render(state, result.coefficients, 0, 1, result.relationship), self.device
                )

        def rendered_batches() -> Iterator[torch.Tensor]:
            # Runs in a background thread, a batch or two ahead of the paste-back and the encoder.
            for start in range(0, total, batch):
                with torch.inference_mode():
                    # Copied to the CPU here, not by the consumer: on a GPU a copy issued from the other
                    # thread would wait for the next batch's kernels, queued meanwhile on the same stream.
                    frames = self.renderer.render(
                        state, result.coefficients, start, min(start + batch, total), result.relationship
                    ).cpu()
                # Yielded outside inference_mode: closing this generator from the consumer's thread must
                # not run the mode's exit (and reset its state) there.
                yield frames

        progress = result.options.progress
        callback = progress if callable(progress) else None
        tracker: FaceTracker | None = None
        done = 0
        with tqdm(total=total, unit="frame", disable=progress is not True, desc="rendering") as bar:
            for frames in iterate_ahead(rendered_batches(), depth=RENDER_AHEAD_BATCHES, name="tavce-render"):
                video_frames = list(self.preprocessor.restore_frames(frames, result.source))
                if self.enhancer is not None and result.options.enhance is not False:
                    tracker = tracker or self._face_tracker(result.source, video_frames[0].shape)
                    video_frames = self._enhance(self.enhancer, video_frames, tracker, result.options.seed, done)
                yield from video_frames
                done += frames.shape[0]
                bar.update(frames.shape[0])
                if callback is not None:
                    callback(done, total)
        if tracker is not None:
            logger.info("enhanced %d/%d frames (%d with detected landmarks)", done, total, tracker.detected)

    def _face_tracker(self, source: PreparedSource, frame_shape: tuple[int, ...]) -> FaceTracker:
        """Landmarks for each output frame: the preprocessor's own landmarker, starting from the photo's face."""
        from tavce.preprocess.tracking import FaceTracker, source_landmarks_in_frame

        landmarker = None
        if hasattr(type(self.preprocessor), "landmarker"):
            try:
                landmarker = getattr(self.preprocessor, "landmarker")
            except TavceError as error:
                logger.warning("no landmarker for the enhancer (%s): the photo's face position is used in every frame", error)
        return FaceTracker(landmarker, source_landmarks_in_frame(source, frame_shape))

    @staticmethod
    def _enhance(
        enhancer: FaceEnhancer, frames: Sequence[np.ndarray], tracker: FaceTracker, seed: int | None, start: int
    ) -> list[np.ndarray]:
        """One batch of video frames enhanced; the noise is seeded by the call's seed and the first frame's index."""
        from tavce.models.enhancer import five_points

        points = np.stack([five_points(tracker.landmarks(frame)) for frame in frames])
        generator = torch.Generator(device=module_device(enhancer))
        generator.manual_seed(((seed if seed is not None else torch.seed()) + start) % 2**63)
        return enhancer.enhance(list(frames), points, generator=generator)
