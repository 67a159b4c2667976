"""The weights options shared by the commands: where the networks come from.

``--revision``, ``--cache-dir`` and ``--offline`` (:func:`add_hub_arguments`) mean the same in every
command that reads from the Hub; ``--weights``, the TAVCE files and ``--size``
(:func:`add_weights_arguments`) the same in every command that loads a pipeline (``generate``,
``batch``, ``demo``), read back as :meth:`TalkingHeadPipeline.from_pretrained`'s keyword arguments;
the face enhancer's (:func:`add_enhancer_arguments`) the same in ``generate`` and ``demo``.
"""

from __future__ import annotations

import argparse
from typing import Any

from tavce.constants import ENHANCER_UPSCALES, ENHANCERS, RENDER_SIZES
from tavce.errors import InvalidArgumentError

__all__ = [
    "add_enhancer_arguments",
    "add_hub_arguments",
    "add_weights_arguments",
    "enhancer_from_arguments",
    "weights_from_arguments",
]


def add_hub_arguments(group: argparse._ActionsContainer) -> None:
    """``--revision``, ``--cache-dir``, ``--offline``: how a Hub repo id is fetched (ignored for local folders)."""
    group.add_argument("--revision", default=None, help="branch, tag or commit of the Hub repo (default: main)")
    group.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    group.add_argument("--offline", action="store_true", help="never use the network; use cached/local files only")


def add_weights_arguments(
    parser: argparse.ArgumentParser, *, loaded: str, size_default: int | None = None
) -> argparse._ArgumentGroup:
    """Add the weights options in a group titled ``weights (<loaded>)``; returns the group for more options.

    ``size_default``: None renders at the weights' own size (256 for the official files).
    """
    group = parser.add_argument_group(f"weights ({loaded})")
    group.add_argument(
        "--weights",
        default=None,
        help="tavce weights folder, folder of official SadTalker files, or Hub repo id "
        "(default: vinthony/SadTalker-V002rc, downloaded once into the Hugging Face cache)",
    )
    add_hub_arguments(group)
    group.add_argument(
        "--tavce-correlation", default=None, help="TAVCE correlation checkpoint (.pth); with --tavce-facerender enables CERL"
    )
    group.add_argument(
        "--tavce-facerender", default=None, help="TAVCE face-render checkpoint (.pth) with CERL layers; needs --tavce-correlation"
    )
    size_help = "the weights' own; 256 for the official files" if size_default is None else str(size_default)
    group.add_argument(
        "--size", type=int, default=size_default, choices=RENDER_SIZES,
        help=f"face render resolution (default: {size_help})",
    )  # fmt: skip
    return group


def weights_from_arguments(arguments: argparse.Namespace) -> dict[str, Any]:
    """The parsed weights options as ``from_pretrained`` keyword arguments (``weights`` included)."""
    return {
        "weights": arguments.weights,
        "revision": arguments.revision,
        "cache_dir": arguments.cache_dir,
        "local_files_only": arguments.offline,
        "size": arguments.size,
        "tavce_correlation": arguments.tavce_correlation,
        "tavce_facerender": arguments.tavce_facerender,
    }


def add_enhancer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--enhancer``, ``--enhancer-weights``, ``--enhancer-upscale`` in their own group."""
    group = parser.add_argument_group("face enhancer (GFPGAN v1.4, as SadTalker's --enhancer gfpgan)")
    group.add_argument(
        "--enhancer",
        default=None,
        choices=ENHANCERS,
        help="restore the face of every frame with GFPGAN v1.4; the video is --enhancer-upscale times larger",
    )
    group.add_argument(
        "--enhancer-weights",
        default=None,
        metavar="PATH_OR_REPO",
        help="folder holding GFPGANv1.4.pth and parsing_parsenet.pth (GitHub releases of TencentARC/GFPGAN and "
        "xinntao/facexlib), the GFPGANv1.4.pth file, or a Hub repo id holding both (default: the enhancer saved "
        "in the --weights folder)",
    )
    group.add_argument(
        "--enhancer-upscale",
        type=int,
        default=None,
        choices=ENHANCER_UPSCALES,
        help="scale of the enhanced video: 2 doubles its width and height (default, as SadTalker), 1 keeps the size",
    )


def enhancer_from_arguments(arguments: argparse.Namespace) -> dict[str, Any]:
    """The parsed enhancer options as ``from_pretrained`` keyword arguments (empty without ``--enhancer``).

    Raises:
        InvalidArgumentError: ``--enhancer-weights`` / ``--enhancer-upscale`` without ``--enhancer``.
    """
    if arguments.enhancer is None:
        if arguments.enhancer_weights or arguments.enhancer_upscale:
            raise InvalidArgumentError("--enhancer-weights / --enhancer-upscale need --enhancer gfpgan")
        return {}
    return {
        "enhancer": arguments.enhancer,
        "enhancer_weights": arguments.enhancer_weights,
        "enhancer_upscale": arguments.enhancer_upscale,
    }
