"""Peak memory of a whole generation (plan + render + mp4) for a short and a long clip.

A script, not a test: ``python benchmarks/memory.py [--short 10] [--long 60] [--weights FOLDER]``.

Each clip is generated in a fresh Python subprocess, so the two peaks cannot mix:
the child loads the pipeline, plans the video (photo, mel windows, coefficients,
relationship) and writes the mp4 with :meth:`TalkingHeadResult.save`. The child
reports its own peak resident set (``VmHWM``) at three points, resetting the peak in
between (``/proc/self/clear_refs``) so each stage's own peak shows; the overall peak
is the largest of them. The ffmpeg encoder is a separate process and is not counted
(its ``RUSAGE_CHILDREN`` figure would only show the Python process it was forked
from). Frames are streamed, so the long clip should peak within 10 % of the short
one (the printed ratio).

Peaks are resident memory, not live bytes: glibc keeps some freed memory of the
planning steps (float64 mel of the whole clip, audio-encoder batches) mapped, which
moves the figures by a few tens of MiB from run to run.

Inputs are synthetic and need no download: a drawn portrait with a known face box
(the landmark predictor runs inside the box, no detector) and speech-like audio
(voiced harmonics under a 4 Hz syllable envelope). Weights default to
:func:`tavce.testing.make_tiny_checkpoint`; pass ``--weights`` for real ones.

``--enhancer tiny`` (small GFPGAN / ParseNet networks with the recipe weights) or
``--enhancer FOLDER`` (the official enhancer files) enhances every frame as well: the
enhancement runs in the same render stream, so the ratio target is the same.

``--batch 10,200`` measures a ``tavce batch`` run instead (:func:`tavce.batch.run_batch` on a
local executor with one worker process, which loads the pipeline once): as many tiny jobs as
the largest count (the same portrait and ``--job-seconds`` of speech, a seed per job), the
worker reporting its own resident set after every job. One JSON line: the worker's peak
(``VmHWM``, reset after loading so it is the jobs' own) and resident set after each count of
jobs, and the ratio of the last count's peak to the first's (target ≤ 1.10: a worker that
renders job after job does not grow).

``--renderer`` measures the renderer alone instead, each configuration in a fresh process:
the straightforward float32 loop (``benchmarks/renderer.py``'s baseline: per-frame source
work, reductions off) and the render path in float32 and bfloat16, on the renderer of
``--weights`` (default: the official 256 sizes with recipe weights, written once into
``--workdir``: ``benchmarks/recipe_weights.py``). Per configuration one JSON line:
``load_peak_mib`` (loading and casting the weights as ``from_pretrained(dtype=)`` does),
``resident_mib`` (after loading), ``render_peak_mib`` (the peak while rendering
``--frames`` frames, the resident weights included) and ``peak_mib`` (the larger).
``--renderer --generate SECONDS`` then runs the whole pipeline on a clip of that length, in
both precisions, again a fresh process each: ``generate`` does what ``tavce generate`` does
(load, prepare the photo, plan, :meth:`TalkingHeadResult.save` with paste-back and encoding),
``pipeline-render`` the same up to the plan and then only the renderer's frames (discarded).
Their ``peak_mib`` is the process's whole peak; the log gives generate ÷ pipeline-render
(what paste-back, encoding and the writer thread add) and generate ÷ the renderer alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.memory")

SAMPLE_RATE = 16000
PORTRAIT_SIZE = (320, 400)  # (W, H)
TARGET_RATIO = 1.10


def synthetic_portrait(width: int, height: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A drawn frontal face on a gradient background, (H, W, 3) uint8, and its face box (pixels)."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), dtype=np.float32)
    image[...] = (np.array([60, 90, 140]) + 60 * (rows / height)[..., None]).clip(0, 255)
    centre_x, centre_y = width / 2, height * 0.48
    half_width, half_height = width * 0.28, height * 0.3

    def ellipse(x: float, y: float, a: float, b: float) -> np.ndarray:
        return ((columns - x) / a) ** 2 + ((rows - y) / b) ** 2 <= 1

    image[ellipse(centre_x, centre_y, half_width, half_height)] = (224, 180, 150)
    for side in (-1, 1):
        eye_x = centre_x + side * 0.4 * half_width
        image[ellipse(eye_x, centre_y - 0.25 * half_height, 0.22 * half_width, 0.09 * half_height)] = (250, 250, 250)
        image[ellipse(eye_x, centre_y - 0.25 * half_height, 0.08 * half_width, 0.08 * half_height)] = (50, 35, 30)
        image[ellipse(eye_x, centre_y - 0.45 * half_height, 0.28 * half_width, 0.04 * half_height)] = (70, 50, 40)
    image[ellipse(centre_x, centre_y + 0.1 * half_height, 0.08 * half_width, 0.2 * half_height)] = (200, 150, 125)
    image[ellipse(centre_x, centre_y + 0.5 * half_height, 0.35 * half_width, 0.07 * half_height)] = (170, 60, 70)
    box = (centre_x - half_width, centre_y - half_height, centre_x + half_width, centre_y + half_height)
    return image.round().astype(np.uint8), tuple(float(v) for v in box)


def speech_like(seconds: float) -> np.ndarray:
    """16 kHz mono float32: voiced harmonics (gliding pitch) under a 4 Hz syllable envelope, with pauses."""
    time_axis = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.5 * time_axis)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * time_axis), 0, None)
    return (0.2 * voiced * envelope).astype(np.float32)


# ---------------------------------------------------------------------------------- child side
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_child(args: argparse.Namespace) -> None:
    """Generate one clip and print a JSON line of memory figures (MiB)."""
    import torch

    from tavce import TalkingHeadPipeline

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    enhancer = {} if args.enhancer is None else {"enhancer": "gfpgan", "enhancer_weights": args.enhancer}
    pipe = TalkingHeadPipeline.from_pretrained(args.weights, local_files_only=True, **enhancer)
    figures = {"after_load_rss": _status_kib("VmRSS"), "load_peak": _status_kib("VmHWM")}
    resettable = _reset_peak()
    result = pipe(
        args.photo, args.audio, face_box=tuple(args.face_box), batch_size=args.batch_size, seed=0, progress=False
    )
    figures |= {"after_plan_rss": _status_kib("VmRSS"), "plan_peak": _status_kib("VmHWM")}
    resettable = _reset_peak() and resettable
    if not args.plan_only:
        result.save(args.output)
    figures["render_peak"] = 0 if args.plan_only else _status_kib("VmHWM")
    # Resetting VmHWM also resets getrusage's ru_maxrss, so the overall peak is the largest stage peak.
    figures["overall_peak"] = max(figures["load_peak"], figures["plan_peak"], figures["render_peak"])
    report = {key: value / 1024 for key, value in figures.items()}
    report |= {"frames": result.num_frames, "seconds": time.perf_counter() - started, "stage_peaks": resettable}
    print(json.dumps(report))


# ---------------------------------------------------------------------------------- parent side
def measure(seconds: float, args: argparse.Namespace, workspace: Path) -> dict:
    import imageio_ffmpeg
    import soundfile

    audio = workspace / f"speech_{seconds:g}s.wav"
    output = workspace / f"clip_{seconds:g}s.mp4"
    soundfile.write(audio, speech_like(seconds), SAMPLE_RATE)
    command = [
        sys.executable, __file__, "--child",
        "--weights", str(args.weights), "--photo", str(args.photo), "--audio", str(audio),
        "--output", str(output), "--batch-size", str(args.batch_size),
        "--threads", str(args.threads), "--face-box", *(str(v) for v in args.face_box),
        *(["--plan-only"] if args.plan_only else []),
        *(["--enhancer", str(args.enhancer)] if args.enhancer is not None else []),
    ]
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    run = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if run.returncode != 0:
        raise SystemExit(f"child for {seconds:g} s failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    row = json.loads(run.stdout.strip().splitlines()[-1])
    if not args.plan_only:
        row["frames_written"] = imageio_ffmpeg.count_frames_and_secs(str(output))[0]
    return row


class MeasuredRunner:
    """A batch task runner that adds its worker's memory (MiB) to what each job returns."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.load_peak = 0.0

    def setup(self, device: str | None) -> None:
        self.runner.setup(device)
        self.load_peak = _status_kib("VmHWM") / 1024
        _reset_peak()  # from here on the peak is the jobs' own

    def run(self, payload: dict) -> dict:
        value = self.runner.run(payload)
        return value | {
            "rss_mib": _status_kib("VmRSS") / 1024, "peak_mib": _status_kib("VmHWM") / 1024, "load_peak_mib": self.load_peak
        }  # fmt: skip


