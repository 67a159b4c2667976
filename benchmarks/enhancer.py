"""Face-enhancer cost per frame and precision, and the whole generation with and without it.

A script, not a test::

    python benchmarks/enhancer.py [--json] [--dtypes float32,bfloat16] [--batch 2] [--frames 4]
                                  [--threads 2] [--device cpu] [--upscale 2] [--tiny]
                                  [--weights FOLDER [--enhancer-weights FOLDER] [--seconds 2]]

Enhancer: GFPGAN v1.4 + ParseNet at the official sizes, filled with the deterministic
recipe (:func:`tavce.testing.reference_state_dict`) through the official converters (no
download; only the values are synthetic, which does not change the speed). Frames: a
synthetic 256×256 portrait with known landmarks, the size of a crop-mode video.

Per dtype one row: ``s_per_frame`` (the fastest batch, divided by its frames: the CPU may
be shared, the least disturbed batch counts; the first batch is a warm-up),
``upscale_only_s_per_frame`` (the Lanczos upscale alone, what a frame costs without
restoration), and ``psnr_vs_fp32_db`` (this dtype's enhanced frames against float32's,
uint8 pixels). ``--tiny`` uses small networks (a quick check of the script).

With ``--weights`` (a tavce or official weights folder) the whole generation of a
``--seconds`` clip is timed too, without and with the enhancer (``--enhancer-weights``,
default: the recipe enhancer), and their ratio printed: ``pipeline_s_per_frame`` and
``pipeline_enhanced_s_per_frame``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time

import cv2
import numpy as np
import torch
from machine import cpu_description

logger = logging.getLogger("benchmarks.enhancer")


def recipe_enhancer(tiny: bool, upscale: int):
    """A FaceEnhancer with the recipe weights under the official names, converted like the official files."""
    from tavce.convert.assemble import build_enhancer
    from tavce.convert.enhancer import convert_gfpgan, convert_parsenet
    from tavce.models.enhancer import FaceEnhancer, FaceEnhancerConfig, GFPGANConfig, ParseNetConfig
    from tavce.testing import official_manifest, reference_state_dict

    if tiny:
        config = FaceEnhancerConfig(
            upscale, GFPGANConfig(64, 32, 1, 0.25), ParseNetConfig(64, min_feature_size=8, base_channels=8, max_channels=16, min_channels=4)
        )
        enhancer = FaceEnhancer(config)
        enhancer.load_state_dict(reference_state_dict({k: v.shape for k, v in enhancer.state_dict().items()}))
        return enhancer.eval()
    gfpgan = {key.removeprefix("params_ema."): entry["shape"] for key, entry in official_manifest("GFPGANv1.4.pth").items()}
    parsenet = {key: entry["shape"] for key, entry in official_manifest("parsing_parsenet.pth").items()}
    return build_enhancer(
        convert_gfpgan(reference_state_dict(gfpgan)), convert_parsenet(reference_state_dict(parsenet)), upscale=upscale
    )


def portrait_frames(count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` 256×256 synthetic portraits (the face moving slightly) and their five points."""
    from tavce.models.enhancer import five_points
    from tavce.testing import face_landmarks, face_photo

    frames, points = [], []
    for index in range(count):
        landmarks = face_landmarks((128 + index % 3, 120), 55.0, roll_degrees=2.0 * (index % 2))
        frames.append(face_photo(256, 256, landmarks, seed=index))
        points.append(five_points(landmarks))
    return frames, np.stack(points)


def fastest_per_frame(run, batches: list[tuple[list, np.ndarray]]) -> tuple[float, list[np.ndarray]]:
    outputs, times = [], []
    for index, (frames, points) in enumerate(batches):
        started = time.perf_counter()
        outputs.extend(run(frames, points))
        if index:  # the first batch is a warm-up
            times.append((time.perf_counter() - started) / len(frames))
    return min(times), outputs


