"""int8 for the SPADE decoder's large 3×3 convolutions: frames/s and PSNR against float32 and bfloat16.

A script, not a test::

    python benchmarks/int8.py [--json] [--frames 3] [--calibration-frames 2] [--engine x86]
                              [--scope middle|blocks|all] [--threads 2] [--tiny]

Quantised, on the full-size renderer with recipe weights (``benchmarks/renderer.py``'s): the
``conv_0`` / ``conv_1`` of every SPADE residual block of the decoder (3×3; 512→512 at 64²,
512→256 and 256→256 at 128², 256→64 and 64→64 at 256² for a 256 image); with
``--scope middle`` only the middle blocks' (512→512 at 64²), with ``--scope all`` also every
SPADE layer's γ and β convs (3×3, 128→C). PyTorch's own
quantisation for the x86 / oneDNN backends (``torch.backends.quantized.engine``): weights per
output channel (symmetric int8), activations per tensor (unsigned 8-bit, affine), both ranges
calibrated with histogram observers on ``--calibration-frames`` frames that are not among the
timed ones (through the plain computation, where every conv is a module call). A quantised
conv quantises its input, runs ``torch.ao.nn.quantized.Conv2d`` (the engine's int8 kernel:
AVX-512 VNNI, AMX-INT8 where present) and dequantises its output; everything else runs in
float32 (``int8``) or bfloat16 (``int8+bfloat16``).

The configurations float32, bfloat16, int8 and int8+bfloat16 render the same frames, timed
interleaved frame by frame after one untimed warm-up frame each (the CPU may be shared: the
fastest frame of each counts, and every configuration sees the same load). Per configuration
one JSON line (``--json``) or a log line: ``frames_per_s``, ``vs_float32`` and ``vs_bfloat16``
(frames/s ratios in the same run), ``psnr_vs_fp32_db`` (frames against the float32 ones,
pixels in [0, 1]), ``quantised_convs`` and ``quantised_gflop_share`` (the quantised convs'
share of one frame's convolution and matmul FLOPs), with the CPU model and flags.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
import time
import warnings

import torch
import torch.ao.nn.quantized as nnq
from torch import nn
from torch.ao.quantization import HistogramObserver, PerChannelMinMaxObserver
from torch.utils.flop_counter import FlopCounterMode

from machine import cpu_description
from renderer import build_renderer, driving_inputs, prepare, psnr_db, render_batch, source_image, write_json_line

from tavce.models.renderer.fast_conv import exact_reductions
from tavce.models.renderer.spade import SPADE, SPADEResBlock

logger = logging.getLogger("benchmarks.int8")


class Int8Conv2d(nn.Module):
    """A calibrated float conv as int8: quantise the input, the engine's int8 conv, dequantise (in the input's dtype)."""

    def __init__(self, conv: nn.Conv2d, input_range: HistogramObserver, output_range: HistogramObserver) -> None:
        super().__init__()
        weight = conv.weight.detach().float()
        weight_range = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        weight_range(weight)
        scales, zero_points = weight_range.calculate_qparams()
        self.conv = nnq.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups
        )
        quantised = torch.quantize_per_channel(weight, scales.double(), zero_points.long(), 0, torch.qint8)
        self.conv.set_weight_bias(quantised, None if conv.bias is None else conv.bias.detach().float())
        scale, zero_point = output_range.calculate_qparams()
        self.conv.scale, self.conv.zero_point = float(scale), int(zero_point)
        scale, zero_point = input_range.calculate_qparams()
        self.input_scale, self.input_zero_point = float(scale), int(zero_point)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) float → (B, C_out, H, W) in ``input``'s dtype, channels-last (the int8 kernels' layout)."""
        channels_last = input.float().contiguous(memory_format=torch.channels_last)
        quantised = torch.quantize_per_tensor(channels_last, self.input_scale, self.input_zero_point, torch.quint8)
        return self.conv(quantised).dequantize().to(input.dtype)


