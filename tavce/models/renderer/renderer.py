"""The face renderer component: a prepared source + motion coefficients → frames.

:class:`CERLRenderer` composes the keypoint detector, the MappingNet (plus, optionally,
the 73-coefficient MappingNet of the ``full`` / ``extfull`` modes) and the
occlusion-aware SPADE generator (with CERL when its weights are present).

Two levels:

* the :class:`Renderer` interface the pipeline uses — :meth:`CERLRenderer.prepare_source`
  takes a :class:`~tavce.types.PreparedSource` and picks the MappingNet its crop mode
  needs; :meth:`CERLRenderer.render` takes the clip's
  :class:`~tavce.types.MotionCoefficients` and a frame range, and builds the 27-frame
  windows and the 70/73-coefficient input itself;
* the tensor level the golden checks and training use — :meth:`CERLRenderer.prepare_image`
  and :meth:`CERLRenderer.render_windows`.

Everything that depends only on the source image is computed once per clip
(canonical and source keypoints, the appearance feature up to the CERL point and,
without CERL, the feature volume and its compressed copy). Each frame's result
depends only on its own window, relationship and overrides, so the batch size never
changes frames (the original TAVCE loop centred every window of a batch on the
batch's first frame, right only for batches of one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import torch

from tavce.errors import InvalidArgumentError, InvalidImageError, RenderError
from tavce.models.base import TavceModule
from tavce.models.renderer.fast_conv import reductions_enabled
from tavce.models.renderer.generator import GeneratorConfig, OcclusionAwareSPADEGenerator
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig
from tavce.models.renderer.keypoint_transform import transform_keypoints
from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig
from tavce.models.renderer.precision import accurate_dtype
from tavce.types import AudioRelationship, MotionCoefficients, PreparedSource

__all__ = [
    "SEMANTIC_RADIUS",
    "semantic_windows",
    "SourceState",
    "Renderer",
    "CERLRendererConfig",
    "CERLRenderer",
]

SEMANTIC_RADIUS = 13
"""Frames on each side of a semantic window: 27-frame windows."""


def semantic_windows(
    coefficients: torch.Tensor, radius: int = SEMANTIC_RADIUS, *, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """Per-frame windows of coefficients, edges replicated.

    Args:
        coefficients: (T, C) per-frame coefficients (C = 70, or 73 with crop parameters).
        radius: frames on each side.
        start, stop: build the windows of frames start … stop − 1 only (default: all T), so a
            renderer loop needs memory for one batch of windows, not for the whole clip.

    Returns:
        (stop − start, C, 2·radius + 1): window t holds frames clamp(t − radius … t + radius, 0, T − 1).

    Raises:
        InvalidArgumentError: coefficients not (T ≥ 1, C), or an empty / out-of-range frame range.
    """
    if coefficients.ndim != 2 or coefficients.shape[0] == 0:
        raise InvalidArgumentError(f"coefficients: expected (T, C) with T >= 1, got {tuple(coefficients.shape)}")
    frames = coefficients.shape[0]
    stop = frames if stop is None else stop
    if not 0 <= start < stop <= frames:
        raise InvalidArgumentError(f"start={start}, stop={stop}: need 0 <= start < stop <= {frames} (the clip's frames)")
    offsets = torch.arange(-radius, radius + 1, device=coefficients.device)
    indices = (torch.arange(start, stop, device=coefficients.device)[:, None] + offsets).clamp(0, frames - 1)
    return coefficients[indices].transpose(1, 2)


@dataclass
class SourceState:
    """Everything the renderer derives from the source image alone (computed once per clip).

    Attributes:
        source_image: (1, 3, S, S) in [0, 1].
        canonical_keypoints: (1, K, 3) keypoint detector output.
        source_keypoints: (1, K, 3) canonical keypoints moved by the source's own head motion.
        source_features: (1, 512, S/4, S/4) appearance feature F, the CERL input.
        volume: (1, 32, 16, S/4, S/4) feature volume V without CERL (None when CERL will change it).
        compressed_volume: the dense-motion compression of ``volume`` (None likewise).
        full_mode: frames are driven through the full-mode MappingNet (73 coefficients).
    """

    source_image: torch.Tensor
    canonical_keypoints: torch.Tensor
    source_keypoints: torch.Tensor
    source_features: torch.Tensor
    volume: torch.Tensor | None = None
    compressed_volume: torch.Tensor | None = None
    full_mode: bool = False

    def to(self, *args: Any, **kwargs: Any) -> SourceState:
        """A copy with every tensor moved/cast like ``Tensor.to`` (device and/or dtype)."""
        return dataclasses.replace(
            self,
            **cast(
                dict[str, Any],
                {
                    field.name: value.to(*args, **kwargs)
                    for field in dataclasses.fields(self)
                    for value in [getattr(self, field.name)]
                    if isinstance(value, torch.Tensor)
                },
            ),
        )


@runtime_checkable
class Renderer(Protocol):
    """What the pipeline needs from a face renderer; subclass :class:`CERLRenderer` or implement it anew.

    Attributes:
        image_size: S, the side of the square frames it renders (the preprocessor's working size).
        has_cerl: whether :meth:`render` needs the audio relationship (TAVCE's CERL).
    """

    image_size: int
    has_cerl: bool

    def prepare_source(self, source: PreparedSource) -> Any:
        """Source-only work, once per clip; the returned state is passed back to :meth:`render`."""
        ...

    def render(
        self,
        state: Any,
        coefficients: MotionCoefficients,
        start: int,
        stop: int,
        relationship: AudioRelationship | None = None,
    ) -> torch.Tensor:
        """Frames ``start`` … ``stop − 1`` of the clip, (stop − start, 3, S, S) in [0, 1].

        ``coefficients`` and ``relationship`` cover the whole clip (T frames): a frame's
        motion may depend on its neighbours. ``relationship`` is given iff ``has_cerl``.
        """
        ...


@dataclass(frozen=True)
class CERLRendererConfig:
    """Sub-network configs (official sizes by default) and the working image size.

    Attributes:
        full_mode_mapping: config of the 73-coefficient MappingNet used for ``full`` / ``extfull``
            sources (official ``mapping_00109``); None renders every mode with ``mapping``.
        image_size: S, 256 or 512 for the official weights.
    """

    keypoint_detector: KeypointDetectorConfig = KeypointDetectorConfig()
    mapping: MappingNetConfig = MappingNetConfig()
    generator: GeneratorConfig = GeneratorConfig()
    full_mode_mapping: MappingNetConfig | None = None
    image_size: int = 256

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.image_size % 128:
            raise InvalidArgumentError(f"image_size={self.image_size}: must be a positive multiple of 128 (256, 512)")


_FIRST_USE_LOCK = threading.Lock()
"""Held by a renderer step's first call in a dtype / device / reductions setting (see CERLRenderer._first_use)."""


class CERLRenderer(TavceModule):
    """Keypoint detector + MappingNet(s) + generator (+ CERL) as one :class:`Renderer`.

    Build it with weights through :meth:`from_modules` (e.g. after the converters and
    :func:`~tavce.models.renderer.generator.load_inference_generator`) or
    ``from_pretrained``. Whether CERL runs is decided by the generator's weights.
    """

    config_class = CERLRendererConfig
    # The renderer dominates the cost and takes float16 / bfloat16 well; its few sensitive layers keep
    # float32 weights themselves (tavce.models.renderer.precision.Float32Weights).
    keep_in_float32 = ()

    def __init__(self, config: CERLRendererConfig = CERLRendererConfig()) -> None:
        super().__init__(config)
        self.keypoint_detector = KeypointDetector(config.keypoint_detector)
        self.mapping = MappingNet(config.mapping)
        self.generator = OcclusionAwareSPADEGenerator(config.generator)
        self.full_mode_mapping = None if config.full_mode_mapping is None else MappingNet(config.full_mode_mapping)
        self._settled_steps: set[tuple[Any, ...]] = set()

    @classmethod
    def from_modules(
        cls,
        keypoint_detector: KeypointDetector,
        mapping: MappingNet,
        generator: OcclusionAwareSPADEGenerator,
        full_mode_mapping: MappingNet | None = None,
        image_size: int = 256,
    ) -> CERLRenderer:
        """Assemble a renderer from loaded sub-networks (no copy); returned in eval mode."""
        config = CERLRendererConfig(
            keypoint_detector.config,
            mapping.config,
            generator.config,
            None if full_mode_mapping is None else full_mode_mapping.config,
            image_size,
        )
        renderer = cls.__new__(cls)
        TavceModule.__init__(renderer, config)
        renderer.keypoint_detector, renderer.mapping, renderer.generator = keypoint_detector, mapping, generator
        renderer.full_mode_mapping = full_mode_mapping
        renderer._settled_steps = set()
        return renderer.eval()

    def use_full_mode_mapping(self, mapping: MappingNet) -> None:
        """Add the 73-coefficient MappingNet of the full / extfull modes (fetched when first needed)."""
        self.full_mode_mapping = mapping.eval()
        self.config = dataclasses.replace(self.config, full_mode_mapping=mapping.config)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def has_cerl(self) -> bool:
        return self.generator.has_cerl

    def _mapping_for(self, state: SourceState) -> MappingNet:
        return cast(MappingNet, self.full_mode_mapping) if state.full_mode else self.mapping

    @contextlib.contextmanager
    def _first_use(self, step: str) -> Iterator[None]:
        """Run a step's first call in a setting alone.

        A step's first call lays its conv weights out in their activations' layout, in place
        (:func:`~tavce.models.renderer.precision.hold_conv_weights_in`); a thread running a conv on
        a weight while another re-lays it out would read freed or half-changed memory. So first
        calls wait for each other; later calls change no weight and run freely. The two steps
        (source work, frames) re-lay out disjoint weights.
        """
        reference = self._parameter()
        key = (step, reference.dtype, reference.device, reductions_enabled())
        if key in self._settled_steps:
            yield
            return
        with _FIRST_USE_LOCK:
            yield
            self._settled_steps.add(key)

    def _parameter(self) -> torch.Tensor:
        return next(self.parameters())

    def _coefficients(self, values: torch.Tensor, name: str, leading: tuple[int, ...], dim: int) -> torch.Tensor:
        """Cast to the module dtype/device and keep the MappingNet's first ``dim`` channels.

        73-dim coefficients (with crop parameters) given to a 70-dim MappingNet drop the crop
        parameters, as TAVCE does with its reference coefficients.
        """
        channels = values.shape[len(leading)] if values.ndim > len(leading) else -1
        if values.shape[: len(leading)] != leading or channels < dim or not torch.isfinite(values).all():
            raise InvalidArgumentError(
                f"{name}: expected finite values of shape {(*leading, dim)}[...], got {tuple(values.shape)}; "
                "pass 70 coefficients per frame (73 with crop parameters for the full-mode MappingNet)."
            )
        reference = self._parameter()
        return values.narrow(len(leading), 0, dim).to(device=reference.device, dtype=accurate_dtype(reference.dtype))

    # ------------------------------------------------------------------ Renderer interface
    def prepare_source(self, source: PreparedSource) -> SourceState:
        """Source-only work for a prepared photo, with the MappingNet its crop mode needs.

        ``full`` / ``extfull`` sources use the 73-coefficient MappingNet when the renderer has
        one (their crop parameters then drive it); every other case uses the 70-coefficient one.

        Raises:
            InvalidArgumentError: the source was prepared at another size than :attr:`image_size`.
        """
        if source.size != self.image_size:
            raise InvalidArgumentError(
                f"source: prepared at {source.size}x{source.size} but this renderer works at "
                f"{self.image_size}x{self.image_size}; prepare the photo with size={self.image_size}"
            )
        full_mode = source.mode.pastes_back and self.full_mode_mapping is not None
        return self.prepare_image(source.image[None], source.coefficients, full_mode=full_mode)

    def render(
        self,
        state: SourceState,
        coefficients: MotionCoefficients,
        start: int,
        stop: int,
        relationship: AudioRelationship | None = None,
    ) -> torch.Tensor:
        """Frames ``start`` … ``stop − 1`` (one batch): 27-frame windows of the clip's coefficients, rendered.

        Returns:
            (stop − start, 3, S, S) frames in [0, 1].

        Raises:
            InvalidArgumentError: a bad frame range, a relationship that does not cover the clip, or
                a full-mode state without crop parameters in ``coefficients``.
        """
        if relationship is not None and relationship.num_frames != coefficients.num_frames:
            raise InvalidArgumentError(
                f"relationship: {relationship.num_frames} frames for {coefficients.num_frames} frames of "
                "coefficients; compute both from the same audio windows"
            )
        windows = semantic_windows(coefficients.as_renderer_input(), start=start, stop=stop)
        frames_relationship = None if relationship is None else relationship.differences[start:stop]
        return self.render_windows(state, windows, frames_relationship, **coefficients.head_angles(start, stop))

    # ------------------------------------------------------------------ tensor level
    @torch.inference_mode()
    def prepare_image(
        self, source_image: torch.Tensor, source_semantics: torch.Tensor, *, full_mode: bool = False
    ) -> SourceState:
        """Source-only work, once per clip.

        Args:
            source_image: (1, 3, S, S) RGB in [0, 1], S a multiple of 128 (256 or 512).
            source_semantics: (C,) the source's coefficients, C = 70 or 73 (73 with ``full_mode``).
            full_mode: drive frames through :attr:`full_mode_mapping` (needs crop parameters).
        """
        if full_mode and self.full_mode_mapping is None:
            raise InvalidArgumentError("full_mode=True: this renderer has no full-mode MappingNet")
        if source_image.ndim != 4 or source_image.shape[0] != 1:
            raise InvalidImageError(f"source_image: expected (1, 3, S, S), got {tuple(source_image.shape)}")
        self.generator.check_image_size(source_image)
        if not torch.isfinite(source_image).all() or source_image.min() < 0 or source_image.max() > 1:
            raise InvalidImageError("source_image: values must be finite and in [0, 1]; divide uint8 images by 255.")
        reference = self._parameter()
        image = source_image.to(device=reference.device, dtype=reference.dtype)
        mapping = cast(MappingNet, self.full_mode_mapping) if full_mode else self.mapping
        semantics = self._coefficients(source_semantics, "source_semantics", (), mapping.config.coeff_dim)
        window = semantics[None, :, None].expand(1, -1, 2 * SEMANTIC_RADIUS + 1)
        with self._first_use("source"):
            canonical = self.keypoint_detector(image)
            source_keypoints = transform_keypoints(canonical, mapping(window))
            features = self.generator.encode(image)
            state = SourceState(image, canonical, source_keypoints, features, full_mode=full_mode)
            if not self.has_cerl:
                state.volume = self.generator.lift(features)
                state.compressed_volume = self.generator.prepare_volume(state.volume)
        return state

    def driving_keypoints(
        self,
        state: SourceState,
        driving_windows: torch.Tensor,
        yaw: torch.Tensor | None = None,
        pitch: torch.Tensor | None = None,
        roll: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, K, 3) driving keypoints of (B, C, 27) windows; overrides are (B,) degrees."""
        batch = driving_windows.shape[0]
        mapping = self._mapping_for(state)
        windows = self._coefficients(driving_windows, "driving_windows", (batch,), mapping.config.coeff_dim)
        overrides: dict[str, Any] = {}
        for name, values in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
            if values is not None:
                if tuple(values.shape) != (batch,):
                    raise InvalidArgumentError(f"{name}: expected ({batch},) degrees, got {tuple(values.shape)}")
                overrides[f"{name}_override"] = values.to(device=windows.device, dtype=windows.dtype)
        canonical = state.canonical_keypoints.expand(batch, -1, -1)
        return transform_keypoints(canonical, mapping(windows), **overrides)

    def _relationship(self, relationship: torch.Tensor | AudioRelationship | None, batch: int) -> torch.Tensor | None:
        if isinstance(relationship, AudioRelationship):
            relationship = relationship.differences
        if relationship is None:
            return None
        if relationship.shape[0] != batch:
            raise InvalidArgumentError(
                f"relationship: {relationship.shape[0]} entries for {batch} driving windows; pass one per frame."
            )
        reference = self._parameter()
        return relationship.to(device=reference.device, dtype=accurate_dtype(reference.dtype))

    @torch.inference_mode()
    def render_windows(
        self,
        state: SourceState,
        driving_windows: torch.Tensor,
        relationship: torch.Tensor | AudioRelationship | None = None,
        yaw: torch.Tensor | None = None,
        pitch: torch.Tensor | None = None,
        roll: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render one batch of frames from their coefficient windows.

        Args:
            state: from :meth:`prepare_image` / :meth:`prepare_source`.
            driving_windows: (N, C, 27) per-frame coefficient windows (:func:`semantic_windows`).
            relationship: None (no CERL), (N, 128) differences d, (N, 128, 128) matrices R, or an
                :class:`~tavce.types.AudioRelationship` with N frames. Frame 0's d = 0 still applies
                the fusion convs (as the original does); None skips them.
            yaw, pitch, roll: optional (N,) degrees replacing the MappingNet's head pose.

        Returns:
            (N, 3, S, S) frames in [0, 1].

        Raises:
            InvalidArgumentError: mismatched shapes, or a relationship for a renderer without CERL.
            RenderError: the networks produced non-finite values.
        """
        batch = driving_windows.shape[0] if driving_windows.ndim == 3 else 0
        if batch == 0:
            raise InvalidArgumentError(f"driving_windows: expected (N, C, 27) with N >= 1, got {tuple(driving_windows.shape)}")
        relationship = self._relationship(relationship, batch)
        if relationship is not None and not self.has_cerl:
            raise InvalidArgumentError(
                "relationship: this renderer runs without CERL (its generator has no fusion weights); "
                "pass relationship=None or load TAVCE face-render weights."
            )
        kp_driving = self.driving_keypoints(state, driving_windows, yaw, pitch, roll)
        kp_source = state.source_keypoints.expand(batch, -1, -1)
        with self._first_use("frames"):
            if relationship is None and state.volume is not None:
                volume, compressed = state.volume, state.compressed_volume
            else:
                volume = self.generator.lift(self.generator.fuse(state.source_features, relationship))
                compressed = self.generator.prepare_volume(volume)
            frames = self.generator.animate(volume, cast(torch.Tensor, compressed), kp_source, kp_driving).prediction
        if not torch.isfinite(frames).all():
            raise RenderError(
                f"renderer produced non-finite pixels in {str(frames.dtype).replace('torch.', '')}; with float16 or "
                "bfloat16 try float32 (pipe.to(dtype=torch.float32), --dtype float32), otherwise check the "
                "weights and the coefficients."
            )
        return frames