def psnr_db(frames: list[np.ndarray], reference: list[np.ndarray]) -> float:
    error = np.mean([(a.astype(np.float64) - b) ** 2 for a, b in zip(frames, reference)])
    return math.inf if error == 0 else 10 * math.log10(255**2 / error)


def pipeline_seconds_per_frame(args, enhancer) -> dict:
    """Whole generation (plan + render + enhance + mp4) of a synthetic clip, without and with the enhancer."""
    import tempfile
    from pathlib import Path

    import soundfile

    from memory import SAMPLE_RATE, speech_like, synthetic_portrait
    from tavce import TalkingHeadPipeline

    pipe = TalkingHeadPipeline.from_pretrained(args.weights, local_files_only=True).to(args.device, "float32")
    if args.enhancer_weights is not None:
        from tavce.convert.official import load_enhancer

        enhancer = load_enhancer(args.enhancer_weights, upscale=args.upscale)
    pipe.enhancer = enhancer.to(args.device)
    row = {}
    with tempfile.TemporaryDirectory(prefix="tavce-enhancer-") as folder:
        import imageio.v3 as iio

        image, box = synthetic_portrait(320, 400)
        photo, audio = Path(folder) / "portrait.png", Path(folder) / "speech.wav"
        iio.imwrite(photo, image)
        soundfile.write(audio, speech_like(args.seconds), SAMPLE_RATE)
        for name, enhance in (("pipeline_s_per_frame", False), ("pipeline_enhanced_s_per_frame", True)):
            started = time.perf_counter()
            result = pipe(photo, audio, face_box=box, seed=0, progress=False, enhance=enhance, batch_size=args.batch)
            result.save(Path(folder) / f"{name}.mp4")
            row[name] = (time.perf_counter() - started) / result.num_frames
    row["pipeline_enhanced_ratio"] = row["pipeline_enhanced_s_per_frame"] / row["pipeline_s_per_frame"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per row instead of a table")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--batch", type=int, default=2, help="frames enhanced together")
    parser.add_argument("--frames", type=int, default=4, help="frames timed per dtype (after a warm-up batch)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--upscale", type=int, default=2, choices=(1, 2))
    parser.add_argument("--tiny", action="store_true", help="small networks: checks the script, not the speed")
    parser.add_argument("--weights", default=None, help="also time whole generations with these pipeline weights")
    parser.add_argument("--enhancer-weights", default=None, help="enhancer for the whole generations")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length of the whole generations")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    from tavce.models.renderer.precision import cpu_supports_bfloat16

    enhancer = recipe_enhancer(args.tiny, args.upscale).to(args.device)
    frames, points = portrait_frames(args.batch + args.frames)
    batches = [(frames[i : i + args.batch], points[i : i + args.batch]) for i in range(0, len(frames), args.batch)]
    upscale_only, _ = fastest_per_frame(
        lambda batch, _: [cv2.resize(f, None, fx=args.upscale, fy=args.upscale, interpolation=cv2.INTER_LANCZOS4) for f in batch],
        batches,
    )
    machine = {**cpu_description(), "bf16_native": cpu_supports_bfloat16(),
               "threads": args.threads, "device": args.device}  # fmt: skip
    rows, reference = [], None
    for dtype in args.dtypes.split(","):
        enhancer.to(dtype=getattr(torch, dtype))
        seconds, outputs = fastest_per_frame(enhancer.enhance, batches)
        reference = outputs if reference is None else reference
        rows.append({"dtype": dtype, "batch": args.batch, "upscale": args.upscale, "s_per_frame": seconds,
                     "upscale_only_s_per_frame": upscale_only, "psnr_vs_fp32_db": psnr_db(outputs, reference),
                     **machine})  # fmt: skip
    enhancer.to(dtype=torch.float32)
    if args.weights is not None:
        rows.append({**pipeline_seconds_per_frame(args, enhancer), **machine})
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            logger.info("  ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in row.items()))


if __name__ == "__main__":
    main()