class MeasuringExecutor:
    """A local executor with one worker whose jobs report its memory; keeps each job's figures in finishing order."""

    def __init__(self, threads: int) -> None:
        from tavce.batch import LocalExecutor

        self.local = LocalExecutor(workers=1, threads=threads)
        self.figures: list[dict] = []

    def map(self, runner, tasks):
        for outcome in self.local.map(MeasuredRunner(runner), tasks):
            if outcome.ok:
                self.figures.append(outcome.value)
            yield outcome


def measure_batch(args: argparse.Namespace, workspace: Path) -> dict:
    """Run ``max(args.batch)`` jobs through ``run_batch`` on one worker; its memory after each count of jobs."""
    import soundfile

    from tavce.batch import run_batch

    audio = workspace / f"speech_{args.job_seconds:g}s.wav"
    soundfile.write(audio, speech_like(args.job_seconds), SAMPLE_RATE)
    jobs = [
        {"image": args.photo, "audio": audio, "output": f"clip_{index:04d}.mp4", "seed": index,
         "face_box": tuple(args.face_box), "batch_size": args.batch_size}
        for index in range(max(args.batch))
    ]  # fmt: skip
    executor = MeasuringExecutor(args.threads)
    started = time.perf_counter()
    report = run_batch(jobs, workspace / "batch", executor=executor, weights=args.weights, offline=True,
                       device="cpu", progress=False)  # fmt: skip
    if report.failed:
        raise SystemExit(f"{len(report.failed)} job(s) failed, the first: {report.failed[0]['error']}")
    after = [executor.figures[count - 1] for count in args.batch]
    return {
        "jobs": args.batch,
        "peak_mib": [row["peak_mib"] for row in after],
        "rss_mib": [row["rss_mib"] for row in after],
        "ratio": after[-1]["peak_mib"] / after[0]["peak_mib"],
        "target_ratio": TARGET_RATIO,
        "load_peak_mib": after[0]["load_peak_mib"],
        "frames_per_job": sorted({record["frames"] for record in report.succeeded}),
        "job_seconds": args.job_seconds,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "wall_s": time.perf_counter() - started,
    }


