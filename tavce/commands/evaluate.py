"""``tavce evaluate --generated DIR --reference DIR``: FID, CSIM, LSE-D / LSE-C and TAVC similarity (docs/evaluation.md)."""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from typing import Any, cast

from tavce.cli import Subcommand, add_device_arguments
from tavce.commands.executor_arguments import add_executor_arguments, executor_from_arguments
from tavce.constants import CROP_ONLY_MODES

logger = logging.getLogger(__name__)

EPILOG = """\
Generated and reference videos are paired by file name (generated/id01.mp4 <-> reference/id01.mp4).
Each metric runs only when its backbone is given: --inception-weights (FID), --arcface-model (CSIM),
--syncnet-weights (LSE-D / LSE-C), --tavc-metric (TAVC similarity; with --self-reconstruction the
pipeline's own metric is used when it has one). Numbers comparable with the paper need the official
backbones (pt_inception-2015-12-05-6726825d.pth, insightface w600k_r50.onnx, syncnet_v2.model); see
docs/evaluation.md. A folder written by save_pretrained() of a tavce module works for any backbone.
The table goes to stdout, one row per video plus the means; FID is computed over all frames.
"""


def make_landmarker(name: str):
    """The face landmarker for alignment and mouth crops: auto (insightface if its pack is present, else dlib)."""
    from tavce.preprocess.landmarks import landmarker_class

    return landmarker_class(name)()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--generated",
        required=True,
        metavar="DIR",
        help="folder of generated videos (written there first with --self-reconstruction)",
    )
    parser.add_argument("--reference", required=True, metavar="DIR", help="folder of the real videos, same file names")
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="REPORT.json",
        help="also write the report as JSON (per-video scores, means, FID, backbones, settings)",
    )
    backbones = parser.add_argument_group("metric backbones (a metric without its backbone is skipped)")
    backbones.add_argument(
        "--inception-weights",
        default=None,
        metavar="FILE",
        help="FID: pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or a module folder)",
    )
    backbones.add_argument(
        "--arcface-model",
        default=None,
        metavar="FILE",
        help="CSIM: insightface ArcFace .onnx, e.g. buffalo_l/w600k_r50.onnx (or a module folder)",
    )
    backbones.add_argument(
        "--syncnet-weights",
        default=None,
        metavar="FILE",
        help="LSE-D / LSE-C: syncnet_python's syncnet_v2.model (or a module folder)",
    )
    backbones.add_argument(
        "--tavc-metric",
        default=None,
        metavar="PATH",
        help="TAVC similarity: tavce weights folder with a metric, metric folder, or the TAVCE "
        "correlation checkpoint .pth (default with --self-reconstruction: the pipeline's metric)",
    )
    backbones.add_argument(
        "--landmarker",
        default="auto",
        choices=("auto", "insightface", "dlib"),
        help="face landmarks for CSIM alignment and TAVC mouth crops: auto = insightface if its "
        "model pack is installed, else dlib (default auto)",
    )
    backbones.add_argument(
        "--no-align",
        action="store_true",
        help="CSIM on whole frames resized to the encoder's input instead of landmark-aligned faces",
    )
    protocol = parser.add_argument_group("protocol")
    protocol.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="compare at most N leading frames per video (default: all; 200 with --self-reconstruction)",
    )
    protocol.add_argument("--max-offset", type=int, default=15, help="LSE offset search, +-frames (default 15)")
    protocol.add_argument(
        "--self-reconstruction",
        action="store_true",
        help="first generate DIR: each reference video's first frame driven by its own audio "
        "(first 200 frames, pose style 0, blinks, seed 2024), as the paper evaluates",
    )
    protocol.add_argument(
        "--weights",
        default=None,
        help="with --self-reconstruction: tavce weights folder, official SadTalker folder or Hub "
        "repo id (default: vinthony/SadTalker-V002rc)",
    )
    protocol.add_argument("--offline", action="store_true", help="never use the network; cached/local weights only")
    protocol.add_argument(
        "--mode",
        default="crop",
        choices=CROP_ONLY_MODES,
        help="with --self-reconstruction: crop mode of the first frame (default crop)",
    )
    protocol.add_argument(
        "--seed", type=int, default=2024, help="with --self-reconstruction: random seed (default 2024)"
    )
    compute = parser.add_argument_group("compute")
    add_device_arguments(compute)
    compute.add_argument("--batch-size", type=int, default=32, help="frames per FID network call (default 32)")
    compute.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_executor_arguments(parser, unit="video scored", default_workers="1, in this process")


