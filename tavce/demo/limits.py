"""What the web app accepts from a visitor: upload sizes, photo pixels, speech duration, how long results stay.

Every check runs before any model work, so a too-large upload costs the server a
file-header read, not a face detection or a render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import soundfile

from tavce.errors import InvalidArgumentError, InvalidAudioError, TavceError
from tavce.types import AudioClip, SAMPLE_RATE

__all__ = ["DemoLimits"]

_MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class DemoLimits:
    """Limits of one web app, checked on every request before work starts.

    Attributes:
        max_audio_seconds: longest speech clip accepted, in seconds (rendering time grows with it).
        max_image_pixels: largest photo accepted, width x height (decoded photos take 3 bytes a pixel).
        max_upload_megabytes: largest file accepted per upload, in MiB (also given to Gradio, which
            refuses larger uploads before storing them).
        retention_seconds: how long a result video stays downloadable; Gradio's cache cleaning removes
            it afterwards (and every result when the server stops).
    """

    max_audio_seconds: float = 300.0
    max_image_pixels: int = 16_000_000
    max_upload_megabytes: float = 50.0
    retention_seconds: int = 3600

    def __post_init__(self) -> None:
        for name in ("max_audio_seconds", "max_image_pixels", "max_upload_megabytes", "retention_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise InvalidArgumentError(f"{name}={value!r}: must be a positive number")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_megabytes * _MEBIBYTE)

    def check_upload(self, path: Path, what: str, error: type[TavceError]) -> None:
        """Refuse an uploaded file larger than :attr:`max_upload_megabytes`.

        Raises:
            ``error`` (the input's own error type), naming ``what`` and the limit.
        """
        size = path.stat().st_size
        if size > self.max_upload_bytes:
            raise error(
                f"{what}: the file is {size / _MEBIBYTE:.1f} MiB; this page accepts files up to "
                f"{self.max_upload_megabytes:g} MiB. Use a smaller or shorter file."
            )

    def check_audio_header(self, path: Path, what: str) -> None:
        """Refuse a speech file whose header declares more than :attr:`max_audio_seconds`, before decoding it.

        Files libsndfile cannot read the header of (m4a, AAC, videos) are measured after
        decoding instead (:meth:`check_audio_clip`); the upload size bounds those.

        Raises:
            InvalidAudioError: the clip is too long.
        """
        try:
            info = soundfile.info(str(path))
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            return
        if info.samplerate > 0:
            self._check_seconds(info.frames / info.samplerate, what)

    def check_audio_clip(self, clip: AudioClip, what: str) -> None:
        """Refuse a decoded clip longer than :attr:`max_audio_seconds`.

        Raises:
            InvalidAudioError: the clip is too long.
        """
        self._check_seconds(len(clip.samples) / SAMPLE_RATE, what)

    def _check_seconds(self, seconds: float, what: str) -> None:
        if seconds > self.max_audio_seconds:
            raise InvalidAudioError(
                f"{what}: the speech is {seconds:.1f} s long; this page renders up to "
                f"{self.max_audio_seconds:g} s. Cut the clip or split it into parts."
            )
