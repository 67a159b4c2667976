"""``tavce generate IMAGE AUDIO -o OUT.mp4``: animate a portrait with a speech clip."""

from __future__ import annotations

import argparse
import logging

from tavce.cli import Subcommand, parse_face_box
from tavce.constants import ENHANCER_UPSCALES, ENHANCERS
from tavce.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

_DTYPES = ("float32", "float16", "bfloat16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="portrait photo (png, jpg, ...) with one visible face")
    parser.add_argument("audio", help="driving speech (wav, flac, ogg, ... any sample rate and channel count)")
    parser.add_argument("-o", "--output", required=True, help="destination .mp4 (written atomically)")
    weights = parser.add_argument_group("weights")
    weights.add_argument(
        "--weights",
        default=None,
        help="tavce weights folder, folder of official SadTalker files, or Hub repo id "
        "(default: vinthony/SadTalker-V002rc, downloaded once into the Hugging Face cache)",
    )
    weights.add_argument("--revision", default=None, help="branch, tag or commit of the Hub repo (default: main)")
    weights.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    weights.add_argument("--offline", action="store_true", help="never use the network; use cached/local files only")
    weights.add_argument("--tavce-correlation", default=None, help="TAVCE correlation checkpoint (.pth); enables CERL")
    weights.add_argument("--tavce-facerender", default=None, help="TAVCE face-render checkpoint (.pth) with CERL layers")
    enhancer = parser.add_argument_group("face enhancer (GFPGAN v1.4, as SadTalker's --enhancer gfpgan)")
    enhancer.add_argument(
        "--enhancer",
        default=None,
        choices=ENHANCERS,
        help="restore the face of every frame with GFPGAN v1.4; the video is --enhancer-upscale times larger",
    )
    enhancer.add_argument(
        "--enhancer-weights",
        default=None,
        metavar="PATH_OR_REPO",
        help="folder holding GFPGANv1.4.pth and parsing_parsenet.pth (GitHub releases of TencentARC/GFPGAN and "
        "xinntao/facexlib), the GFPGANv1.4.pth file, or a Hub repo id holding both (default: the enhancer saved "
        "in the --weights folder)",
    )
    enhancer.add_argument(
        "--enhancer-upscale",
        type=int,
        default=None,
        choices=ENHANCER_UPSCALES,
        help="scale of the enhanced video: 2 doubles its width and height (default, as SadTalker), 1 keeps the size",
    )
    look = parser.add_argument_group("animation")
    look.add_argument(
        "--mode",
        default="crop",
        choices=("crop", "extcrop", "resize", "full", "extfull"),
        help="crop: tight face crop (default); extcrop: larger crop with hair; resize: whole image squashed "
        "to a square; full / extfull: animate the crop and paste it back into the whole photo",
    )
    look.add_argument("--size", type=int, default=256, choices=(256, 512), help="face render resolution (default 256)")
    look.add_argument("--still", action="store_true", help="keep the photo's head pose; only the face moves")
    look.add_argument("--pose-style", type=int, default=0, help="head-motion style 0..45 (default 0)")
    look.add_argument(
        "--expression-scale", type=float, default=1.0, help="expression strength: 0 neutral, 1 as predicted (default)"
    )
    look.add_argument("--no-blink", action="store_true", help="do not add random eye blinks")
    look.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same video")
    look.add_argument(
        "--face-box",
        type=parse_face_box,
        default=None,
        metavar="X0,Y0,X1,Y1",
        help="face box in photo pixels; skips face detection (landmarks are still predicted inside it)",
    )
    compute = parser.add_argument_group("compute")
    compute.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or mps (default: cuda if available)")
    compute.add_argument(
        "--dtype",
        default=None,
        choices=_DTYPES,
        help="network precision (default: float16 on CUDA, float32 elsewhere; bfloat16 is optional on CPU)",
    )
    compute.add_argument(
        "--batch-size", type=int, default=None,
        help="frames rendered together (default: as many as free GPU memory allows on CUDA, 1 on the CPU)",
    )
    compute.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(arguments: argparse.Namespace) -> int:
    import torch

    from tavce.pipeline import TalkingHeadPipeline, default_device_and_dtype
    from tavce.video import check_output_path

    from tavce.audio import load_audio
    from tavce.image import load_image

    # Inputs and destination are checked before any download or rendering.
    output = check_output_path(arguments.output)
    audio = load_audio(arguments.audio)
    load_image(arguments.image)  # decoded again by the pipeline, which names the file in its messages
    device, dtype = default_device_and_dtype(arguments.device, arguments.dtype)
    if device.type == "cpu":
        logger.warning(
            "rendering on the CPU: expect several seconds per frame with the official weights (about 9 s per "
            "frame at 256x256 on 2 cores; 25 frames per second of audio); use --device cuda for speed"
        )
    logger.info("device %s, dtype %s", device, str(dtype).replace("torch.", ""))
    if arguments.batch_size is not None and arguments.batch_size < 1:
        raise InvalidArgumentError(f"--batch-size {arguments.batch_size}: must be at least 1")
    if arguments.enhancer is None and (arguments.enhancer_weights or arguments.enhancer_upscale):
        raise InvalidArgumentError("--enhancer-weights / --enhancer-upscale need --enhancer gfpgan")
    enhancer = {}
    if arguments.enhancer is not None:
        enhancer = dict(
            enhancer=arguments.enhancer,
            enhancer_weights=arguments.enhancer_weights,
            enhancer_upscale=arguments.enhancer_upscale,
        )
    pipe = TalkingHeadPipeline.from_pretrained(
        arguments.weights,
        revision=arguments.revision,
        cache_dir=arguments.cache_dir,
        local_files_only=arguments.offline,
        size=arguments.size,
        tavce_correlation=arguments.tavce_correlation,
        tavce_facerender=arguments.tavce_facerender,
        **enhancer,
    ).to(device, dtype)
    result = pipe(
        arguments.image,
        audio,
        mode=arguments.mode,
        still=arguments.still,
        pose_style=arguments.pose_style,
        expression_scale=arguments.expression_scale,
        use_blink=not arguments.no_blink,
        seed=arguments.seed,
        face_box=arguments.face_box,
        batch_size=arguments.batch_size,
        enhance=arguments.enhancer is not None,
        progress=not arguments.no_progress,
    )
    with torch.inference_mode():
        result.save(output)  # tavce.video logs the path and frame count
    return 0


SUBCOMMAND = Subcommand(
    name="generate",
    help="animate a portrait photo with a speech clip and write an mp4 with the audio",
    add_arguments=add_arguments,
    run=run,
)
