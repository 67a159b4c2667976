"""One page request -> one video: check the uploads, validate the form, generate, save under a fresh name.

:class:`GenerateHandler` knows nothing of Gradio: it takes file paths and form values,
reports progress through a callable and raises :class:`~tavce.errors.TavceError`; the app
(:mod:`tavce.demo.app`) turns those into the page's progress bar and error message.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tavce.errors import FaceNotDetectedError, InvalidAudioError, InvalidImageError, TavceError
from tavce.options import GenerationOptions

if TYPE_CHECKING:
    from tavce.demo.limits import DemoLimits
    from tavce.pipeline import TalkingHeadPipeline

__all__ = ["GenerateHandler", "StageProgress"]

logger = logging.getLogger(__name__)

DRAWN_SEEDS = 2**31
"""A seed drawn for a visitor is below this: short enough to copy from the page."""


class StageProgress(Protocol):
    """Receives progress as ``gr.Progress`` does: a fraction or ``(done, total)``, and what is happening."""

    def __call__(self, progress: float | tuple[int, int], desc: str, unit: str = "steps") -> Any: ...


def _ignore_progress(progress: float | tuple[int, int], desc: str, unit: str = "steps") -> None:
    return None


class GenerateHandler:
    """Makes the video of one page request with the pipeline shared by every request.

    Args:
        pipe: the loaded pipeline, used by every request (several at once with concurrency > 1).
        limits: what a request may send, checked before any model work.
        output_folder: where videos are written, under fresh random names (never an upload's name);
            the app puts it in Gradio's cache, whose cleaning removes them.
    """

    def __init__(self, pipe: TalkingHeadPipeline, limits: DemoLimits, output_folder: Path) -> None:
        self.pipe = pipe
        self.limits = limits
        self.output_folder = Path(output_folder)

    def __call__(
        self,
        portrait: str | Path | None,
        speech: str | Path | None,
        form: Mapping[str, Any],
        progress: StageProgress = _ignore_progress,
    ) -> tuple[Path, int]:
        """Generate the video of one request.

        Args:
            portrait: path of the uploaded photo (None when nothing was uploaded).
            speech: path of the uploaded or recorded speech (None when nothing was given).
            form: option name -> value as the page sends it (see :mod:`tavce.demo.form`).
            progress: told what is happening; during rendering, frames done of the total.

        Returns:
            The written mp4 and the seed it was made with (drawn when the form left it empty).

        Raises:
            TavceError: a missing or refused upload, a bad option, no face found, ...; messages
                name uploads by their file name, never by their server path.
        """
        if portrait is None:
            raise InvalidImageError("no portrait: upload a photo with one visible face")
        if speech is None:
            raise InvalidAudioError("no speech: upload a speech clip or record one with the microphone")
        portrait, speech = Path(portrait), Path(speech)
        try:
            return self._generate(portrait, speech, form, progress)
        except TavceError as error:
            message = str(error).replace(str(portrait), portrait.name).replace(str(speech), speech.name)
            if isinstance(error, FaceNotDetectedError):
                message += " On this page: type the face's box into Face box, under Framing."
            raise type(error)(message) from None

    def _generate(
        self, portrait: Path, speech: Path, form: Mapping[str, Any], progress: StageProgress
    ) -> tuple[Path, int]:
        import torch

        from tavce.audio import load_audio
        from tavce.image import load_image

        progress(0.0, desc="Checking the uploads")
        options = GenerationOptions.from_mapping(form, where="the form")
        self.limits.check_upload(portrait, portrait.name, InvalidImageError)
        self.limits.check_upload(speech, speech.name, InvalidAudioError)
        self.limits.check_audio_header(speech, speech.name)
        photo = load_image(portrait, max_pixels=self.limits.max_image_pixels)
        clip = load_audio(speech)
        self.limits.check_audio_clip(clip, speech.name)

        seed = options.seed if options.seed is not None else secrets.randbelow(DRAWN_SEEDS)

        def rendered(done: int, total: int) -> None:
            progress((done, total), desc="Rendering", unit="frames")

        progress(0.0, desc="Finding the face and planning the motion")
        # No lock: one pipeline is safe to share between threads (docs/preprocess.md, "Threads").
        result = self.pipe(photo, clip, **{**form, "seed": seed, "progress": rendered})
        self.output_folder.mkdir(parents=True, exist_ok=True)
        output = self.output_folder / f"{uuid.uuid4().hex}.mp4"
        with torch.inference_mode():
            result.save(output)
        logger.info("request done: %d frames, seed %d", result.num_frames, seed)
        return output, seed
