"""``tavce generate IMAGE AUDIO -o OUT.mp4``: animate a portrait with a speech clip."""

from __future__ import annotations

import argparse
import logging

from tavce.cli import Subcommand, add_device_arguments, parse_face_box
from tavce.commands.weights_arguments import (
    add_enhancer_arguments,
    add_weights_arguments,
    enhancer_from_arguments,
    weights_from_arguments,
)
from tavce.constants import CROP_MODES, LANDMARKER_NAMES

logger = logging.getLogger(__name__)

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="portrait photo (png, jpg, ...) with one visible face")
    parser.add_argument("audio", help="driving speech (wav, flac, ogg, ... any sample rate and channel count)")
    parser.add_argument(
        "-o", "--output", required=True, help="destination .mp4 (written atomically; missing folders are created)"
    )
    add_weights_arguments(parser, loaded="the networks")
    add_enhancer_arguments(parser)
    look = parser.add_argument_group("animation")
    look.add_argument(
        "--mode",
        default="crop",
        choices=CROP_MODES,
        help="crop: tight face crop (default); extcrop: larger crop with hair; resize: whole image squashed "
        "to a square; full / extfull: animate the crop and paste it back into the whole photo",
    )
    look.add_argument("--still", action="store_true", help="keep the photo's head pose; only the face moves")
    look.add_argument("--pose-style", default=0, help="head-motion style 0..45 (default 0)")
    look.add_argument("--expression-scale", default=1.0, help="expression strength: 0 neutral, 1 as predicted (default)")
    look.add_argument("--no-blink", action="store_true", help="do not add random eye blinks")
    look.add_argument("--seed", default=None, help="random seed: the same seed gives the same video")
    look.add_argument(
        "--ref-pose", default=None, metavar="VIDEO",
        help="reference video whose head motion is added to the generated one (a shorter video is repeated)",
    )
    look.add_argument(
        "--ref-eyeblink", default=None, metavar="VIDEO",
        help="reference video whose eye blinks (expression) are taken instead of random blinks",
    )
    for axis, meaning in (("yaw", "turn left/right"), ("pitch", "nod up/down"), ("roll", "tilt")):
        look.add_argument(
            f"--input-{axis}", nargs="+", default=None, metavar="DEGREES",
            help=f"head {axis} ({meaning}) in degrees instead of the generated one: one value holds it, several "
            "(e.g. -20 20) are walked through over the video at an even pace",
        )
    face = parser.add_argument_group("face")
    face.add_argument(
        "--face-box",
        type=parse_face_box,
        default=None,
        metavar="X0,Y0,X1,Y1",
        help="face box in photo pixels; skips face detection (landmarks are still predicted inside it)",
    )
    face.add_argument(
        "--face-index", default=None, metavar="N",
        help="which face when the photo has several, counted left to right from 0 (default: the largest)",
    )
    face.add_argument(
        "--landmarker", default="auto", choices=LANDMARKER_NAMES,
        help="face landmark backend: auto = insightface if its model pack is installed, else dlib (default auto)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--crf", default=None, metavar="0..51",
        help="H.264 quality: lower is better and larger, 0 lossless, 18 visually lossless (default 25)",
    )
    compute = parser.add_argument_group("compute")
    add_device_arguments(compute, dtype_help="network precision")
    compute.add_argument(
        "--batch-size", default=None,
        help="frames rendered together (default: as many as free GPU memory allows on CUDA, 1 on the CPU)",
    )
    compute.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(arguments: argparse.Namespace) -> int:
    import torch

    from tavce._heap import share_one_heap
    from tavce.audio import load_audio
    from tavce.device import resolve_device, resolve_dtype
    from tavce.image import load_image
    from tavce.options import GenerationOptions
    from tavce.pipeline import TalkingHeadPipeline
    from tavce.preprocess.preprocessor import check_face_box
    from tavce.video import check_output_path

    share_one_heap()  # before the render thread starts: a one-shot run's peak is then the render's own
    # Every value is checked before any download, model build or rendering.
    values = {
        "mode": arguments.mode,
        "still": arguments.still,
        "pose_style": arguments.pose_style,
        "expression_scale": arguments.expression_scale,
        "use_blink": not arguments.no_blink,
        "seed": arguments.seed,
        "ref_pose": arguments.ref_pose,
        "ref_eyeblink": arguments.ref_eyeblink,
        "yaw": arguments.input_yaw,
        "pitch": arguments.input_pitch,
        "roll": arguments.input_roll,
        "face_box": arguments.face_box,
        "face_index": arguments.face_index,
        "batch_size": arguments.batch_size,
        "crf": arguments.crf,
        "enhance": arguments.enhancer is not None,
        "progress": not arguments.no_progress,
    }
    options = GenerationOptions.from_mapping(values, where="tavce generate")
    output = check_output_path(arguments.output, create_folder=True)
    audio = load_audio(arguments.audio)
    photo = load_image(arguments.image)  # decoded again by the pipeline, which names the file in its messages
    if options.face_box is not None:
        check_face_box(options.face_box, photo.shape[1], photo.shape[0])
    device = resolve_device(arguments.device)
    dtype = resolve_dtype(arguments.dtype, device)
    if device.type == "cpu":
        logger.warning(
            "rendering on the CPU: expect seconds per frame with the official weights (about 4 s per frame at "
            "256x256 on 2 cores in float32, about 1.2 s with --dtype bfloat16 on a CPU with native bfloat16%s: "
            "docs/performance.md; 25 frames per second of audio); use --device cuda for speed",
            ", about twice that with --enhancer" if arguments.enhancer is not None else "",
        )
    enhancer = enhancer_from_arguments(arguments)
    pipe = TalkingHeadPipeline.from_pretrained(
        **weights_from_arguments(arguments),
        landmarker=arguments.landmarker,
        device=device,
        dtype=dtype,
        **enhancer,
    )
    result = pipe(arguments.image, audio, **values)
    with torch.inference_mode():
        result.save(output)  # tavce.video logs the path and frame count
    return 0


SUBCOMMAND = Subcommand(
    name="generate",
    help="animate a portrait photo with a speech clip and write an mp4 with the audio",
    add_arguments=add_arguments,
    run=run,
)