def run(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from tavce.errors import InvalidArgumentError
    from tavce.evaluation import (
        CSIMConfig,
        EvaluationConfig,
        MetricBackbones,
        SelfReconstructionConfig,
        SyncConfig,
        evaluate_videos,
        load_feature_extractor,
        load_identity_encoder,
        load_sync_encoder,
        load_tavc_metric,
        pair_videos,
        self_reconstruct,
    )
    from tavce.device import resolve_device
    from tavce.evaluation.runner import videos_in_folder

    if arguments.batch_size < 1:
        raise InvalidArgumentError(f"--batch-size {arguments.batch_size}: must be at least 1")
    max_frames = arguments.max_frames or (200 if arguments.self_reconstruction else None)
    config = EvaluationConfig(
        max_frames=max_frames,
        batch_size=arguments.batch_size,
        csim=CSIMConfig(align=not arguments.no_align),
        sync=SyncConfig(max_offset=arguments.max_offset),
    )
    device = resolve_device(arguments.device)
    backbones = MetricBackbones()
    # Every backbone is loaded before any generation, so a wrong path fails in seconds, not after hours.
    for option, attribute, loader in (
        ("inception_weights", "feature_extractor", load_feature_extractor),
        ("arcface_model", "identity_encoder", load_identity_encoder),
        ("syncnet_weights", "sync_encoder", load_sync_encoder),
        ("tavc_metric", "metric", load_tavc_metric),
    ):
        path = getattr(arguments, option)
        if path is not None:
            setattr(backbones, attribute, loader(path, device))
            backbones.names[attribute] = str(path)
    if not arguments.self_reconstruction:
        _require_a_metric(backbones)
    landmarker = None
    if (
        arguments.self_reconstruction
        or backbones.metric is not None
        or (backbones.identity_encoder is not None and config.csim.align)
    ):
        landmarker = make_landmarker(arguments.landmarker)
    if arguments.self_reconstruction:
        from tavce.pipeline import TalkingHeadPipeline

        pipe = TalkingHeadPipeline.from_pretrained(
            arguments.weights, local_files_only=arguments.offline, landmarker=landmarker, device=device
        )
        if backbones.metric is None and pipe.metric is not None:
            backbones.metric = pipe.metric
            backbones.names["metric"] = f"{arguments.weights or 'default weights'} (pipeline metric)"
        _require_a_metric(backbones)
        references = list(videos_in_folder(Path(arguments.reference), "reference").values())
        self_reconstruct(
            references,
            arguments.generated,
            pipe,
            SelfReconstructionConfig(max_frames=cast(int, max_frames), mode=arguments.mode, seed=arguments.seed),
            progress=not arguments.no_progress,
        )
    backbones.landmarker = (
        landmarker if (backbones.metric is not None or backbones.identity_encoder is not None) else None
    )
    executor = None
    if arguments.ray is not None or arguments.workers is not None:
        executor = executor_from_arguments(arguments)
        if backbones.landmarker is not None:  # each worker builds its own: detectors do not pickle
            backbones.landmarker = functools.partial(make_landmarker, arguments.landmarker)
    report = evaluate_videos(
        pair_videos(arguments.generated, arguments.reference),
        backbones,
        config,
        executor=executor,
        progress=not arguments.no_progress,
    )
    if arguments.output is not None:
        logger.info("report written to %s", report.save(arguments.output))
    # The table is the command's result: stdout, for the reader and for scripts; logs go to stderr.
    print(report.format_table())
    return 0


def _require_a_metric(backbones) -> None:
    from tavce.errors import InvalidArgumentError

    if not any((backbones.feature_extractor, backbones.identity_encoder, backbones.sync_encoder, backbones.metric)):
        raise InvalidArgumentError(
            "no metric to compute: give at least one of --inception-weights, --arcface-model, --syncnet-weights, "
            "--tavc-metric (see docs/evaluation.md for the official files)"
        )


SUBCOMMAND = Subcommand(
    name="evaluate",
    help="score generated talking-head videos against the real ones: FID, CSIM, LSE-D / LSE-C, TAVC similarity",
    add_arguments=add_arguments,
    run=run,
)