RENDERER_CONFIGURATIONS = (("loop", "float32"), ("render", "float32"), ("render", "bfloat16"))


def run_renderer_child(args: argparse.Namespace) -> None:
    """Load only the renderer of ``args.weights`` in ``args.dtype``, render, print a JSON line of peaks (MiB)."""
    import torch

    from renderer import baseline_loop, driving_inputs, render_frames, source_image

    from tavce.components import COMPONENT_NAMES, load_components

    torch.set_num_threads(args.threads)
    loaded, _ = load_components(args.weights, skip=set(COMPONENT_NAMES) - {"renderer"})
    renderer = loaded["renderer"].to(getattr(torch, args.dtype)).eval()
    figures = {"load_peak_mib": _status_kib("VmHWM") / 1024, "resident_mib": _status_kib("VmRSS") / 1024}
    _reset_peak()
    image, _ = source_image(renderer.image_size)
    coefficients, windows, differences = driving_inputs(args.frames, renderer.generator.config.relationship_dim)
    if args.kind == "loop":
        baseline_loop(renderer, image, coefficients, windows, differences)
    else:
        render_frames(renderer, image, coefficients, windows, differences, batch=1)
    figures["render_peak_mib"] = _status_kib("VmHWM") / 1024
    figures["peak_mib"] = max(figures["load_peak_mib"], figures["render_peak_mib"])
    print(json.dumps({"config": args.kind, "dtype": args.dtype, "frames": args.frames, **figures}))


