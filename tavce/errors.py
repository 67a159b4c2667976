"""Error types raised by tavce.

Every public entry point turns low-level failures (numpy, torch, ffmpeg, file
system) into one of these, so callers can catch ``TavceError`` and show the
message as is: it names the file or argument, the problem and what to do.
"""

from __future__ import annotations

__all__ = [
    "TavceError",
    "InvalidAudioError",
    "InvalidImageError",
    "InvalidVideoError",
    "FaceNotDetectedError",
    "WeightsNotFoundError",
    "IncompatibleWeightsError",
    "OutputError",
    "InvalidArgumentError",
    "RenderError",
    "ComponentNotSerializableError",
    "CheckpointError",
    "MissingExtraError",
    "LandmarkerError",
    "TrainingConfigError",
    "NonFiniteLossError",
]


class TavceError(Exception):
    """Base class of every error tavce raises on purpose."""


class InvalidArgumentError(TavceError, ValueError):
    """An option or tensor passed to a public function is out of range or mis-shaped."""


class InvalidAudioError(TavceError, ValueError):
    """The driving audio cannot be used (missing, unreadable, empty, too short, non-finite)."""


class InvalidImageError(TavceError, ValueError):
    """The source image cannot be used (missing, corrupt, unsupported, too large)."""


class InvalidVideoError(TavceError, ValueError):
    """A video file cannot be used (missing, unreadable, no video stream, no frames)."""


class FaceNotDetectedError(TavceError):
    """No face was found in the source image."""


class WeightsNotFoundError(TavceError, FileNotFoundError):
    """Model weights could not be found locally or downloaded."""


class IncompatibleWeightsError(TavceError):
    """A weights file does not match the model: missing, unexpected or mis-shaped keys, or unsafe pickle."""


class OutputError(TavceError, OSError):
    """The output file cannot be written."""


class RenderError(TavceError, RuntimeError):
    """The networks produced unusable output (NaN or infinite values)."""


class ComponentNotSerializableError(TavceError, TypeError):
    """A component cannot be written to a weights folder (it is not a ``TavceModule``)."""


class CheckpointError(TavceError):
    """A training checkpoint cannot be resumed from: missing, corrupt, unsafe, or from another run's settings."""


class MissingExtraError(TavceError, ImportError):
    """An optional part of tavce needs a package that is not installed (the message names the extra)."""


class LandmarkerError(TavceError):
    """A landmark backend failed to load or run."""


class TrainingConfigError(InvalidArgumentError):
    """A training configuration (object or file) is invalid; the message names the field and the fix."""


class NonFiniteLossError(TavceError, FloatingPointError):
    """A loss term became NaN or infinite; the message names the terms (lower the learning rates, check the data)."""
