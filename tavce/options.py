"""Per-call generation options and their one validator, shared by every front-end.

:class:`GenerationOptions` holds what a user chooses for one video (crop mode, pose
style, seed, ...). :meth:`GenerationOptions.from_mapping` is the single entry point
through which the Python API (``pipe(**options)``), the CLI, batch job rows and the
web app turn loose values into options: unknown names, pipeline-level names and bad
values are refused with an :class:`~tavce.errors.InvalidArgumentError` that names the
option, the problem and the valid values, before any model work starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import torch

from tavce.errors import InvalidArgumentError
from tavce.models.audio2coeff.component import Audio2CoeffOptions
from tavce.types import CROP_MODES

__all__ = [
    "GenerationOptions",
    "NUM_POSE_STYLES",
    "PIPELINE_OPTIONS",
    "SADTALKER_NAMES",
    "ProgressCallback",
]

NUM_POSE_STYLES = 46
"""Head-motion styles of the PoseVAE: ``pose_style`` is 0..45."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with frames rendered so far and the clip's frame count."""

PIPELINE_OPTIONS: Mapping[str, str] = {
    "weights": "the weights are loaded once: from_pretrained(weights) / --weights",
    "size": "the render size belongs to the weights: from_pretrained(size=) / --size",
    "device": "the device is the pipeline's: from_pretrained(device=) / pipe.to(device) / --device",
    "dtype": "the precision is the pipeline's: from_pretrained(dtype=) / pipe.to(dtype=) / --dtype",
    "revision": "a Hub option of from_pretrained(revision=) / --revision",
    "cache_dir": "a Hub option of from_pretrained(cache_dir=) / --cache-dir",
    "offline": "a Hub option of from_pretrained(local_files_only=) / --offline",
    "tavce_correlation": "a weights file of from_pretrained(tavce_correlation=) / --tavce-correlation",
    "tavce_facerender": "a weights file of from_pretrained(tavce_facerender=) / --tavce-facerender",
    "enhancer": "the enhancer is a component of the pipeline: from_pretrained(enhancer='gfpgan') / --enhancer gfpgan",
    "enhancer_weights": "the enhancer is loaded once: from_pretrained(enhancer_weights=) / --enhancer-weights",
    "enhancer_upscale": "the enhancer's scale is set when it is loaded: from_pretrained(enhancer_upscale=) / --enhancer-upscale",
    "landmarker": "the face landmarker is the preprocessor's: from_pretrained(landmarker=) / --landmarker",
}
"""Options of the pipeline itself, not of one call: each is refused per call with where it belongs."""

SADTALKER_NAMES: Mapping[str, str] = {
    "preprocess": "mode",
    "expression_scale": "expression_scale",
    "exp_scale": "expression_scale",
    "pose": "pose_style",
    "ref_pose": "ref_pose",
    "ref_eyeblink": "ref_eyeblink",
    "batch": "batch_size",
    "still_mode": "still",
    "size": "from_pretrained(size=)",
    "result_dir": "result.save(path)",
    "checkpoint_dir": "from_pretrained(weights)",
    "cpu": "from_pretrained(device='cpu')",
    "face3dvis": "(not offered)",
    "input_yaw": "yaw",
    "input_pitch": "pitch",
    "input_roll": "roll",
}
"""SadTalker's option names (as in its ``inference.py``) and their tavce equivalents."""


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise InvalidArgumentError(f"{name}={value!r}: expected true or false")


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name}={value!r}: expected a whole number")
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float) and not number.is_integer():
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{name}={value!r}: expected a whole number") from None


def _as_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name}={value!r}: expected a number") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name}={value!r}: must be a finite number")
    return number


def _as_angles(name: str, value: Any) -> tuple[float, ...]:
    parts = value.replace(",", " ").split() if isinstance(value, str) else value
    if isinstance(parts, (int, float)):
        parts = [parts]
    try:
        angles = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        angles = ()
    if not angles or not all(math.isfinite(v) for v in angles):
        raise InvalidArgumentError(f"{name}={value!r}: expected one or more angles in degrees, e.g. -20 20")
    return angles


def _as_face_box(value: Any) -> tuple[float, float, float, float]:
    parts = value.replace(" ", "").split(",") if isinstance(value, str) else value
    try:
        box = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise InvalidArgumentError(f"face_box={value!r}: expected four numbers x0,y0,x1,y1 (photo pixels)")
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise InvalidArgumentError(f"face_box={value!r}: needs x0 < x1 and y0 < y1 (photo pixels)")
    return box


