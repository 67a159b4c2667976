"""The face renderer component: source image + per-frame coefficient windows → frames.

:class:`CERLRenderer` composes the keypoint detector, the MappingNet and the
occlusion-aware SPADE generator (with CERL when its weights are present).
Everything that depends only on the source image is computed once per clip by
:meth:`CERLRenderer.prepare_source` (canonical and source keypoints, the
appearance feature up to the CERL point, and — without CERL — the feature volume
and its compressed copy); :meth:`CERLRenderer.render` then renders any number of
frames in batches. Each frame's result depends only on its own window,
relationship and overrides, so batching never changes frames (the original TAVCE
loop centred every window of a batch on the batch's first frame, quirk 22).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from tavce.errors import InvalidArgumentError, InvalidImageError, RenderError
from tavce.models.base import TavceModule
from tavce.models.renderer.generator import GeneratorConfig, OcclusionAwareSPADEGenerator
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig
from tavce.models.renderer.keypoint_transform import transform_keypoints
from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig
from tavce.models.renderer.precision import accurate_dtype
from tavce.types import AudioRelationship

SEMANTIC_RADIUS = 13
"""Frames on each side of a semantic window: 27-frame windows (reference-pipeline.md §4.1)."""


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
    """

    source_image: torch.Tensor
    canonical_keypoints: torch.Tensor
    source_keypoints: torch.Tensor
    source_features: torch.Tensor
    volume: torch.Tensor | None = None
    compressed_volume: torch.Tensor | None = None

    def to(self, *args: Any, **kwargs: Any) -> SourceState:
        """A copy with every tensor moved/cast like ``Tensor.to`` (device and/or dtype)."""
        return SourceState(
            **{
                field.name: None if value is None else value.to(*args, **kwargs)
                for field in dataclasses.fields(self)
                for value in [getattr(self, field.name)]
            }
        )


@runtime_checkable
class RendererProtocol(Protocol):
    """What the pipeline needs from a face renderer; subclass or duck-type to swap it."""

    def prepare_source(self, source_image: torch.Tensor, source_semantics: torch.Tensor) -> SourceState: ...

    def render(
        self,
        state: SourceState,
        driving_windows: torch.Tensor,
        relationship: torch.Tensor | AudioRelationship | None = None,
        yaw: torch.Tensor | None = None,
        pitch: torch.Tensor | None = None,
        roll: torch.Tensor | None = None,
    ) -> torch.Tensor: ...


def _as_config(value: Any, config_class: type) -> Any:
    """A sub-config read back from config.json (a dict with lists) as its dataclass."""
    if not isinstance(value, dict):
        return value
    return config_class(**{key: tuple(item) if isinstance(item, list) else item for key, item in value.items()})


@dataclass(frozen=True)
class CERLRendererConfig:
    """Sub-network configs (official sizes by default) and the render batch size."""

    keypoint_detector: KeypointDetectorConfig = KeypointDetectorConfig()
    mapping: MappingNetConfig = MappingNetConfig()
    generator: GeneratorConfig = GeneratorConfig()
    batch_size: int = 4

    def __post_init__(self) -> None:
        # Configs read back from config.json arrive as plain dicts.
        object.__setattr__(self, "keypoint_detector", _as_config(self.keypoint_detector, KeypointDetectorConfig))
        object.__setattr__(self, "mapping", _as_config(self.mapping, MappingNetConfig))
        object.__setattr__(self, "generator", _as_config(self.generator, GeneratorConfig))
        if self.batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {self.batch_size}")