def run_generate_child(args: argparse.Namespace) -> None:
    """The whole pipeline in ``args.dtype``: ``generate`` (as ``tavce generate``) or ``pipeline-render``; one JSON line."""
    import torch

    from tavce import TalkingHeadPipeline
    from tavce._heap import share_one_heap

    share_one_heap()  # as tavce generate does
    torch.set_num_threads(args.threads)
    pipe = TalkingHeadPipeline.from_pretrained(args.weights, local_files_only=True, device="cpu", dtype=args.dtype)
    figures = {"load_peak_mib": _status_kib("VmHWM") / 1024, "resident_mib": _status_kib("VmRSS") / 1024}
    result = pipe(args.photo, args.audio, face_box=tuple(args.face_box), batch_size=1, seed=0, progress=False)
    figures["planned_mib"] = _status_kib("VmRSS") / 1024
    if args.kind == "generate":
        result.save(args.output)
    else:
        with torch.inference_mode():
            state = pipe.renderer.prepare_source(result.source)
            for first in range(result.num_frames):
                pipe.renderer.render(state, result.coefficients, first, first + 1, result.relationship)
    figures["peak_mib"] = _status_kib("VmHWM") / 1024
    print(json.dumps({"config": args.kind, "dtype": args.dtype, "frames": result.num_frames, **figures}))


