"""Face-renderer throughput per precision and batch size, against the straightforward loop, on CPU or GPU.

A script, not a test::

    python benchmarks/renderer.py [--json] [--dtypes float32,bfloat16] [--batches 1,4] [--frames 4]
                                  [--loop-frames 2] [--threads 2] [--device cpu] [--size 256] [--tiny]

Weights: the deterministic recipe (:func:`tavce.testing.reference_state_dict`) under the
official TAVCE face-render layout, read from
``tavce/convert/manifests/tavce_facerender_latest.pth.json`` (no download). Sizes are the
official ones; only the values are synthetic, which does not change the speed.
Source image: the portrait ``../shared/media/art_1.png`` when present (centre-cropped and
resized), otherwise a synthetic image; coefficients and audio relationships are random.

Compared in the same run, on the same inputs and weights:

* **baseline**: the straightforward float32 loop of the original — batch 1, the keypoint
  detector, the source MappingNet pass and the source encoder repeated for every frame, a
  full generator forward, with the renderer's exact reductions switched off
  (:func:`tavce.models.renderer.fast_conv.exact_reductions`), contiguous layouts;
* **each configuration** (dtype × batch): the source prepared once (not timed in
  ``frames_per_s``; reported as ``prepare_s``), then frames rendered in batches of
  ``batch`` (the benchmark slices the windows itself), reductions on.

Per configuration one JSON line (``--json``) or one table row: ``frames_per_s``,
``baseline_frames_per_s``, ``speedup`` (their ratio), ``psnr_vs_fp32_db`` (this
configuration's frames against the baseline loop's float32 frames, the frames both
rendered, pixels in [0, 1]), ``peak_rss_mib`` (the process's resident peak while that
configuration ran, its interleaved baseline frames included, Linux), ``peak_device_mib``
(CUDA: the peak allocated device memory while that configuration ran; null on the CPU),
``gflop_per_frame``
(convolutions and matmuls, 2 FLOPs per multiply-add, of the per-frame work as that
configuration runs it),
``achieved_gflop_per_s``, ``kernel_peak_gflop_per_s`` (the faster of a 4096² matrix product
and a 3×3 convolution of 256 channels at 128², channels-last, in that dtype on this machine,
fastest of several, measured in the same run: the practical ceiling of the convolution
kernels), ``fraction_of_peak`` (achieved / peak) and ``speedup_at_peak`` (the speed-up this
configuration would reach if every FLOP ran at that peak: a target above it needs less
work, not faster kernels), ``cpu``, ``cpu_flags`` and ``thread_scaling`` (``machine.py``: how many
times faster ``--threads`` threads run a matrix product than one; near 1 the host oversubscribes
the cores and the figures are not comparable with other runs). The CPU may be shared with other
work, so every frame of the
baseline and every batch of a configuration is timed on its own and the *fastest* one
counts (the least disturbed); one baseline frame is timed right before every timed batch of
every configuration, and ``baseline_frames_per_s`` is the fastest baseline frame so far
(interleaving keeps the ratio honest when the load changes during the run). The first frame / batch of
every configuration is a warm-up (kernel selection, derived weights) and is not timed.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from tavce.convert.common import select_prefix
from tavce.convert.generator import convert_generator
from tavce.convert.renderer import convert_kp_detector, convert_mapping
from tavce.models.base import load_state_dict_strict
from tavce.models.renderer.acceleration import CompiledStep, choose_batch_size
from tavce.models.renderer.fast_conv import exact_reductions
from tavce.models.renderer.generator import load_inference_generator
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig
from tavce.models.renderer.keypoint_transform import transform_keypoints
from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig
from tavce.models.renderer.precision import cpu_supports_bfloat16
from tavce.models.renderer.renderer import CERLRenderer, SourceState, semantic_windows
from tavce.testing import reference_state_dict

from machine import cpu_description, thread_scaling

logger = logging.getLogger("benchmarks.renderer")

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "tavce" / "convert" / "manifests" / "tavce_facerender_latest.pth.json"
PORTRAIT = ROOT.parent / "shared" / "media" / "art_1.png"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# The renderer's tensor-level entry points, in one place.
def prepare(renderer: CERLRenderer, image: torch.Tensor, semantics: torch.Tensor) -> SourceState:
    """Source-only work, once per clip."""
    return renderer.prepare_image(image, semantics)


def render_batch(
    renderer: CERLRenderer, state: SourceState, windows: torch.Tensor, relationship: torch.Tensor | None
) -> torch.Tensor:
    """Render one batch of frames: (B, C, 27) windows → (B, 3, S, S)."""
    return COMPILED_STEPS.get(id(renderer), renderer.render_windows)(state, windows, relationship)


COMPILED_STEPS: dict[int, CompiledStep] = {}
"""``--compile``: the renderer's step through torch.compile (CUDA graphs on CUDA), eager fallback."""


