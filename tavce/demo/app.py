"""The web page: :func:`build_app` lays out a Gradio Blocks app around one loaded pipeline."""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tavce._extras import require
from tavce.demo.form import build_form
from tavce.demo.handler import GenerateHandler
from tavce.demo.limits import DemoLimits
from tavce.errors import InvalidArgumentError, TavceError

if TYPE_CHECKING:
    import gradio

    from tavce.pipeline import TalkingHeadPipeline

__all__ = [
    "ELEMENT_IDS", "OUTPUT_SUBFOLDER", "WORKER_THREAD_PREFIX", "build_app", "check_concurrency", "request_workers",
]

logger = logging.getLogger(__name__)

ELEMENT_IDS = ("portrait", "speech", "generate", "result", "seed")
"""Stable ``id``s of the page's elements, for tests and scripts that drive the page."""

OUTPUT_SUBFOLDER = "tavce-demo"
"""Folder of the result videos inside Gradio's cache (``GRADIO_TEMP_DIR``, default ``$TMPDIR/gradio``)."""

CLEANING_INTERVAL_SECONDS = 600
"""How often Gradio's cache cleaning looks for results older than the retention time (at most)."""

WORKER_THREAD_PREFIX = "tavce-demo"
"""Name prefix of the threads that run the page's requests."""


def _introduction(pipe: TalkingHeadPipeline) -> str:
    renderer = "TAVCE (CERL on)" if pipe.has_cerl else "SadTalker"
    return (
        "# Talking portrait\n"
        "Upload a photo of one face and a speech clip (or record one), choose how it should move, and press "
        f"**Generate**. The face is animated at {pipe.size} x {pipe.size} pixels by the {renderer} renderer "
        "(the loaded weights decide both), 25 frames per second of speech."
    )


def check_concurrency(concurrency: int) -> None:
    """Refuse a concurrency that is not a whole number of at least 1.

    Raises:
        InvalidArgumentError: naming the value.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(f"concurrency={concurrency!r}: must be a whole number of at least 1")


def request_workers(concurrency: int = 1) -> ThreadPoolExecutor:
    """The long-lived threads that run the page's requests: ``concurrency`` of them.

    Load the pipeline on them too (``workers.submit(TalkingHeadPipeline.from_pretrained).result()``)
    and pass them to :func:`build_app`: then all PyTorch work of the server runs on the same
    threads. On a CPU that matters: PyTorch's OpenMP runtime keeps a team of worker threads for
    every thread that has run parallel work, and once there are more of them than cores its idle
    workers sleep between the many short parallel regions of a frame instead of spinning: a frame
    rendered on a fresh thread took 1.47 s against 1.27 s on the thread that had loaded the weights
    (docs/performance.md, "Threads that render", also for hosts whose cores are oversubscribed).

    Raises:
        InvalidArgumentError: ``concurrency`` is not a whole number of at least 1.
    """
    check_concurrency(concurrency)
    return ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=WORKER_THREAD_PREFIX)


def build_app(
    pipe: TalkingHeadPipeline, *, concurrency: int = 1, workers: Executor | None = None, **limits: Any
) -> gradio.Blocks:
    """The web app around ``pipe``, ready to ``launch()``.

    One pipeline serves every visitor: requests wait in Gradio's queue (each visitor sees
    their position, then a progress bar of their own) and ``concurrency`` of them render at a
    time, on ``workers``' threads rather than Gradio's. Result videos are written under fresh
    names into Gradio's cache and removed by its cache cleaning after ``retention_seconds``.

    Args:
        pipe: a loaded :class:`~tavce.pipeline.TalkingHeadPipeline`.
        concurrency: requests rendered at the same time (1 per device is the usual choice).
        workers: the executor that runs requests, with at least ``concurrency`` threads: best the
            :func:`request_workers` that loaded ``pipe`` (faster on a CPU); by default new ones.
        **limits: fields of :class:`~tavce.demo.limits.DemoLimits` (``max_audio_seconds``,
            ``max_image_pixels``, ``max_upload_megabytes``, ``retention_seconds``). Pass
            ``max_file_size=f"{max_upload_megabytes}mb"`` to ``launch()`` as well so that Gradio
            refuses larger uploads before storing them (``tavce demo`` does).

    Raises:
        MissingExtraError: gradio is not installed (``pip install 'tavce[demo]'``).
        InvalidArgumentError: an unknown limit, a limit or concurrency that is not positive, workers
            that are not an executor.
    """
    gr = require("gradio", "demo")
    known = [field.name for field in dataclasses.fields(DemoLimits)]
    unknown = sorted(set(limits) - set(known))
    if unknown:
        raise InvalidArgumentError(f"build_app: unknown limits {unknown}; limits are {', '.join(known)}")
    check_concurrency(concurrency)
    if workers is not None and not isinstance(workers, Executor):
        raise InvalidArgumentError(f"workers={workers!r}: must be a concurrent.futures executor (request_workers())")
    run_requests = workers or request_workers(concurrency)
    settings = DemoLimits(**limits)
    cleaning = (min(settings.retention_seconds, CLEANING_INTERVAL_SECONDS), settings.retention_seconds)

    with gr.Blocks(title="tavce: talking portrait", delete_cache=cleaning) as app:
        handler = GenerateHandler(pipe, settings, Path(app.GRADIO_CACHE) / OUTPUT_SUBFOLDER)
        gr.Markdown(_introduction(pipe))
        with gr.Row():
            with gr.Column():
                portrait = gr.Image(
                    type="filepath", image_mode=None, sources=["upload", "clipboard"], label="Portrait",
                    elem_id="portrait",
                )
                speech = gr.Audio(
                    type="filepath", sources=["upload", "microphone"], label="Speech", elem_id="speech",
                )
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                result = gr.Video(label="Talking video", interactive=False, elem_id="result")
                seed_used = gr.Textbox(label="Seed used", interactive=False, elem_id="seed")
                gr.Markdown(
                    f"Photos up to {settings.max_image_pixels / 1e6:g} megapixels, speech up to "
                    f"{settings.max_audio_seconds:g} s, files up to {settings.max_upload_megabytes:g} MiB. "
                    f"Videos stay downloadable for {settings.retention_seconds / 60:g} minutes."
                )
        with gr.Accordion("Options", open=True):
            options = build_form(gr)
        names = list(options)

        def generate_video(portrait_path, speech_path, *values, progress=gr.Progress()):
            form = dict(zip(names, values))
            # gr.Progress finds its request through context variables: the worker runs in a copy of ours.
            context = contextvars.copy_context()
            try:
                request = run_requests.submit(context.run, handler, portrait_path, speech_path, form, progress)
                video, seed = request.result()
            except TavceError as error:
                logger.info("request refused: %s", error)
                raise gr.Error(str(error), print_exception=False) from None
            except Exception as error:
                # A bug, not bad input: the page says so in one line, the log keeps the traceback.
                logger.exception("request failed")
                raise gr.Error(
                    f"internal error ({type(error).__name__}); the server log has the details", print_exception=False
                ) from None
            return str(video), str(seed)

        generate.click(
            generate_video, inputs=[portrait, speech, *options.values()], outputs=[result, seed_used],
            show_progress="full",
        )
    app.queue(default_concurrency_limit=concurrency)
    return app
