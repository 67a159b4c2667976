"""``tavce batch JOBS OUT``: one video per row of a job file, on local worker processes or Ray (docs/batch.md)."""

from __future__ import annotations

import argparse

from tavce.cli import Subcommand
from tavce.commands.executor_arguments import add_executor_arguments, executor_from_arguments
from tavce.commands.weights_arguments import add_weights_arguments, weights_from_arguments
from tavce.constants import DTYPE_NAMES

EXIT_SOME_FAILED = 1

EPILOG = """\
JOBS is a .csv file (header row) or a .jsonl file (one JSON object a line), one job a row: the columns
image and audio (paths; relative ones start at the job file's folder), optionally output (a .mp4 name
inside OUT; default IMAGE-AUDIO.mp4), and any per-call option of `tavce generate` by its Python name:
mode, still, pose_style, expression_scale, seed, use_blink, face_box ("x0,y0,x1,y1"), batch_size, ...
Options of the pipeline itself (weights, size, device, dtype, ...) are flags of this command and are
refused as columns. A bad row fails alone. OUT gets the videos and results.jsonl, one line per job
(inputs, status, error, frames, seconds, worker). Rerunning skips jobs already done with the same
inputs, options and weights. Exit status: 0 all succeeded, 1 some failed (see results.jsonl), 2 error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("jobs", metavar="JOBS", help="job file: .csv with a header row, or .jsonl")
    parser.add_argument("output", metavar="OUT", help="output folder for the videos and results.jsonl (created)")
    add_weights_arguments(parser, loaded="loaded once per worker", size_default=256)
    compute = parser.add_argument_group("compute")
    compute.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1 (default: each worker its own GPU when there are GPUs, else the CPU)",
    )
    compute.add_argument(
        "--dtype",
        default=None,
        choices=DTYPE_NAMES,
        help="network precision (default: float16 on CUDA, float32 elsewhere)",
    )
    compute.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_executor_arguments(parser, unit="video", default_workers="one per visible GPU, else one")


def run(arguments: argparse.Namespace) -> int:
    from tavce.batch import run_batch

    executor = executor_from_arguments(arguments)
    weights = weights_from_arguments(arguments)
    weights["offline"] = weights.pop("local_files_only")
    report = run_batch(
        arguments.jobs,
        arguments.output,
        executor=executor,
        **weights,
        device=arguments.device,
        dtype=arguments.dtype,
        progress=not arguments.no_progress,
    )
    # The library has logged each failure and the summary line; stdout gets the results file, for scripts.
    print(report.results)
    return EXIT_SOME_FAILED if report.failed else 0


SUBCOMMAND = Subcommand(
    name="batch",
    help="generate one video per row of a job file (CSV / JSON lines), on local workers or a Ray cluster",
    add_arguments=add_arguments,
    run=run,
)