@dataclass(frozen=True)
class GenerationOptions(Audio2CoeffOptions):
    """Everything a user can choose for one generation, validated on construction.

    The options of the motion model are :class:`~tavce.models.audio2coeff.Audio2CoeffOptions`,
    which these extend, so they reach the audio-to-coefficient component as they are.

    Attributes:
        pose_style: head-motion style, 0..45.
        expression_scale: multiplies the expression coefficients (0 = neutral, 1 = as predicted); finite.
        still: keep the head pose of the photo; only the expression moves.
        use_blink: add random eye blinks (ignored with ref_eyeblink).
        ref_pose: a reference video (path) or its (T_ref, 6) head-pose sequence: the video's head
            motion (relative to its first frame) is added to the generated pose; a shorter reference
            is repeated (whole copies, then its first frames).
        ref_eyeblink: a reference video (path) or its (T_ref, 64) expression sequence: it replaces the
            photo's expression as the reference (its blinks are taken; random blinks are off).
        yaw, pitch, roll: head angles in degrees replacing the generated ones (free view): one value
            holds still, several are walked through over the clip at an even pace.
        smooth_pose: smooth the generated head pose (None: as SadTalker, on).
        variant: ``sadtalker`` or ``tavce-eval`` (the TAVCE evaluation script's motion).
        mode: crop mode, one of crop, extcrop, resize, full, extfull (full modes paste back into the photo).
        seed: seed of the pose noise and blink placement; None draws a fresh one.
        batch_size: frames rendered together (memory grows with it, not with the clip length); None
            chooses for the device: as many as free GPU memory allows on CUDA, 1 elsewhere (batching
            does not speed up a CPU).
        face_box: (x0, y0, x1, y1) face box in photo pixels; skips face detection.
        use_blink: add random eye blinks (ignored with ref_eyeblink).
        enhance: restore the face of every frame with the pipeline's enhancer; None enhances
            exactly when the pipeline has one, True without an enhancer is an error.
        face_index: which detected face, counted left to right from 0; None takes the largest.
        crf: x264 quality of :meth:`~tavce.pipeline.TalkingHeadResult.save`, 0 (lossless) .. 51;
            None keeps the writer's default (25).
        progress: True shows a progress bar while rendering, False hides it; a callable
            ``progress(done, total)`` is called after every rendered batch instead (per call, so
            concurrent callers never share a bar).
    """

    # Wider than the motion model's: the pipeline replaces a video path by its measured sequence.
    ref_pose: torch.Tensor | str | Path | None = None  # type: ignore[assignment]
    ref_eyeblink: torch.Tensor | str | Path | None = None  # type: ignore[assignment]
    mode: str = "crop"
    seed: int | None = None
    batch_size: int | None = None
    face_box: tuple[float, float, float, float] | None = None
    use_blink: bool = True
    enhance: bool | None = None
    face_index: int | None = None
    crf: int | None = None
    progress: bool | ProgressCallback = True

    def __post_init__(self) -> None:
        super().__post_init__()  # types of the motion options, finite expression scale
        if self.mode not in CROP_MODES:
            raise InvalidArgumentError(f"mode={self.mode!r}: must be one of {', '.join(CROP_MODES)}")
        if not 0 <= self.pose_style < NUM_POSE_STYLES:
            raise InvalidArgumentError(f"pose_style={self.pose_style!r}: must be a whole number 0..{NUM_POSE_STYLES - 1}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InvalidArgumentError(f"batch_size={self.batch_size}: must be at least 1")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise InvalidArgumentError(f"seed={self.seed}: must be 0 .. 2**63-1")
        if self.face_box is not None:
            object.__setattr__(self, "face_box", _as_face_box(self.face_box))
        if self.face_index is not None and self.face_index < 0:
            raise InvalidArgumentError(f"face_index={self.face_index}: must be 0 or more (faces counted left to right)")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise InvalidArgumentError(f"crf={self.crf}: must be 0 (lossless) .. 51")
        for name in ("yaw", "pitch", "roll"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _as_angles(name, getattr(self, name)))
        for name in ("ref_pose", "ref_eyeblink"):
            reference = getattr(self, name)
            if isinstance(reference, (str, Path)) and not Path(reference).expanduser().is_file():
                raise InvalidArgumentError(f"{name}={str(reference)!r}: no such video file; give a path to a video")
        if not (isinstance(self.progress, bool) or callable(self.progress)):
            raise InvalidArgumentError(f"progress={self.progress!r}: expected True, False or a callable(done, total)")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The option names a call accepts."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "pipe()") -> GenerationOptions:
        """Validate loose values (keyword arguments, a CSV / JSON row, web form fields) into options.

        Strings are converted to each field's type (``"true"``, ``"3"``, ``"1.5"``,
        ``"x0,y0,x1,y1"``); empty strings and None leave a field at its default.

        Args:
            values: option name -> value.
            where: what the values came from, for messages (``"pipe()"``, ``"jobs.csv row 3"``).

        Raises:
            InvalidArgumentError: an unknown name (with the valid names and, for a SadTalker name,
                the tavce equivalent), a pipeline-level name (with where it belongs), or a bad value.
        """
        accepted = cls.field_names()
        for name in values:
            if name in accepted:
                continue
            if name in PIPELINE_OPTIONS:
                raise InvalidArgumentError(f"{where}: {name} is not a per-call option; {PIPELINE_OPTIONS[name]}")
            hint = f" (SadTalker's {name} is {SADTALKER_NAMES[name]} here)" if name in SADTALKER_NAMES else ""
            raise InvalidArgumentError(
                f"{where}: unknown option {name!r}{hint}; valid options are {', '.join(accepted)}"
            )
        try:
            parsed = {
                name: _convert(name, value)
                for name, value in values.items()
                if not (value is None or (isinstance(value, str) and value.strip() == ""))
            }
            return cls(**parsed)
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"{where}: {error}") from None


_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "mode": lambda name, value: str(value).strip(),
    "still": _as_bool,
    "use_blink": _as_bool,
    "enhance": _as_bool,
    "pose_style": _as_int,
    "seed": _as_int,
    "batch_size": _as_int,
    "face_index": _as_int,
    "crf": _as_int,
    "smooth_pose": _as_bool,
    "expression_scale": _as_float,
    "face_box": lambda name, value: _as_face_box(value),
}


def _convert(name: str, value: Any) -> Any:
    convert = _CONVERTERS.get(name)
    return value if convert is None else convert(name, value)
