"""``tavce convert -o OUTPUT [SOURCE]``: official SadTalker / TAVCE checkpoints -> a tavce weights folder."""

from __future__ import annotations

import argparse

from tavce import DEFAULT_REPO
from tavce.cli import Subcommand
from tavce.commands.weights_arguments import add_hub_arguments
from tavce.constants import CROP_ONLY_MODES, RENDER_SIZES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        default=DEFAULT_REPO,
        help="folder holding the official files (SadTalker_V0.0.2_<size>.safetensors, "
        "mapping_00229-model.pth.tar, mapping_00109-model.pth.tar) or a Hugging Face repo id "
        "(default: %(default)s)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FOLDER", help="tavce weights folder to write (created)")
    parser.add_argument(
        "--size",
        type=int,
        default=256,
        choices=RENDER_SIZES,
        help="face render resolution: which SadTalker_V0.0.2_<size>.safetensors to convert (default 256)",
    )
    parser.add_argument(
        "--crop-modes-only",
        action="store_true",
        help="leave out the 73-dim MappingNet (mapping_00109) of the full/extfull modes; the folder then "
        f"serves {', '.join(CROP_ONLY_MODES)} only",
    )
    tavce_weights = parser.add_argument_group(
        "TAVCE weights (give both to switch CERL on; without them the renderer is SadTalker's)"
    )
    tavce_weights.add_argument(
        "--tavce-correlation",
        default=None,
        metavar="PATH",
        help="TAVCE correlation checkpoint (.pth); its audio encoder drives CERL",
    )
    tavce_weights.add_argument(
        "--tavce-facerender",
        metavar="PATH",
        default=None,
        help="TAVCE face-render checkpoint (.pth): MappingNet, keypoint detector and generator with CERL layers",
    )
    parser.add_argument(
        "--enhancer-weights",
        default=None,
        metavar="PATH_OR_REPO",
        help="also convert the face enhancer: folder holding GFPGANv1.4.pth and parsing_parsenet.pth (GitHub "
        "releases of TencentARC/GFPGAN and xinntao/facexlib), or a Hub repo id holding both",
    )
    hub = parser.add_argument_group("Hugging Face Hub (when SOURCE is a repo id)")
    add_hub_arguments(hub)


def run(arguments: argparse.Namespace) -> int:
    from tavce.convert.export import convert_official

    output = convert_official(
        arguments.output,
        arguments.source,
        size=arguments.size,
        full_mode=not arguments.crop_modes_only,
        tavce_correlation=arguments.tavce_correlation,
        tavce_facerender=arguments.tavce_facerender,
        revision=arguments.revision,
        cache_dir=arguments.cache_dir,
        local_files_only=arguments.offline,
        enhancer_weights=arguments.enhancer_weights,
    )
    print(output)
    return 0


SUBCOMMAND = Subcommand(
    name="convert",
    help="convert official SadTalker (and optional TAVCE) checkpoints into a tavce weights folder",
    add_arguments=add_arguments,
    run=run,
)