def _spade_convs(layer: SPADE) -> dict[str, nn.Conv2d]:
    return {"gamma": layer.gamma, "beta": layer.beta}


def quantisable_convs(renderer: nn.Module, scope: str) -> dict[str, nn.Conv2d]:
    """The decoder convs quantised for ``scope`` (see the module docstring)."""
    convs: dict[str, nn.Conv2d] = {}
    for name, module in renderer.named_modules():
        if isinstance(module, SPADEResBlock) and (scope != "middle" or ".middle_blocks." in name):
            convs |= {f"{name}.conv_0": module.conv_0, f"{name}.conv_1": module.conv_1}
        elif scope == "all" and isinstance(module, SPADE) and not name.endswith("norm_shortcut"):
            # The shortcut SPADE's β is composed with the 1×1 shortcut conv into one weight: it stays float.
            convs |= {f"{name}.{key}": conv for key, conv in _spade_convs(module).items()}
    return convs


@torch.inference_mode()
def calibrate(renderer: nn.Module, convs: dict[str, nn.Conv2d], image, coefficients, windows, differences) -> dict:
    """{conv name: (input observer, output observer)} from rendering ``windows`` frame by frame (plain computation)."""
    ranges = {name: (HistogramObserver(dtype=torch.quint8), HistogramObserver(dtype=torch.quint8)) for name in convs}

    def observe(observers: tuple[HistogramObserver, HistogramObserver], inputs: tuple, output: torch.Tensor) -> None:
        observers[0](inputs[0].float())
        observers[1](output.float())

    hooks = [
        conv.register_forward_hook(lambda _, inputs, output, observers=ranges[name]: observe(observers, inputs, output))
        for name, conv in convs.items()
    ]
    try:
        with exact_reductions(False):
            state = prepare(renderer, image, coefficients)
            for index in range(windows.shape[0]):
                render_batch(renderer, state, windows[index : index + 1], differences[index : index + 1])
    finally:
        for hook in hooks:
            hook.remove()
    return ranges


def modulate_through_modules(layer: SPADE) -> None:
    """Rebind ``layer``'s scale and shift to call its γ / β convs as modules (the reduced ones read their weights)."""
    gamma, beta = layer.gamma, layer.beta
    layer.scale = lambda normalized, hidden: gamma(hidden).add_(1).mul_(normalized)  # type: ignore[method-assign]
    layer.shift = lambda scaled, hidden: scaled.add_(beta(hidden))  # type: ignore[method-assign]


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attribute = name.rpartition(".")
    setattr(root.get_submodule(parent), attribute, module)


def quantised_copy(renderer: nn.Module, ranges: dict, dtype: torch.dtype) -> nn.Module:
    """A copy of the float32 ``renderer`` in ``dtype`` with the calibrated convs as :class:`Int8Conv2d`.

    The SPADE γ/β convs are read as weights by the reduced computation (not called as modules), so
    a quantised SPADE layer's scale and shift are rebound to call its int8 convs.
    """
    model = copy.deepcopy(renderer).to(dtype)
    for name, (input_range, output_range) in ranges.items():
        _replace(model, name, Int8Conv2d(renderer.get_submodule(name), input_range, output_range))
    for module in model.modules():
        if isinstance(module, SPADE) and isinstance(module.gamma, Int8Conv2d):
            modulate_through_modules(module)
    return model.eval()


