"""``tavce demo``: serve the web app (a Gradio page) around one loaded pipeline."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from tavce.cli import EXIT_INTERRUPTED, Subcommand, add_device_arguments
from tavce.commands.weights_arguments import (
    add_enhancer_arguments,
    add_weights_arguments,
    enhancer_from_arguments,
    weights_from_arguments,
)
from tavce.errors import InvalidArgumentError


def parse_auth(text: str) -> tuple[str, str]:
    """argparse type for ``--auth USER:PASS`` -> (user, password)."""
    user, separator, password = text.partition(":")
    if not (separator and user and password):
        raise argparse.ArgumentTypeError("expected USER:PASS, both non-empty")
    return user, password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = add_weights_arguments(parser, loaded="loaded once when the app starts and shared by every visitor")
    add_device_arguments(model, dtype_help="network precision")
    add_enhancer_arguments(parser)
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 listens on every network)",
    )
    server.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    server.add_argument(
        "--share", action="store_true",
        help="also publish the page through a temporary public gradio.live link (off unless asked)",
    )
    server.add_argument(
        "--auth", type=parse_auth, default=None, metavar="USER:PASS",
        help="ask visitors for this user name and password (visible to local users in the process list)",
    )
    server.add_argument(
        "--concurrency", type=int, default=1,
        help="requests rendered at the same time on the one pipeline; the others wait in the queue (default 1)",
    )
    limits = parser.add_argument_group("limits (checked before any work starts)")
    limits.add_argument(
        "--max-audio-seconds", type=float, default=300.0, help="longest speech clip accepted, in seconds (default 300)"
    )
    limits.add_argument(
        "--max-image-pixels", type=int, default=16_000_000,
        help="largest photo accepted, width x height in pixels (default 16000000)",
    )
    limits.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest file accepted per upload, in MiB (default 50)"
    )
    limits.add_argument(
        "--retention-minutes", type=float, default=60.0,
        help="how long result videos stay downloadable before they are deleted (default 60)",
    )


def _stop_on_sigterm() -> None:
    """Make SIGTERM (a service manager's stop, ``kill``) close the server as Ctrl-C does.

    Gradio then shuts down in order and deletes the result videos it holds; the default
    SIGTERM action would end the process on the spot and leave them behind.
    """

    def interrupt(signal_number, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run(arguments: argparse.Namespace) -> int:
    from tavce._extras import require

    require("gradio", "demo")  # before loading weights: a missing extra is the first thing to hear about

    import dataclasses

    from tavce.demo import DemoLimits, build_app, request_workers
    from tavce.demo.app import check_concurrency
    from tavce.pipeline import TalkingHeadPipeline

    if not 1 <= arguments.port <= 65535:
        raise InvalidArgumentError(f"--port {arguments.port}: must be 1..65535")
    check_concurrency(arguments.concurrency)
    limits = DemoLimits(
        max_audio_seconds=arguments.max_audio_seconds,
        max_image_pixels=arguments.max_image_pixels,
        max_upload_megabytes=arguments.max_upload_mb,
        retention_seconds=max(1, round(arguments.retention_minutes * 60)),
    )
    enhancer = enhancer_from_arguments(arguments)
    workers = request_workers(arguments.concurrency)
    # Loaded on the threads that will render: all PyTorch work on the same threads is faster on a CPU.
    loading = workers.submit(
        TalkingHeadPipeline.from_pretrained,
        **weights_from_arguments(arguments), **enhancer, device=arguments.device, dtype=arguments.dtype,
    )
    try:
        pipe = loading.result()
    except KeyboardInterrupt:
        # A worker thread cannot be interrupted, and the interpreter would wait for it at exit (a first
        # download from the Hub takes minutes): leave now. Nothing of ours is half-written; the Hub's
        # cache keeps partial downloads under temporary names and resumes them.
        print("tavce demo: interrupted while loading the weights", file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)
    app = build_app(pipe, concurrency=arguments.concurrency, workers=workers, **dataclasses.asdict(limits))
    _stop_on_sigterm()
    app.launch(
        server_name=arguments.host,
        server_port=arguments.port,
        share=arguments.share,
        auth=arguments.auth,
        max_file_size=limits.max_upload_bytes,
    )
    return 0


SUBCOMMAND = Subcommand(
    name="demo",
    help="serve a web page where visitors animate a portrait with a speech clip (needs tavce[demo])",
    add_arguments=add_arguments,
    run=run,
)