class CERLRenderer(TavceModule):
    """Keypoint detector + MappingNet + generator (+ CERL) as one inference component.

    Build it with weights through :meth:`from_modules` (e.g. after the converters and
    :func:`~tavce.models.renderer.generator.load_inference_generator`) or
    ``from_pretrained``. Whether CERL runs is decided by the generator's weights.
    """

    config_class = CERLRendererConfig

    def __init__(self, config: CERLRendererConfig = CERLRendererConfig()) -> None:
        super().__init__(config)
        self.keypoint_detector = KeypointDetector(config.keypoint_detector)
        self.mapping = MappingNet(config.mapping)
        self.generator = OcclusionAwareSPADEGenerator(config.generator)

    @classmethod
    def from_modules(
        cls, keypoint_detector: KeypointDetector, mapping: MappingNet, generator: OcclusionAwareSPADEGenerator, batch_size: int = 4
    ) -> CERLRenderer:
        """Assemble a renderer from loaded sub-networks (no copy); returned in eval mode."""
        config = CERLRendererConfig(keypoint_detector.config, mapping.config, generator.config, batch_size)
        renderer = cls.__new__(cls)
        TavceModule.__init__(renderer, config)
        renderer.keypoint_detector, renderer.mapping, renderer.generator = keypoint_detector, mapping, generator
        return renderer.eval()

    @property
    def has_cerl(self) -> bool:
        return self.generator.has_cerl

    @property
    def coefficient_dim(self) -> int:
        """Coefficients per frame the MappingNet reads (70, or 73 for the full-mode MappingNet)."""
        return self.config.mapping.coeff_dim

    def _parameter(self) -> torch.Tensor:
        return next(self.parameters())

    def _coefficients(self, values: torch.Tensor, name: str, leading: tuple[int, ...]) -> torch.Tensor:
        """Cast to the module dtype/device and keep the MappingNet's first coefficient_dim channels.

        73-dim coefficients (with crop parameters) given to a 70-dim MappingNet drop the crop
        parameters, as TAVCE does with its reference coefficients.
        """
        channels = values.shape[len(leading)] if values.ndim > len(leading) else -1
        if values.shape[: len(leading)] != leading or channels < self.coefficient_dim or not torch.isfinite(values).all():
            raise InvalidArgumentError(
                f"{name}: expected finite values of shape {(*leading, self.coefficient_dim)}[...], "
                f"got {tuple(values.shape)}; pass 70 coefficients per frame (73 with crop parameters)."
            )
        reference = self._parameter()
        return values.narrow(len(leading), 0, self.coefficient_dim).to(
            device=reference.device, dtype=accurate_dtype(reference.dtype)
        )

    @torch.inference_mode()
    def prepare_source(self, source_image: torch.Tensor, source_semantics: torch.Tensor) -> SourceState:
        """Source-only work, once per clip.

        Args:
            source_image: (1, 3, S, S) RGB in [0, 1], S a multiple of 128 (256 or 512).
            source_semantics: (C,) the source's coefficients, C = 70 or 73.
        """
        if source_image.ndim != 4 or source_image.shape[0] != 1:
            raise InvalidImageError(f"source_image: expected (1, 3, S, S), got {tuple(source_image.shape)}")
        self.generator.check_image_size(source_image)
        if not torch.isfinite(source_image).all() or source_image.min() < 0 or source_image.max() > 1:
            raise InvalidImageError("source_image: values must be finite and in [0, 1]; divide uint8 images by 255.")
        reference = self._parameter()
        image = source_image.to(device=reference.device, dtype=reference.dtype)
        semantics = self._coefficients(source_semantics, "source_semantics", ())
        window = semantics[None, :, None].expand(1, -1, 2 * SEMANTIC_RADIUS + 1)
        canonical = self.keypoint_detector(image)
        source_keypoints = transform_keypoints(canonical, self.mapping(window))
        features = self.generator.encode(image)
        state = SourceState(image, canonical, source_keypoints, features)
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
        windows = self._coefficients(driving_windows, "driving_windows", (batch,))
        overrides = {}
        for name, values in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
            if values is not None:
                if tuple(values.shape) != (batch,):
                    raise InvalidArgumentError(f"{name}: expected ({batch},) degrees, got {tuple(values.shape)}")
                overrides[f"{name}_override"] = values.to(device=windows.device, dtype=windows.dtype)
        canonical = state.canonical_keypoints.expand(batch, -1, -1)
        return transform_keypoints(canonical, self.mapping(windows), **overrides)

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
    def render(
        self,
        state: SourceState,
        driving_windows: torch.Tensor,
        relationship: torch.Tensor | AudioRelationship | None = None,
        yaw: torch.Tensor | None = None,
        pitch: torch.Tensor | None = None,
        roll: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render frames, ``config.batch_size`` at a time.

        Args:
            state: from :meth:`prepare_source`.
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
        total = driving_windows.shape[0] if driving_windows.ndim == 3 else 0
        if total == 0:
            raise InvalidArgumentError(f"driving_windows: expected (N, C, 27) with N >= 1, got {tuple(driving_windows.shape)}")
        relationship = self._relationship(relationship, total)
        if relationship is not None and not self.has_cerl:
            raise InvalidArgumentError(
                "relationship: this renderer runs without CERL (its generator has no fusion weights); "
                "pass relationship=None or load TAVCE face-render weights."
            )
        for name, values in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
            if values is not None and tuple(values.shape) != (total,):
                raise InvalidArgumentError(f"{name}: expected ({total},) degrees, got {tuple(values.shape)}")
        frames = []
        for start in range(0, total, self.config.batch_size):
            chunk = slice(start, start + self.config.batch_size)
            frames.append(
                self._render_batch(
                    state,
                    driving_windows[chunk],
                    None if relationship is None else relationship[chunk],
                    *(None if values is None else values[chunk] for values in (yaw, pitch, roll)),
                )
            )
        result = torch.cat(frames)
        if not torch.isfinite(result).all():
            raise RenderError(
                f"renderer produced non-finite pixels in {str(result.dtype).replace('torch.', '')}; with float16 or "
                "bfloat16 try float32 (pipe.to(dtype=torch.float32), --dtype float32), otherwise check the "
                "weights and the coefficients."
            )
        return result

    def _render_batch(
        self,
        state: SourceState,
        driving_windows: torch.Tensor,
        relationship: torch.Tensor | None,
        yaw: torch.Tensor | None,
        pitch: torch.Tensor | None,
        roll: torch.Tensor | None,
    ) -> torch.Tensor:
        batch = driving_windows.shape[0]
        kp_driving = self.driving_keypoints(state, driving_windows, yaw, pitch, roll)
        kp_source = state.source_keypoints.expand(batch, -1, -1)
        if relationship is None and state.volume is not None:
            volume, compressed = state.volume, state.compressed_volume
        else:
            volume = self.generator.lift(self.generator.fuse(state.source_features, relationship))
            compressed = self.generator.prepare_volume(volume)
        return self.generator.animate(volume, compressed, kp_source, kp_driving).prediction