@torch.inference_mode()
def quantised_gflop_share(renderer: nn.Module, convs: dict[str, nn.Conv2d], state, windows, differences) -> float:
    """The quantised convs' share of one frame's convolution/matmul FLOPs (float32 model, reduced computation)."""
    macs = {"total": 0}

    def count(conv: nn.Conv2d, _, output: torch.Tensor) -> None:
        macs["total"] += output.numel() * conv.in_channels // conv.groups * math.prod(conv.kernel_size)

    counter = FlopCounterMode(display=False)
    hooks = [conv.register_forward_hook(count) for conv in convs.values()]
    # The γ/β convs are read as weights in the reduced computation: count them as module calls.
    layers = [module for module in renderer.modules() if isinstance(module, SPADE)]
    rebound = [layer for layer in layers if any(conv in convs.values() for conv in _spade_convs(layer).values())]
    for layer in rebound:
        modulate_through_modules(layer)
    try:
        with counter:
            render_batch(renderer, state, windows[:1], differences[:1])
    finally:
        for hook in hooks:
            hook.remove()
        for layer in rebound:
            del layer.scale, layer.shift
    return 2 * macs["total"] / counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per configuration on stdout")
    parser.add_argument("--frames", type=int, default=3, help="timed frames per configuration (after one warm-up)")
    parser.add_argument("--calibration-frames", type=int, default=2, help="frames whose activations set the int8 ranges")
    parser.add_argument("--engine", default="x86", choices=["x86", "onednn", "fbgemm"], help="quantised kernels' engine")
    parser.add_argument("--scope", default="blocks", choices=["middle", "blocks", "all"],
                        help="blocks: the residual blocks' conv_0/conv_1; middle: the middle blocks' only; all: also the "
                        "SPADE γ/β convs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="tavce.testing's tiny renderer (checks the script)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # PyTorch marks its quantised tensors deprecated (one warning per process); they are what this measures.
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = args.engine

    renderer = build_renderer(args.tiny)
    image, image_name = source_image(renderer.image_size)
    # Calibration frames follow the timed ones (frame 0 is the warm-up).
    timed = args.frames + 1
    coefficients, windows, differences = driving_inputs(timed + args.calibration_frames, renderer.generator.config.relationship_dim)
    convs = quantisable_convs(renderer, args.scope)
    ranges = calibrate(renderer, convs, image, coefficients, windows[timed:], differences[timed:])
    models = {
        "float32": renderer,
        "bfloat16": copy.deepcopy(renderer).to(torch.bfloat16).eval(),
        "int8": quantised_copy(renderer, ranges, torch.float32),
        "int8+bfloat16": quantised_copy(renderer, ranges, torch.bfloat16),
    }
    with torch.inference_mode():
        share = quantised_gflop_share(renderer, convs, prepare(renderer, image, coefficients), windows, differences)
        states = {name: prepare(model, image, coefficients) for name, model in models.items()}
        seconds: dict[str, list[float]] = {name: [] for name in models}
        frames: dict[str, list[torch.Tensor]] = {name: [] for name in models}
        for index in range(timed):
            for name, model in models.items():
                start = time.perf_counter()
                frame = render_batch(model, states[name], windows[index : index + 1], differences[index : index + 1])
                seconds[name].append(time.perf_counter() - start)
                frames[name].append(frame.float())
    fastest = {name: min(values[1:]) for name, values in seconds.items()}
    reference = torch.cat(frames["float32"])
    for name in models:
        row = {
            "config": name, "engine": args.engine, "scope": args.scope, "size": renderer.image_size,
            "frames": args.frames, "frames_per_s": 1 / fastest[name],
            "vs_float32": fastest["float32"] / fastest[name], "vs_bfloat16": fastest["bfloat16"] / fastest[name],
            "psnr_vs_fp32_db": psnr_db(torch.cat(frames[name]), reference),
            "quantised_convs": len(convs) if name.startswith("int8") else 0,
            "quantised_gflop_share": share if name.startswith("int8") else 0.0,
            "threads": args.threads, "image": image_name, "torch": torch.__version__, **cpu_description(),
        }  # fmt: skip
        if args.json:
            write_json_line(row)
        else:
            logger.info(
                "%-14s %.3f frames/s  %.2fx float32  %.2fx bfloat16  PSNR %.1f dB vs float32",
                name, row["frames_per_s"], row["vs_float32"], row["vs_bfloat16"], row["psnr_vs_fp32_db"],
            )


if __name__ == "__main__":
    main()