def build_renderer(tiny: bool = False) -> CERLRenderer:
    """The TAVCE renderer (with CERL) holding recipe weights under the official layout; ``tiny``: tavce.testing's."""
    if tiny:
        from tavce.testing import tiny_components

        return tiny_components(0)["renderer"].eval()
    manifest = json.loads(MANIFEST.read_text())
    shapes = {key: entry["shape"] for key, entry in manifest.items() if isinstance(entry.get("shape"), list)}
    original = reference_state_dict(shapes, salt=0)
    keypoint_detector = KeypointDetector(KeypointDetectorConfig())
    load_state_dict_strict(keypoint_detector, convert_kp_detector(select_prefix(original, "kp_detector.")), "kp_detector")
    mapping = MappingNet(MappingNetConfig())
    load_state_dict_strict(mapping, convert_mapping(select_prefix(original, "mapping.")), "mapping")
    generator = load_inference_generator(convert_generator(select_prefix(original, "generator.")))
    return CERLRenderer.from_modules(keypoint_detector.eval(), mapping.eval(), generator)


def source_image(size: int) -> tuple[torch.Tensor, str]:
    """(1, 3, size, size) in [0, 1]: the shared portrait (centre square, resized) or a synthetic image."""
    if PORTRAIT.is_file():
        from PIL import Image

        with Image.open(PORTRAIT) as opened:
            picture = opened.convert("RGB")
        side = min(picture.size)
        left, top = (picture.width - side) // 2, (picture.height - side) // 2
        picture = picture.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
        pixels = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8).view(size, size, 3)
        return pixels.permute(2, 0, 1)[None].float() / 255, PORTRAIT.name
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, size, size, generator=generator), "synthetic"


