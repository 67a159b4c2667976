"""Face-renderer throughput, parameter count and FLOPs at 256x256 on CPU.

A script, not a test: ``python benchmarks/renderer.py [--frames 4] [--loop-frames 2] [--threads 2]``.

Weights: the deterministic recipe (:func:`tavce.testing.reference_state_dict`) under
the official TAVCE face-render layout. The layout (key names and shapes) is read
from ``tavce/convert/manifests/tavce_facerender_latest.pth.json`` (the package copy
of ``../shared/reference/manifests``), so no checkpoint is downloaded. Sizes are the
official ones; only the values are synthetic, which does not change the speed.

Compared in the same run:

* **render path**: :meth:`CERLRenderer.prepare_source` once, then
  :meth:`CERLRenderer.render` in batches of ``--batch-size`` (default 4);
* **per-frame loop**: the straightforward loop of the original (batch 1, the
  keypoint detector, the source MappingNet pass and the source encoder repeated for
  every frame, full generator forward).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (2 per
multiply-accumulate, convolutions and matmuls only); the paper's 623.5 G / 623.7 G
are multiply-accumulates (see the manifests README), so MACs are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from tavce.convert.common import select_prefix
from tavce.convert.generator import convert_generator
from tavce.convert.renderer import convert_kp_detector, convert_mapping
from tavce.models.renderer.generator import load_inference_generator
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig
from tavce.models.renderer.keypoint_transform import transform_keypoints
from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig
from tavce.models.renderer.renderer import CERLRenderer, semantic_windows
from tavce.models.base import load_state_dict_strict
from tavce.testing import reference_state_dict

logger = logging.getLogger("benchmarks.renderer")

MANIFEST = Path(__file__).resolve().parents[1] / "tavce" / "convert" / "manifests" / "tavce_facerender_latest.pth.json"
PAPER = {"SadTalker": (175.4, 623.5), "TAVCE": (178.3, 623.7)}
SIZE = 256


def build_renderer(batch_size: int) -> CERLRenderer:
    """The TAVCE renderer (with CERL) holding recipe weights under the official layout."""
    manifest = json.loads(MANIFEST.read_text())
    shapes = {key: entry["shape"] for key, entry in manifest.items() if isinstance(entry.get("shape"), list)}
    original = reference_state_dict(shapes, salt=0)
    keypoint_detector = KeypointDetector(KeypointDetectorConfig())
    load_state_dict_strict(keypoint_detector, convert_kp_detector(select_prefix(original, "kp_detector.")), "kp_detector")
    mapping = MappingNet(MappingNetConfig())
    load_state_dict_strict(mapping, convert_mapping(select_prefix(original, "mapping.")), "mapping")
    generator = load_inference_generator(convert_generator(select_prefix(original, "generator.")))
    return CERLRenderer.from_modules(keypoint_detector.eval(), mapping.eval(), generator, batch_size=batch_size)


def synthetic_inputs(frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, SIZE, SIZE, generator=generator)
    coefficients = 0.1 * torch.randn(frames + 1, 70, generator=generator)
    embeddings = torch.randn(frames + 1, 128, generator=generator)
    differences = embeddings[:-1] - embeddings[1:]
    differences[0] = 0
    return image, coefficients[0], semantic_windows(coefficients[1:]), differences[:frames]


@torch.inference_mode()
def per_frame_loop(renderer: CERLRenderer, image, source_coefficients, windows, differences) -> float:
    """Seconds for the straightforward loop: every frame redoes the source work, batch 1."""
    start = time.perf_counter()
    for frame in range(windows.shape[0]):
        canonical = renderer.keypoint_detector(image)
        source_window = source_coefficients[None, :, None].expand(1, -1, windows.shape[2])
        kp_source = transform_keypoints(canonical, renderer.mapping(source_window))
        kp_driving = transform_keypoints(canonical, renderer.mapping(windows[frame : frame + 1]))
        renderer.generator(image, kp_source, kp_driving, differences[frame : frame + 1])
    return time.perf_counter() - start


def render_path(renderer: CERLRenderer, image, source_coefficients, windows, differences) -> float:
    start = time.perf_counter()
    state = renderer.prepare_source(image, source_coefficients)
    renderer.render(state, windows, differences)
    return time.perf_counter() - start


@torch.inference_mode()
def count_flops(renderer: CERLRenderer, image, source_coefficients, windows, differences) -> dict[str, float]:
    """GFLOPs of one frame, split into the parts the paper's figures add up."""
    counter = FlopCounterMode(display=False)
    with counter:
        canonical = renderer.keypoint_detector(image)
        kp_driving = transform_keypoints(canonical, renderer.mapping(windows[:1]))
        renderer.generator(image, kp_driving, kp_driving, differences[1:2])
    per_module = counter.get_flop_counts()

    def total(name: str) -> float:
        return sum(per_module.get(name, {}).values()) / 1e9

    return {
        "keypoint_detector": total("KeypointDetector"),
        "mapping": total("MappingNet"),
        "generator": total("OcclusionAwareSPADEGenerator") - total("OcclusionAwareSPADEGenerator.fusion"),
        "fusion": total("OcclusionAwareSPADEGenerator.fusion"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=4, help="frames rendered by the render path")
    parser.add_argument("--loop-frames", type=int, default=2, help="frames rendered by the per-frame loop")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)

    renderer = build_renderer(args.batch_size)
    image, source_coefficients, windows, differences = synthetic_inputs(max(args.frames, args.loop_frames, 2))
    loop_seconds = per_frame_loop(renderer, image, source_coefficients, windows[: args.loop_frames], differences)
    path_seconds = render_path(renderer, image, source_coefficients, windows[: args.frames], differences)
    loop_fps, path_fps = args.loop_frames / loop_seconds, args.frames / path_seconds
    flops = count_flops(renderer, image, source_coefficients, windows, differences)

    parameters = {name: sum(p.numel() for p in module.parameters()) / 1e6 for name, module in renderer.named_children()}
    fusion_parameters = sum(p.numel() for p in renderer.generator.fusion.parameters()) / 1e6
    sadtalker_parameters = sum(parameters.values()) - fusion_parameters
    sadtalker_gflops = flops["keypoint_detector"] + flops["mapping"] + flops["generator"]

    lines = [
        f"renderer benchmark, {SIZE}x{SIZE}, CPU, {args.threads} thread(s), torch {torch.__version__}",
        f"{'path':42s} {'frames':>6s} {'seconds':>8s} {'frames/s':>9s}",
        f"{'per-frame loop (source work each frame, B=1)':42s} {args.loop_frames:6d} {loop_seconds:8.2f} {loop_fps:9.4f}",
        f"{'render path (source once, B=' + str(args.batch_size) + ')':42s} {args.frames:6d} {path_seconds:8.2f} {path_fps:9.4f}",
        f"speed-up (frames/s ratio): {path_fps / loop_fps:.3f}x",
        "",
        f"{'face renderer':24s} {'params (M)':>10s} {'GFLOPs':>9s} {'GMACs':>8s}   paper (M / G)",
        f"{'SadTalker (no CERL)':24s} {sadtalker_parameters:10.3f} {sadtalker_gflops:9.2f} {sadtalker_gflops / 2:8.2f}"
        f"   {PAPER['SadTalker'][0]} / {PAPER['SadTalker'][1]}",
        f"{'TAVCE (with CERL)':24s} {sadtalker_parameters + fusion_parameters:10.3f} "
        f"{sadtalker_gflops + flops['fusion']:9.2f} {(sadtalker_gflops + flops['fusion']) / 2:8.2f}"
        f"   {PAPER['TAVCE'][0]} / {PAPER['TAVCE'][1]}",
        "  parts (GFLOPs): " + ", ".join(f"{k} {v:.2f}" for k, v in flops.items()),
        "  params (M): " + ", ".join(f"{k} {v:.3f}" for k, v in parameters.items()),
        "  paper parameter totals include the audio-to-coefficient networks (and TAVCE's relationship",
        "  encoder); this table counts the face renderer only (keypoint detector + MappingNet + generator).",
    ]
    for line in lines:
        logger.info(line)


if __name__ == "__main__":
    main()
