"""Where one rendered frame's time goes, per operator: time, share, FLOPs and achieved GFLOP/s.

A script, not a test::

    python benchmarks/profile_frame.py [--dtype bfloat16] [--frames 2] [--threads 2] [--tiny] [--rows 25] [--json]

The full-size TAVCE renderer with recipe weights (``benchmarks/renderer.py``'s), the source
prepared once, then ``--frames`` frames rendered one by one under ``torch.profiler`` after
an untimed warm-up frame (kernel selection, derived weights). Operators are aggregated by
name (``key_averages``); FLOPs are the profiler's own count for convolutions and matrix
products (2 per multiply-add), so element-wise, layout and cast operators show time without
FLOPs: that is the time the issue of "closer to the kernel peak" is about.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from machine import cpu_description
from renderer import DTYPES, build_renderer, driving_inputs, prepare, render_batch, source_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--frames", type=int, default=2, help="profiled frames (after one warm-up frame)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=25, help="operators listed, most time first")
    parser.add_argument("--tiny", action="store_true", help="tavce.testing's tiny renderer (checks the script)")
    parser.add_argument("--json", action="store_true", help="one JSON line per operator instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    renderer = build_renderer(args.tiny).to(DTYPES[args.dtype])
    image, _ = source_image(renderer.image_size)
    coefficients, windows, differences = driving_inputs(args.frames + 1, renderer.generator.config.relationship_dim)
    with torch.inference_mode():
        state = prepare(renderer, image, coefficients)
        render_batch(renderer, state, windows[:1], differences[:1])
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
            for frame in range(1, args.frames + 1):
                render_batch(renderer, state, windows[frame : frame + 1], differences[frame : frame + 1])
    events = [event for event in profiler.key_averages() if event.self_cpu_time_total > 0 or event.flops]
    total_us = sum(event.self_cpu_time_total for event in events)
    per_frame = args.frames

    def row(event, kind: str) -> dict:
        # FLOPs are counted on the dispatching operator (aten::conv2d, aten::mm, ...), whose inclusive
        # time holds the kernel that ran them; leaf operators are listed by their own (self) time.
        microseconds = event.cpu_time_total if kind == "flops" else event.self_cpu_time_total
        seconds, gflop = microseconds / 1e6 / per_frame, (event.flops or 0) / 1e9 / per_frame
        return {
            "kind": kind, "op": event.key, "calls_per_frame": event.count / per_frame, "ms_per_frame": 1e3 * seconds,
            "share": microseconds / total_us, "gflop_per_frame": gflop, "gflop_per_s": gflop / seconds if gflop else None,
        }  # fmt: skip

    leaves = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[: args.rows]
    counted = sorted((event for event in events if event.flops), key=lambda event: event.flops, reverse=True)
    rows = [row(event, "self") for event in leaves] + [row(event, "flops") for event in counted]
    machine = cpu_description()
    if args.json:
        for entry in rows:
            print(json.dumps(entry | {"dtype": args.dtype, "threads": args.threads, **machine}))
        return
    print(f"{args.dtype}, {args.threads} threads, {machine['cpu']} ({', '.join(machine['cpu_flags'])}); "
          f"{total_us / 1e3 / per_frame:.0f} ms per frame in operators")  # fmt: skip
    for kind, title in (("self", "operators by own time"), ("flops", "FLOP-counting operators, inclusive time")):
        print(f"\n{title}\n| {'operator':34s} | calls | ms/frame | share | GFLOP/frame | GFLOP/s |")
        print(f"|{'-' * 36}|------:|---------:|------:|------------:|--------:|")
        for entry in (entry for entry in rows if entry["kind"] == kind):
            rate = f"{entry['gflop_per_s']:7.0f}" if entry["gflop_per_s"] else "       "
            print(f"| {entry['op'][:34]:34s} | {entry['calls_per_frame']:5.0f} | {entry['ms_per_frame']:8.1f} | "
                  f"{100 * entry['share']:4.1f}% | {entry['gflop_per_frame']:11.1f} | {rate} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
