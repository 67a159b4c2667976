"""``tavce prepare-data VIDEOS OUT``: talking-head videos -> the training layout (see docs/training.md)."""

from __future__ import annotations

import argparse
from typing import Any

from tavce import DEFAULT_REPO
from tavce.cli import Subcommand, add_device_arguments
from tavce.commands.executor_arguments import add_executor_arguments, executor_from_arguments
from tavce.commands.weights_arguments import add_hub_arguments
from tavce.constants import CROP_ONLY_MODES, LANDMARKER_NAMES, RENDER_SIZES

EXIT_SOME_FAILED = 1

EPILOG = """\
Each video becomes OUT/<name>/ with frames/%06d.png (25 fps face crops), audio.wav (16 kHz mono),
annotations.npz (landmarks, 3DMM coefficients, mouth centres) and meta.json; OUT/manifest.jsonl lists
every video with status "ok" or "failed" and the reason. Rerunning skips finished videos, redoes a
video interrupted half-way and retries failed ones. With --ray, OUT must be a folder every Ray node
can write (a shared file system). Exit status: 0 all prepared, 1 some videos failed
(listed in the manifest), 2 error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "videos",
        metavar="VIDEOS",
        help="folder of videos (searched recursively; mp4, mov, mkv, avi, webm, ...), one video file, "
        "or a .txt file listing video paths one per line",
    )
    parser.add_argument("output", metavar="OUT", help="dataset folder to write (created; finished videos are kept)")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--size", type=int, default=256, choices=RENDER_SIZES, help="side of the face crops (default 256)"
    )
    data.add_argument(
        "--crop-mode",
        default="crop",
        choices=CROP_ONLY_MODES,
        help="crop: tight face box as the networks see it; extcrop: with a border; resize: whole frame "
        "squashed to a square, for clips that are already face crops (default crop)",
    )
    data.add_argument("--max-frames", type=int, default=None, help="keep at most N frames per video (default all)")
    data.add_argument(
        "--min-frames", type=int, default=6, help="fail videos with fewer usable 25 fps frames (default 6)"
    )
    data.add_argument(
        "--landmarker",
        default="auto",
        choices=LANDMARKER_NAMES,
        help="face landmark backend: auto = insightface if its model pack is installed, else dlib (default auto)",
    )
    weights = parser.add_argument_group("3DMM network weights")
    weights.add_argument(
        "--weights",
        default=DEFAULT_REPO,
        help="tavce weights folder, folder of official SadTalker files, or Hub repo id holding the face "
        "reconstruction network (default: %(default)s)",
    )
    add_hub_arguments(weights)
    compute = parser.add_argument_group("compute")
    add_device_arguments(compute)
    compute.add_argument("--batch-size", type=int, default=16, help="crops per 3DMM batch (default 16)")
    compute.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_executor_arguments(parser, unit="video", default_workers="1, in this process")


def load_face_recon(weights: str, *, revision: str | None, cache_dir: str | None, offline: bool):
    """The preprocessor's face-reconstruction network, from a tavce folder / Hub repo or the official files.

    Only that network is read: the other components (renderer, motion model) stay on disk.
    """
    from tavce.components import COMPONENT_NAMES, load_components
    from tavce.convert.assemble import build_preprocessor
    from tavce.convert.layout import locate_weights
    from tavce.convert.official import load_official_file, sadtalker_filename
    from tavce.errors import IncompatibleWeightsError
    from tavce.hub import resolve_weights

    layout, found = locate_weights(weights, revision=revision, cache_dir=cache_dir, local_files_only=offline)
    if layout == "tavce":
        preprocessor = load_components(found, skip=set(COMPONENT_NAMES) - {"preprocessor"})[0].get("preprocessor")
    else:
        folder = resolve_weights(
            found, sadtalker_filename(256), revision=revision, cache_dir=cache_dir, local_files_only=offline
        )
        preprocessor = build_preprocessor(load_official_file(folder / sadtalker_filename(256))["face_recon"])
    face_recon = getattr(preprocessor, "face_recon", None)
    if face_recon is None:
        raise IncompatibleWeightsError(
            f"{weights}: holds no preprocessor with a face_recon network; give a tavce weights folder written by "
            "`tavce convert` or the official SadTalker files"
        )
    return face_recon


def run(arguments: argparse.Namespace) -> int:
    from tavce.device import resolve_device
    from tavce.preprocess.landmarks import landmarker_class
    from tavce.training.data import PrepareConfig, prepare_dataset

    config = PrepareConfig(
        size=arguments.size,
        crop_mode=arguments.crop_mode,
        max_frames=arguments.max_frames,
        min_frames=arguments.min_frames,
        batch_size=arguments.batch_size,
    )

    device = resolve_device(arguments.device)

    def load_network():
        return load_face_recon(
            arguments.weights, revision=arguments.revision, cache_dir=arguments.cache_dir, offline=arguments.offline
        ).to(device)

    # A factory, not an instance: every worker process builds its own backend.
    landmarker = None if arguments.landmarker == "auto" else landmarker_class(arguments.landmarker)
    report = prepare_dataset(
        arguments.videos,
        arguments.output,
        load_face_recon=load_network,  # loaded only if some video is left to prepare
        landmarker=landmarker,
        config=config,
        workers=arguments.workers or 1,
        executor=executor_from_arguments(arguments) if arguments.ray is not None else None,
        progress=not arguments.no_progress,
    )
    # The library has logged each failure and the totals; stdout gets the manifest, for scripts.
    print(report.manifest)
    return EXIT_SOME_FAILED if report.failed else 0


SUBCOMMAND = Subcommand(
    name="prepare-data",
    help="prepare talking-head videos for training: 25 fps face crops, 16 kHz audio, landmarks, 3DMM coefficients",
    add_arguments=add_arguments,
    run=run,
)
