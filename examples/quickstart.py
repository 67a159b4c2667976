"""Animate one portrait with one speech clip: the shortest complete use of tavce's Python API.

    python examples/quickstart.py portrait.png speech.wav -o talking.mp4
    python examples/quickstart.py portrait.png speech.wav --mode full --still --seed 7
    python examples/quickstart.py portrait.png speech.wav --weights ./weights-256 --face-box 120,90,210,180

The first run downloads the official SadTalker weights (``vinthony/SadTalker-V002rc``, about
800 MB for size 256) into the Hugging Face cache; ``--weights`` takes a tavce folder (``tavce convert``), a
folder of official files or another Hub repository instead. See docs/usage.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tavce import TalkingHeadPipeline, TavceError
from tavce.cli import parse_face_box
from tavce.video import check_output_path

logger = logging.getLogger("quickstart")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", help="portrait photo with one visible face")
    parser.add_argument("audio", help="driving speech (wav, flac, ogg, mp3 ...; any sample rate)")
    parser.add_argument("-o", "--output", default="talking_head.mp4", help="destination .mp4 (default: %(default)s)")
    parser.add_argument(
        "--weights", default=None, help="tavce folder, official-files folder or Hub repo (default: official SadTalker)"
    )
    parser.add_argument(
        "--face-box", type=parse_face_box, default=None, metavar="X0,Y0,X1,Y1",
        help="face box in photo pixels; skips face detection",
    )
    parser.add_argument(
        "--mode", default="crop", choices=("crop", "extcrop", "resize", "full", "extfull"),
        help="crop mode (docs/modes.md; default: %(default)s)",
    )
    parser.add_argument("--still", action="store_true", help="keep the photo's head pose; only the face moves")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same video (default: random)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or mps (default: cuda when available)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = check_output_path(arguments.output)  # fail before downloading or rendering anything
        # device None: CUDA when torch sees a GPU (renderer in float16), else the CPU (float32); dtype= chooses.
        pipe = TalkingHeadPipeline.from_pretrained(arguments.weights, device=arguments.device)
        result = pipe(
            arguments.image,
            arguments.audio,
            mode=arguments.mode,
            still=arguments.still,
            seed=arguments.seed,
            face_box=arguments.face_box,
        )
        # Nothing has been rendered yet: save() renders batch by batch straight into the encoder.
        path = result.save(output)
    except TavceError as error:  # every message names the file or option, the problem and the fix
        logger.error("%s", error)
        return 2
    logger.info("wrote %s (%d frames, %.2f s)", path, result.num_frames, result.num_frames / result.fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
