"""TalkingHeadPipeline: one portrait + one speech clip -> a talking-head video.

The pipeline only composes interface-typed components (see docs/architecture.md);
it owns no model maths. Everything before the renderer is computed for the whole
clip (cheap); frames are rendered in batches and streamed, so memory does not
grow with the clip's length.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from tavce._heap import release_freed_memory
from tavce.audio import frame_windows, load_audio
from tavce.constants import ENHANCER_UPSCALES, ENHANCERS
from tavce.device import place_component, resolve_device, resolve_dtype
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, TavceError, WeightsNotFoundError
from tavce.models.base import module_device, module_dtype
from tavce.options import GenerationOptions
from tavce.types import FPS, MOTION_DIM, AudioClip, AudioWindows, MotionCoefficients

if TYPE_CHECKING:
    from tavce.models.audio2coeff import Audio2Coeff
    from tavce.models.enhancer import FaceEnhancer
    from tavce.preprocess.tracking import FaceTracker
    from tavce.models.renderer import Renderer
    from tavce.models.renderer.mapping_net import MappingNet
    from tavce.models.tavc import TemporalCorrelationMetric
    from tavce.preprocess import FaceLandmarker, PreparedSource, Preprocessor
    from tavce.types import AudioRelationship

__all__ = ["GenerationOptions", "TalkingHeadPipeline", "TalkingHeadResult"]

logger = logging.getLogger(__name__)

RENDER_AHEAD_BATCHES = 2
"""Rendered batches that may wait for the paste-back and the encoder (tavce.background.iterate_ahead)."""


EXPRESSION_DIM = 64
"""Expression coefficients lead the motion coefficients; the head pose (6) follows them."""

REFERENCE_CACHE_ENTRIES = 16
"""Reference videos whose coefficients a pipeline keeps (by content hash, crop mode and size)."""


def _check_loading_arguments(
    components: dict[str, Any],
    size: int | None,
    tavce_correlation: str | Path | None,
    tavce_facerender: str | Path | None,
    landmarker: Any,
) -> None:
    """Refuse bad loading arguments before anything is downloaded or built."""
    from tavce.components import COMPONENT_NAMES
    from tavce.convert.official import check_official_arguments
    from tavce.preprocess.landmarks import landmarker_class

    unknown = sorted(set(components) - set(COMPONENT_NAMES))
    if unknown:
        raise InvalidArgumentError(
            f"from_pretrained: unknown arguments {unknown}; components are {', '.join(COMPONENT_NAMES)}"
        )
    check_official_arguments(size, tavce_correlation, tavce_facerender)
    if isinstance(landmarker, str):
        landmarker_class(landmarker)


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


def _attach_enhancer(
    loaded: dict[str, Any],
    found: str | Path,
    wants_gfpgan: bool,
    enhancer_weights: str | Path | None,
    enhancer_upscale: int | None,
    cache_dir: str | Path | None,
    local_files_only: bool,
) -> None:
    """Put the enhancer asked for into ``loaded`` (from ``enhancer_weights``), or check the loaded one."""
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


def _mel_windows(clip: AudioClip) -> AudioWindows:
    """The windows that drive the motion and relationship models: float64 mel reproduces the original's
    windows exactly, and is cheap next to the networks."""
    return frame_windows(clip, dtype=torch.float64)


class TalkingHeadResult:
    """A planned talking-head video: coefficients are computed, frames are rendered on demand.

    Frames are produced lazily, batch by batch, so iterating :attr:`frames` or calling
    :meth:`save` keeps memory independent of the clip's length. What the result holds per
    frame is small (73 coefficients, 128 relationship values); the mel windows (5 KB a frame)
    are not kept but computed again from :attr:`audio` when asked for.

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
        coefficients: MotionCoefficients,
        relationship: AudioRelationship | None,
        options: GenerationOptions,
    ) -> None:
        self._pipeline = pipeline
        self.source = source
        self.audio = audio
        self.coefficients = coefficients
        self.relationship = relationship
        self.options = options

    @property
    def windows(self) -> AudioWindows:
        """The (T, 1, 80, 16) mel windows of :attr:`audio` that planned the video (computed on each access)."""
        return _mel_windows(self.audio)

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

    def save(self, path: str | Path, *, crf: int | None = None) -> Path:
        """Render and write an H.264 mp4 with the audio, streaming frames into the encoder.

        The destination is checked before rendering starts; the file is written to a
        temporary name and renamed only when complete.

        Args:
            crf: x264 quality, 0 (lossless) .. 51, lower is better and larger; default the
                call's ``crf`` option, else 25.

        Raises:
            OutputError: the destination cannot be written.
            InvalidArgumentError: crf outside 0..51.
        """
        from tavce.video import DEFAULT_CRF, VideoWriter

        quality = next(value for value in (crf, self.options.crf, DEFAULT_CRF) if value is not None)
        soundtrack = self.audio.source if Path(self.audio.source).is_file() else self.audio
        with VideoWriter(path, audio=soundtrack, crf=quality) as writer:
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
        self._references: OrderedDict[tuple[str, str, int], torch.Tensor] = OrderedDict()
        self._references_lock = threading.Lock()
        self._full_mode_fetch: Callable[[], torch.nn.Module] | None = None
        self._full_mode_lock = threading.Lock()
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
        return module_dtype(self.renderer)

    def to(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> TalkingHeadPipeline:
        """Move every ``nn.Module`` component to ``device`` and cast what each lets be cast to ``dtype``.

        ``device`` defaults to CUDA when available, ``dtype`` to float16 on CUDA and float32
        elsewhere (:mod:`tavce.device`). Each component declares the parts that stay float32
        (``keep_in_float32``): the official renderer takes the half precision (it dominates the
        cost), the other networks are small and stay float32 for exactness. Components that are
        not modules manage their own device.
        """
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device)
        for component in self.components.values():
            place_component(component, device, dtype)
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
        size: int | None = None,
        tavce_correlation: str | Path | None = None,
        tavce_facerender: str | Path | None = None,
        landmarker: FaceLandmarker | str | None = None,
        enhancer_weights: str | Path | None = None,
        enhancer_upscale: int | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **components: Any,
    ) -> TalkingHeadPipeline:
        """Load a pipeline from a tavce folder / Hub repo, or from the official SadTalker files.

        Every argument is checked before anything is downloaded; a size the weights cannot
        render is refused as soon as their config is read, before any network is built.

        Args:
            weights: a tavce weights folder (``pipeline_config.json``), a folder of official
                SadTalker files, or a Hub repo id of either; default ``vinthony/SadTalker-V002rc``.
                Official files go through :meth:`from_official`.
            revision, cache_dir, local_files_only: Hub options (``HF_HUB_OFFLINE=1`` also works).
            size: 256 or 512; None = the weights' own size (256 for the official files).
            tavce_correlation, tavce_facerender: the TAVCE release files; together they switch CERL on.
            landmarker: a :class:`~tavce.preprocess.FaceLandmarker`, or ``"auto"``, ``"insightface"``,
                ``"dlib"``; default (None, "auto") insightface if its model pack is installed, else dlib.
            enhancer_weights: the face enhancer's weights (``enhancer="gfpgan"``): a folder holding
                ``GFPGANv1.4.pth`` and ``parsing_parsenet.pth``, the GFPGAN file, or a Hub repo id
                (see :func:`tavce.convert.official.load_enhancer`).
            enhancer_upscale: 1 or 2 (default 2, as SadTalker): the enhanced frames' scale.
            device, dtype: where and in which precision to run (see :meth:`to`); default (None): CUDA
                when torch sees a GPU, with the renderer in float16, else the CPU in float32.
            **components: replacements by component name (``preprocessor``, ``audio2coeff``,
                ``renderer``, ``metric``, ``enhancer``); a replaced component is not loaded from
                ``weights``. ``enhancer="gfpgan"`` loads GFPGAN v1.4 from ``enhancer_weights``
                (or keeps the weights folder's own enhancer).

        Raises:
            WeightsNotFoundError: the weights cannot be found (the message says how to get them).
            IncompatibleWeightsError: a file does not fit tavce's components, or lacks a required one.
            InvalidArgumentError: an unknown component name, one TAVCE file without the other, a size
                the weights cannot render, an unknown landmarker.
        """
        from tavce import DEFAULT_REPO
        from tavce.components import load_components, read_pipeline_config
        from tavce.convert.layout import locate_weights

        _check_loading_arguments(components, size, tavce_correlation, tavce_facerender, landmarker)
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device)
        location = DEFAULT_REPO if weights is None else weights
        layout, found = (
            ("official", location)  # the TAVCE files come with the official layout
            if tavce_facerender is not None
            else locate_weights(location, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        )
        if layout == "official":
            return cls.from_official(
                found, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, size=size,
                tavce_correlation=tavce_correlation, tavce_facerender=tavce_facerender, landmarker=landmarker,
                enhancer_weights=enhancer_weights, enhancer_upscale=enhancer_upscale, device=device, dtype=dtype,
                **components,
            )  # fmt: skip
        own_size = read_pipeline_config(found).get("preprocessing", {}).get("crop_size")
        if size is not None and own_size is not None and size != own_size:
            raise InvalidArgumentError(
                f"size={size}: the weights in {found} render at {own_size}x{own_size} only; leave size out or "
                f"give weights made for {size} (e.g. `tavce convert --size {size}` of the official files)"
            )
        wants_gfpgan = _wants_gfpgan(components, enhancer_weights, enhancer_upscale)
        loaded, _ = load_components(found, skip=set(components) | ({"enhancer"} if enhancer_weights else set()))
        loaded |= components
        _attach_enhancer(loaded, found, wants_gfpgan, enhancer_weights, enhancer_upscale, cache_dir, local_files_only)
        return cls._assemble(loaded, found, landmarker, device, dtype)

    @classmethod
    def from_official(
        cls,
        weights: str | Path | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        size: int | None = None,
        tavce_correlation: str | Path | None = None,
        tavce_facerender: str | Path | None = None,
        landmarker: FaceLandmarker | str | None = None,
        enhancer_weights: str | Path | None = None,
        enhancer_upscale: int | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **components: Any,
    ) -> TalkingHeadPipeline:
        """Load a pipeline from the official SadTalker files (a folder or a Hub repo), converting them on load.

        Only the files ``size`` needs are fetched; the 73-coefficient MappingNet of the full modes
        (``mapping_00109``) is fetched the first time a ``full`` / ``extfull`` video is made.
        Arguments as :meth:`from_pretrained` (``size`` defaults to 256).
        """
        from tavce import DEFAULT_REPO
        from tavce.convert.official import load_full_mode_mapping, load_official_components

        _check_loading_arguments(components, size, tavce_correlation, tavce_facerender, landmarker)
        wants_gfpgan = _wants_gfpgan(components, enhancer_weights, enhancer_upscale)
        location = DEFAULT_REPO if weights is None else weights
        official = load_official_components(
            location, size=size or 256, full_mode=False, tavce_correlation=tavce_correlation,
            tavce_facerender=tavce_facerender, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
        )  # fmt: skip
        loaded = official.components | components
        _attach_enhancer(loaded, location, wants_gfpgan, enhancer_weights, enhancer_upscale, cache_dir, local_files_only)
        pipeline = cls._assemble(loaded, location, landmarker, device, dtype)
        if tavce_facerender is None and "renderer" not in components:
            pipeline._full_mode_fetch = functools.partial(
                load_full_mode_mapping, location, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
            )
        return pipeline

    @classmethod
    def _assemble(
        cls,
        loaded: dict[str, Any],
        found: str | Path,
        landmarker: FaceLandmarker | str | None,
        device: str | torch.device | None,
        dtype: str | torch.dtype | None,
    ) -> TalkingHeadPipeline:
        from tavce.components import COMPONENT_NAMES, OPTIONAL_COMPONENTS
        from tavce.preprocess import AcceptsLandmarker
        from tavce.preprocess.landmarks import landmarker_class

        missing = [name for name in COMPONENT_NAMES if name not in OPTIONAL_COMPONENTS and loaded.get(name) is None]
        if missing:
            raise IncompatibleWeightsError(
                f"{found}: no {', '.join(missing)} component; the folder is incomplete. Write it again with "
                "pipe.save_pretrained() or `tavce convert`, or pass the component: from_pretrained(..., "
                f"{missing[0]}=...)"
            )
        if landmarker is not None and landmarker != "auto":  # auto: the preprocessor's own default
            preprocessor = loaded["preprocessor"]
            if not isinstance(preprocessor, AcceptsLandmarker):
                raise InvalidArgumentError(
                    f"landmarker: the preprocessor {type(preprocessor).__name__} takes no landmarker (it has no "
                    "use_landmarker method); give it yours when you build it"
                )
            preprocessor.use_landmarker(landmarker_class(landmarker)() if isinstance(landmarker, str) else landmarker)
        return cls(**cast(dict[str, Any], {name: loaded.get(name) for name in COMPONENT_NAMES})).to(device, dtype)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the pipeline as a tavce weights folder (``pipeline_config.json`` + one folder per component).

        Raises:
            ComponentNotSerializableError: a component is not a
                :class:`~tavce.models.base.TavceModule` (nothing is written then).
        """
        from tavce.components import save_components
        from tavce.convert.export import preprocessing_constants

        self._fetch_full_mode_mapping()  # a folder holds every network the official files make
        return save_components(folder, self.components, preprocessing_constants(self.size))

    # ------------------------------------------------------------------ generation
    def __call__(self, image, audio, **options: Any) -> TalkingHeadResult:
        """Plan a video: prepare the photo, load the audio, predict the coefficients.

        Args:
            image: a path, PIL image, (H, W, 3) uint8 array or tensor, or a
                :class:`~tavce.preprocess.PreparedSource` prepared earlier (``mode`` is then ignored).
            audio: a path or file object (any format libsndfile reads, any rate), or an AudioClip.
            **options: fields of :class:`GenerationOptions` (mode, still, pose_style, expression_scale,
                seed, batch_size, face_box, face_index, ref_pose, ref_eyeblink (video paths or tensors),
                yaw, pitch, roll, use_blink, crf, progress, ...).

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
        windows = _mel_windows(clip)
        mode = image.mode.value if isinstance(image, PreparedSource) else settings.mode
        if mode in ("full", "extfull"):
            self._fetch_full_mode_mapping()
        settings = self._with_reference_coefficients(settings, mode)
        if isinstance(image, PreparedSource):
            source = image
        else:
            source = self.preprocessor.prepare(
                image, settings.mode, self.size, face_box=settings.face_box, face_index=settings.face_index
            )
        generator = torch.Generator().manual_seed(
            settings.seed if settings.seed is not None else int(torch.seed() % (2**63))
        )
        with torch.inference_mode():
            coefficients = self.audio2coeff.generate(windows, source.coefficients, settings, generator=generator)
        relationship = None
        if self.has_cerl:
            # Without inference mode the result would keep the encoder's autograd graph: every
            # activation of every window, O(T) memory held until the video is written.
            with torch.inference_mode():
                relationship = cast("TemporalCorrelationMetric", self.metric).audio_relationships(windows)
        del windows
        release_freed_memory()  # what planning freed would otherwise stay resident while rendering
        return TalkingHeadResult(self, source, clip, coefficients, relationship, settings)

    def stream(self, image, audio, **options: Any) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 frames as they are rendered (same arguments as calling the pipeline)."""
        return self(image, audio, **options).frames

    def reference_coefficients(self, video: str | Path, mode: str = "crop") -> torch.Tensor:
        """(T_ref, 73) coefficients of a reference video's frames, measured by the preprocessor.

        Kept per pipeline by the file's content hash, crop mode and size (the last
        :data:`REFERENCE_CACHE_ENTRIES` videos), so a video used for both ``ref_pose`` and
        ``ref_eyeblink``, or for many calls, is measured once.

        Raises:
            InvalidArgumentError: the preprocessor cannot measure videos.
            InvalidVideoError / FaceNotDetectedError: an unreadable video, or one without a face.
        """
        from tavce.preprocess import ReadsReferenceVideos

        if not isinstance(self.preprocessor, ReadsReferenceVideos):
            raise InvalidArgumentError(
                f"reference video {video}: the preprocessor {type(self.preprocessor).__name__} cannot measure "
                "videos (no video_coefficients method); pass ref_pose / ref_eyeblink as tensors instead"
            )
        path = Path(video).expanduser()
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        key = (digest.hexdigest(), mode, self.size)
        with self._references_lock:
            if key in self._references:
                self._references.move_to_end(key)
                return self._references[key]
        coefficients = self.preprocessor.video_coefficients(path, mode, self.size)
        with self._references_lock:
            self._references[key] = coefficients
            while len(self._references) > REFERENCE_CACHE_ENTRIES:
                self._references.popitem(last=False)
        return coefficients

    def _with_reference_coefficients(self, settings: GenerationOptions, mode: str) -> GenerationOptions:
        """Reference videos given by path replaced by their pose (T_ref, 6) / expression (T_ref, 64) sequences."""
        measured: dict[str, Any] = {}
        if isinstance(settings.ref_pose, (str, Path)):
            measured["ref_pose"] = self.reference_coefficients(settings.ref_pose, mode)[:, EXPRESSION_DIM:MOTION_DIM]
        if isinstance(settings.ref_eyeblink, (str, Path)):
            measured["ref_eyeblink"] = self.reference_coefficients(settings.ref_eyeblink, mode)[:, :EXPRESSION_DIM]
        return dataclasses.replace(settings, **measured) if measured else settings

    def _fetch_full_mode_mapping(self) -> None:
        """Fetch the full modes' MappingNet the first time one is used (once, also when threads ask together)."""
        from tavce.models.renderer import CERLRenderer

        with self._full_mode_lock:
            if self._full_mode_fetch is None or not isinstance(self.renderer, CERLRenderer):
                return
            mapping = self._full_mode_fetch()
            self.renderer.use_full_mode_mapping(cast("MappingNet", mapping.to(device=self.device, dtype=self.dtype)))
            self._full_mode_fetch = None

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

        enhancer = self.enhancer if result.options.enhance is not False else None
        batches = rendered_batches()
        if enhancer is not None or self.device.type != "cpu":
            # A batch or two ahead of the consumer, in a background thread: a GPU keeps computing while the
            # CPU pastes and encodes, and on a CPU the renderer fills the cores the enhancer leaves idle.
            # Without an enhancer a CPU renders in the calling thread: a second thread running OpenMP
            # regions makes libgomp's workers sleep between regions instead of spinning (more threads than
            # cores), ~15 % slower per frame, while the paste-back and the encoder's pipe are too light to
            # gain from the overlap.
            batches = iterate_ahead(batches, depth=RENDER_AHEAD_BATCHES, name="tavce-render")
        progress = result.options.progress
        callback = progress if callable(progress) else None
        tracker: FaceTracker | None = None
        done = 0
        with tqdm(total=total, unit="frame", disable=progress is not True, desc="rendering") as bar:
            for frames in batches:
                video_frames = list(self.preprocessor.restore_frames(frames, result.source))
                if enhancer is not None:
                    tracker = tracker or self._face_tracker(result.source, video_frames[0].shape)
                    video_frames = self._enhance(enhancer, video_frames, tracker, result.options.seed, done)
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