def driving_inputs(frames: int, relationship_dim: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source coefficients (70,), windows (frames, 70, 27), relationship differences (frames, D), frame 0's = 0."""
    generator = torch.Generator().manual_seed(0)
    coefficients = 0.1 * torch.randn(frames + 1, 70, generator=generator)
    embeddings = torch.randn(frames + 1, relationship_dim, generator=generator)
    differences = embeddings[:-1] - embeddings[1:]
    differences[0] = 0
    return coefficients[0], semantic_windows(coefficients[1:]), differences[:frames]


def _status_mib(field: str) -> float | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def reset_peak_memory(device: torch.device) -> None:
    """Reset VmHWM to the current resident size (Linux ≥ 4.0; ignored elsewhere) and CUDA's peak statistics."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """``peak_rss_mib`` (host) and ``peak_device_mib`` (CUDA's peak allocation; None elsewhere) since the reset."""
    device_mib = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"peak_rss_mib": _status_mib("VmHWM"), "peak_device_mib": device_mib}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def baseline_loop(
    renderer: CERLRenderer, image, source_coefficients, windows, differences, warm_up: bool = True
) -> tuple[float, torch.Tensor]:
    """(seconds of the fastest frame, frames) of the straightforward float32 loop (after an untimed warm-up frame)."""
    device = image.device
    frames, seconds = [], []
    skip = 1 if warm_up else 0
    with exact_reductions(False):
        for frame in range(windows.shape[0] + skip):
            index = max(frame - skip, 0)
            synchronize(device)
            start = time.perf_counter()
            canonical = renderer.keypoint_detector(image)
            source_window = source_coefficients[None, :, None].expand(1, -1, windows.shape[2])
            kp_source = transform_keypoints(canonical, renderer.mapping(source_window))
            kp_driving = transform_keypoints(canonical, renderer.mapping(windows[index : index + 1]))
            prediction = renderer.generator(image, kp_source, kp_driving, differences[index : index + 1]).prediction
            synchronize(device)
            if frame >= skip:
                seconds.append(time.perf_counter() - start)
                frames.append(prediction.float().cpu())
    return min(seconds), torch.cat(frames)


@torch.inference_mode()
def render_frames(
    renderer, image, source_coefficients, windows, differences, batch: int, before_batch=lambda: None
) -> tuple[float, float, torch.Tensor]:
    """(prepare seconds, seconds per frame of the fastest batch, frames), in batches of ``batch`` after a warm-up batch.

    ``before_batch()`` runs (untimed here) before every timed batch: the caller times a baseline
    frame there, so baseline and configuration see the same machine load.
    """
    device = image.device
    render_batch(renderer, prepare(renderer, image, source_coefficients), windows[:batch], differences[:batch])
    synchronize(device)
    start = time.perf_counter()
    state = prepare(renderer, image, source_coefficients)
    synchronize(device)
    prepare_seconds = time.perf_counter() - start
    frames, seconds_per_frame = [], []
    for first in range(0, windows.shape[0], batch):
        before_batch()
        start = time.perf_counter()
        frames.append(render_batch(renderer, state, windows[first : first + batch], differences[first : first + batch]))
        synchronize(device)
        seconds_per_frame.append((time.perf_counter() - start) / frames[-1].shape[0])
    return prepare_seconds, min(seconds_per_frame), torch.cat([frame.float().cpu() for frame in frames])


@torch.inference_mode()
def gflop_per_frame(renderer, image, source_coefficients, windows, differences, batch: int, plain: bool) -> float:
    """Convolution/matmul GFLOPs of one frame: the per-frame work (``plain``: the baseline loop's, source work included)."""
    counter = FlopCounterMode(display=False)
    if plain:
        with exact_reductions(False), counter:
            canonical = renderer.keypoint_detector(image)
            source_window = source_coefficients[None, :, None].expand(1, -1, windows.shape[2])
            kp_source = transform_keypoints(canonical, renderer.mapping(source_window))
            kp_driving = transform_keypoints(canonical, renderer.mapping(windows[:1]))
            renderer.generator(image, kp_source, kp_driving, differences[1:2])
        return counter.get_total_flops() / 1e9
    state = prepare(renderer, image, source_coefficients)
    with counter:
        render_batch(renderer, state, windows[:batch], differences[:batch])
    return counter.get_total_flops() / 1e9 / batch


@torch.inference_mode()
def kernel_peak_gflop_per_s(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    """GFLOP/s of the faster of a 4096² matrix product and a 256-channel 3×3 conv at 128² (fastest of ``repeats``)."""
    generator = torch.Generator().manual_seed(0)

    def random(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device, dtype)

    left, right = random(4096, 4096), random(4096, 4096)
    image = random(1, 256, 128, 128).contiguous(memory_format=torch.channels_last)
    kernel = random(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    candidates = [
        (lambda: left @ right, 2 * 4096**3),
        (lambda: torch.nn.functional.conv2d(image, kernel, padding=1), 2 * 256 * 256 * 9 * 128 * 128),
    ]
    best = 0.0
    for run, flop in candidates:
        run()
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            best = max(best, flop / (time.perf_counter() - start) / 1e9)
    return best


def psnr_db(frames: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR (dB) of frames in [0, 1] against reference frames; inf when identical."""
    mse = (frames.double() - reference.double()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per configuration on stdout")
    parser.add_argument("--dtypes", default=None, help="comma-separated (default: float32 plus bfloat16 on a CPU "
                        "with bfloat16 kernels, float16 on CUDA)")
    parser.add_argument("--batches", default="1,4", help="comma-separated batch sizes; 'auto': from free memory "
                        "on CUDA (acceleration.choose_batch_size), 1 elsewhere")
    parser.add_argument("--compile", action="store_true", help="render through torch.compile (eager fallback)")
    parser.add_argument("--frames", type=int, default=8, help="timed frames per configuration (a multiple of each batch)")
    parser.add_argument("--loop-frames", type=int, default=3, help="timed frames of the baseline loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=None, help="image side (default 256; 512 for the 512 renderer's "
                        "input size; 64 with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="tavce.testing's tiny random renderer instead of the "
                        "full-size one: checks the script in seconds, its figures mean nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.dtypes is None:
        names = ["float32"] + (["float16"] if device.type == "cuda" else ["bfloat16"] if cpu_supports_bfloat16() else [])
    else:
        names = args.dtypes.split(",")

    args.size = args.size or (64 if args.tiny else 256)
    renderer = build_renderer(args.tiny).to(device)
    relationship_dim = renderer.generator.config.relationship_dim
    image, image_name = source_image(args.size)
    image = image.to(device)
    if args.batches == "auto":
        source_coefficients, windows, differences = driving_inputs(1, relationship_dim)
        with torch.inference_mode():
            state = prepare(renderer, image, source_coefficients)
            batches = [choose_batch_size(lambda: render_batch(renderer, state, windows, differences), device)]
        del state
    else:
        batches = [int(value) for value in args.batches.split(",")]
    source_coefficients, windows, differences = driving_inputs(max(args.frames, args.loop_frames, max(batches)), relationship_dim)
    baseline_gflop = gflop_per_frame(renderer, image, source_coefficients, windows, differences, 1, plain=True)

    reset_peak_memory(device)
    baseline_seconds, reference = baseline_loop(
        renderer, image, source_coefficients, windows[: args.loop_frames], differences
    )
    baseline_fps = 1 / baseline_seconds
    peaks = {name: kernel_peak_gflop_per_s(DTYPES[name], device) for name in {"float32", *names}}
    machine = {**cpu_description(), "thread_scaling": thread_scaling(args.threads)}
    baseline_row = {
        "config": "baseline", "size": args.size, "device": device.type, "dtype": "float32", "batch": 1,
        "frames": args.loop_frames, "frames_per_s": baseline_fps, "baseline_frames_per_s": baseline_fps,
        "speedup": 1.0, "psnr_vs_fp32_db": math.inf, **peak_memory(device),
        "gflop_per_frame": baseline_gflop, "achieved_gflop_per_s": baseline_gflop * baseline_fps,
        **against_peak(baseline_gflop, baseline_fps, baseline_fps, peaks["float32"]),
    }
    emit(baseline_row, args, image_name, machine)
    for name in names:
        dtype = DTYPES[name]
        model = renderer if dtype == torch.float32 else copy.deepcopy(renderer).to(dtype)
        if args.compile:
            COMPILED_STEPS[id(model)] = CompiledStep(model.render_windows, device, enabled=True)
        for batch in batches:
            baseline_samples = [baseline_seconds]

            def time_baseline_frame() -> None:
                seconds, _ = baseline_loop(renderer, image, source_coefficients, windows[:1], differences, warm_up=False)
                baseline_samples.append(seconds)

            gflop = gflop_per_frame(model, image, source_coefficients, windows, differences, batch, plain=False)
            reset_peak_memory(device)
            prepare_seconds, seconds, frames = render_frames(
                model, image, source_coefficients, windows[: args.frames], differences, batch, time_baseline_frame
            )
            baseline_seconds = min(baseline_samples)
            baseline_fps = 1 / baseline_seconds
            compared = min(args.frames, args.loop_frames)
            emit({
                "config": "render", "size": args.size, "device": device.type, "dtype": name, "batch": batch,
                "frames": args.frames, "frames_per_s": 1 / seconds, "baseline_frames_per_s": baseline_fps,
                "speedup": baseline_seconds / seconds,
                "psnr_vs_fp32_db": psnr_db(frames[:compared], reference[:compared]),
                **peak_memory(device), "gflop_per_frame": gflop,
                "achieved_gflop_per_s": gflop / seconds, "prepare_s": prepare_seconds,
                **against_peak(gflop, 1 / seconds, baseline_fps, peaks[name]),
            }, args, image_name, machine)
        del model


def against_peak(gflop_per_frame: float, frames_per_s: float, baseline_fps: float, peak: float) -> dict:
    """The peak-related columns of one configuration (see the module docstring)."""
    return {
        "kernel_peak_gflop_per_s": peak,
        "fraction_of_peak": gflop_per_frame * frames_per_s / peak,
        "speedup_at_peak": peak / gflop_per_frame / baseline_fps,
    }


def write_json_line(row: dict) -> None:
    """``row`` as one JSON line on stdout, floats rounded to 4 places (non-finite ones as null)."""
    clean = {k: (round(v, 4) if math.isfinite(v) else None) if isinstance(v, float) else v for k, v in row.items()}
    sys.stdout.write(json.dumps(clean) + "\n")
    sys.stdout.flush()


def emit(row: dict, args: argparse.Namespace, image_name: str, machine: dict) -> None:
    """Write one configuration's figures: a JSON line on stdout (``--json``) or a log line."""
    row |= {"threads": args.threads, "image": image_name, "torch": torch.__version__, **machine}
    if args.json:
        write_json_line(row)
    else:
        logger.info(
            f"{row['config']:8s} {row['dtype']:8s} B={row['batch']:<2d} {row['frames_per_s']:7.4f} frames/s "
            f"speed-up {row['speedup']:5.2f}x  PSNR {row['psnr_vs_fp32_db']:6.2f} dB  "
            f"{row['gflop_per_frame']:7.1f} GFLOP/frame  {row['achieved_gflop_per_s']:6.1f} GFLOP/s "
            f"({100 * row['fraction_of_peak']:3.0f} % of peak, {row['speedup_at_peak']:4.2f}x at peak)  "
            f"peak RSS {row['peak_rss_mib'] or float('nan'):7.0f} MiB"
        )


if __name__ == "__main__":
    main()
