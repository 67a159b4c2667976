"""Animate a portrait and restore the face of every frame with GFPGAN v1.4 (SadTalker's ``--enhancer gfpgan``).

    python examples/enhance.py portrait.png speech.wav ./gfpgan-weights -o enhanced.mp4
    python examples/enhance.py portrait.png speech.wav ./gfpgan-weights --upscale 1 --compare

The enhancer's weights folder holds ``GFPGANv1.4.pth`` (TencentARC/GFPGAN, GitHub release
v1.3.0) and ``parsing_parsenet.pth`` (xinntao/facexlib, GitHub release v0.2.2); a Hub repo
id holding both, or a folder written by ``FaceEnhancer.save_pretrained`` work too. With
``--compare`` the plain video is written beside the enhanced one (same seed, same motion).
See docs/enhancer.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tavce import TalkingHeadPipeline, TavceError
from tavce.cli import parse_face_box
from tavce.video import check_output_path

logger = logging.getLogger("enhance")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", help="portrait photo with one visible face")
    parser.add_argument("audio", help="driving speech (any format libsndfile reads)")
    parser.add_argument("enhancer_weights", help="folder with GFPGANv1.4.pth and parsing_parsenet.pth, or a Hub repo id")
    parser.add_argument("-o", "--output", default="enhanced.mp4", help="destination .mp4 (default: %(default)s)")
    parser.add_argument("--weights", default=None, help="pipeline weights (default: official SadTalker)")
    parser.add_argument("--upscale", type=int, default=2, choices=(1, 2), help="2 doubles the video size (default)")
    parser.add_argument("--face-box", type=parse_face_box, default=None, metavar="X0,Y0,X1,Y1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also write the plain video as <output>.plain.mp4")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = check_output_path(arguments.output)
        pipe = TalkingHeadPipeline.from_pretrained(
            arguments.weights,
            enhancer="gfpgan",
            enhancer_weights=arguments.enhancer_weights,
            enhancer_upscale=arguments.upscale,
        )
        # A pipeline with an enhancer enhances every call unless it passes enhance=False.
        result = pipe(arguments.image, arguments.audio, face_box=arguments.face_box, seed=arguments.seed)
        path = result.save(output)
        if arguments.compare:
            plain = pipe(arguments.image, arguments.audio, face_box=arguments.face_box, seed=arguments.seed, enhance=False)
            logger.info("plain video: %s", plain.save(output.with_suffix(".plain.mp4")))
    except TavceError as error:
        logger.error("%s", error)
        return 2
    logger.info("wrote %s (%d frames)", path, result.num_frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