def measure_generate(args: argparse.Namespace, weights: Path, workspace: Path, renderer_peaks: dict) -> None:
    """``generate`` and ``pipeline-render`` per precision, a fresh process each; JSON lines on stdout."""
    import imageio.v3 as iio
    import soundfile

    from machine import cpu_description

    image, box = synthetic_portrait(*PORTRAIT_SIZE)
    photo, audio = workspace / "portrait.png", workspace / "speech.wav"
    iio.imwrite(photo, image)
    soundfile.write(audio, speech_like(args.generate), SAMPLE_RATE)
    for dtype in ("float32", "bfloat16"):
        peaks = {}
        for kind in ("pipeline-render", "generate"):
            command = [
                sys.executable, __file__, "--generate-child", "--kind", kind, "--dtype", dtype,
                "--weights", str(weights), "--photo", str(photo), "--face-box", *(str(v) for v in box),
                "--audio", str(audio), "--output", str(workspace / f"{dtype}.mp4"), "--threads", str(args.threads),
            ]  # fmt: skip
            run = subprocess.run(command, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                raise SystemExit(f"{kind} {dtype} failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
            row = json.loads(run.stdout.strip().splitlines()[-1]) | cpu_description()
            peaks[kind] = row["peak_mib"]
            print(json.dumps(row), flush=True)
        logger.info(
            "%s: generate / pipeline render path %.3f, generate / renderer alone %.3f (target <= %.2f)",
            dtype, peaks["generate"] / peaks["pipeline-render"], peaks["generate"] / renderer_peaks[dtype], TARGET_RATIO,
        )


def measure_renderers(args: argparse.Namespace) -> None:
    """One fresh process per configuration of :data:`RENDERER_CONFIGURATIONS`; JSON lines on stdout."""
    from recipe_weights import official_256_folder
    from machine import cpu_description

    with tempfile.TemporaryDirectory(prefix="tavce-memory-") as folder:
        workdir = args.workdir or Path(folder)
        weights = args.weights or official_256_folder(workdir)
        rows = []
        for kind, dtype in RENDERER_CONFIGURATIONS:
            command = [
                sys.executable, __file__, "--renderer-child", "--kind", kind, "--dtype", dtype,
                "--weights", str(weights), "--frames", str(args.frames), "--threads", str(args.threads),
            ]  # fmt: skip
            run = subprocess.run(command, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                raise SystemExit(f"{kind} {dtype} failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
            rows.append(json.loads(run.stdout.strip().splitlines()[-1]) | cpu_description())
            print(json.dumps(rows[-1]), flush=True)
        loop, float32, bfloat16 = (row["peak_mib"] for row in rows)
        logger.info(
            "render path / straightforward loop: float32 %.3f, bfloat16 %.3f (targets <= 1); bfloat16 / float32 %.3f "
            "(target < 1)", float32 / loop, bfloat16 / loop, bfloat16 / float32,
        )
        if args.generate:
            measure_generate(args, weights, Path(folder), {"float32": float32, "bfloat16": bfloat16})


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",")]
    if len(counts) < 2 or counts != sorted(counts) or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected increasing job counts, e.g. 10,200")
    return counts


def _inputs(args: argparse.Namespace, workspace: Path) -> None:
    """Fill in what was not given: tiny weights, the tiny enhancer, the synthetic portrait and its face box."""
    if args.weights is None:
        from tavce.testing import make_tiny_checkpoint

        args.weights = make_tiny_checkpoint(workspace / "tiny-weights", seed=0)
    if args.enhancer == "tiny":
        from enhancer import recipe_enhancer

        args.enhancer = workspace / "tiny-enhancer"
        recipe_enhancer(tiny=True, upscale=2).save_pretrained(args.enhancer)
    if args.photo is None:
        import imageio.v3 as iio

        image, box = synthetic_portrait(*PORTRAIT_SIZE)
        args.photo = workspace / "portrait.png"
        iio.imwrite(args.photo, image)
        args.face_box = args.face_box or box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, help="weights folder (default: tiny random weights in a temp folder)")
    parser.add_argument("--short", type=float, default=10.0, help="seconds of the short clip")
    parser.add_argument("--long", type=float, default=60.0, help="seconds of the long clip")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--photo", type=Path, help="portrait to use instead of the synthetic one (needs --face-box)")
    parser.add_argument("--face-box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"))
    parser.add_argument(
        "--enhancer", default=None, help="enhance every frame: 'tiny' (small recipe networks) or the enhancer's weights folder"
    )
    parser.add_argument("--renderer", action="store_true", help="peak memory of the renderer alone: straightforward "
                        "float32 loop vs render path in float32 and bfloat16, a fresh process each")
    parser.add_argument("--batch", type=_counts, metavar="N,M", help="memory of one batch worker after N and after "
                        "M jobs (e.g. 10,200): a run of tavce batch over tiny jobs instead of the two clips")
    parser.add_argument("--job-seconds", type=float, default=1.0, help="--batch: seconds of speech per job")
    parser.add_argument("--frames", type=int, default=2, help="--renderer: frames rendered per configuration")
    parser.add_argument("--workdir", type=Path, help="--renderer: keeps the recipe weights between runs")
    parser.add_argument("--generate", type=float, default=0.0, metavar="SECONDS", help="--renderer: then the whole "
                        "pipeline on a clip of SECONDS, as tavce generate and up to the render path (fresh processes)")
    parser.add_argument("--plan-only", action="store_true", help="plan the videos without rendering them: the planning "
                        "stage's peaks in minutes instead of the 10-minute clip's half hour (render_peak is then 0)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--renderer-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    if args.renderer_child:
        run_renderer_child(args)
        return
    if args.generate_child:
        run_generate_child(args)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.renderer:
        measure_renderers(args)
        return
    from machine import cpu_description

    if args.photo is not None and args.face_box is None:
        parser.error("--photo needs --face-box X0 Y0 X1 Y1 (the benchmark runs no face detector)")

    with tempfile.TemporaryDirectory(prefix="tavce-memory-") as folder:
        workspace = Path(folder)
        _inputs(args, workspace)
        if args.batch:
            print(json.dumps(measure_batch(args, workspace) | cpu_description()), flush=True)
            return
        rows = {seconds: measure(seconds, args, workspace) for seconds in (args.short, args.long)}

    short, long = rows[args.short], rows[args.long]
    ratio = long["overall_peak"] / short["overall_peak"]
    columns = ("load_peak", "plan_peak", "after_plan_rss", "render_peak", "overall_peak")
    lines = [
        f"peak memory of one generation (MiB), weights {args.weights.name}, batch size {args.batch_size}, "
        f"{args.threads} thread(s), enhancer {'none' if args.enhancer is None else Path(args.enhancer).name}",
        f"{'clip':>7s} {'frames':>6s} {'wall s':>7s} " + " ".join(f"{name:>14s}" for name in columns),
    ]
    for seconds, row in rows.items():
        lines.append(
            f"{seconds:6g}s {row['frames']:6d} {row['seconds']:7.1f} "
            + " ".join(f"{row[name]:14.1f}" for name in columns)
        )
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    lines.append(
        f"overall peak ratio {args.long:g} s / {args.short:g} s: {ratio:.3f} (target ≤ {TARGET_RATIO}: {verdict})"
    )
    if not short["stage_peaks"]:
        lines.append("note: the kernel refused to reset VmHWM, so plan/render peaks include the earlier stages")
    for line in lines:
        logger.info(line)
    summary = {"short_s": args.short, "long_s": args.long, "short": short, "long": long, "ratio": ratio}
    print(json.dumps(summary | {"target_ratio": TARGET_RATIO} | cpu_description()), flush=True)


if __name__ == "__main__":
    main()
