"""Where the time of one ``tavce generate`` goes: every phase, per precision, in a fresh process each.

A script, not a test::

    python benchmarks/end_to_end.py [--json] [--seconds 10] [--dtypes float32,bfloat16] [--batch-size 1]
                                    [--threads 2] [--weights FOLDER | --tiny] [--workdir DIR]
                                    [--enhancer recipe|tiny|FOLDER]

Weights: a tavce weights folder at the official sizes holding the deterministic recipe
weights (official-layout files from :func:`tavce.testing.make_official_checkpoint`, loaded
and written once with ``save_pretrained`` into ``--workdir``, reused by later runs), or
``--tiny`` (:func:`tavce.testing.make_tiny_checkpoint`, seconds), or your own ``--weights``.
Inputs are synthetic (``benchmarks/memory.py``'s drawn portrait with its face box, so no
detector model is needed, and speech-like audio of ``--seconds``).

Each configuration runs in its own Python process (so peaks and caches cannot mix) and
prints one JSON line:

* ``load_s`` — ``TalkingHeadPipeline.from_pretrained`` of the local folder, with ``dtype``;
* ``face_s`` — ``preprocessor.prepare`` (crop, landmarks, 3DMM coefficients);
* ``plan_s`` — audio loading, mel windows, Audio2Coeff and the TAVC relationship (``pipe(...)``);
* ``render_s`` — the renderer alone: ``prepare_source`` and every batch, frames discarded; the
  first half of the batches is timed before ``save``, the second half after it, so a machine
  whose speed drifts during the run (other tenants) moves both sides of ``overhead`` alike;
* ``enhance_s`` — with ``--enhancer``, the enhancement alone, in the same passes (each rendered
  batch pasted back untimed, then its faces tracked, restored and pasted: what ``save``
  adds per frame for the enhancer); 0 without;
* ``save_s`` — ``result.save``: rendering again (a batch ahead in a background thread when it
  enhances), enhancement when the pipeline has an enhancer, paste-back and H.264 encoding; ``paste_encode_s`` is
  ``save_s − render_s − enhance_s``, what the writer side adds (negative with an enhancer when
  ``save``'s overlap of rendering and enhancement saves more than paste-back and encoding cost);
* ``end_to_end_s`` — load + face + plan + save, what a user of ``tavce generate`` waits for;
  ``end_to_end_s_per_frame`` and ``render_s_per_frame`` (and their ratio ``overhead``; the
  target is ≤ 1.10 for a 10 s clip); ``overhead_vs_render_and_enhance`` divides by
  ``render_s + enhance_s`` instead, the frame work the clip's length multiplies;
* ``peak_rss_mib`` — the process's resident peak (Linux ``VmHWM``), the ffmpeg encoder not counted;
* ``cpu``, ``cpu_flags``, ``thread_scaling`` — the machine (``machine.py``): its model, its instruction sets, and how
  many times faster ``--threads`` threads run a matrix product than one (near 1: the host oversubscribes the cores).

Only ``render_s``, ``enhance_s`` and ``save_s`` grow with the clip's length; the other phases are per clip.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description, thread_scaling
from memory import PORTRAIT_SIZE, SAMPLE_RATE, speech_like, synthetic_portrait
from recipe_weights import official_256_folder

TARGET_OVERHEAD = 1.10


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def frame_work(pipe, result, state, batch_size: int, frames: range) -> tuple[float, float]:
    """Seconds of the renderer alone and of the enhancer alone over ``frames`` of the clip, one after the other.

    Every batch of ``frames`` is rendered from the prepared source ``state`` (``render_s``); with
    an enhancer, its frames are then pasted back into the photo (untimed) and enhanced as
    ``result.save`` enhances them -- landmarks tracked in each frame, GFPGAN, the face pasted back
    (``enhance_s``). Frames are discarded; nothing is encoded.
    """
    import torch

    clock = time.perf_counter
    render_s = enhance_s = 0.0
    enhancer, tracker = pipe.enhancer, None
    with torch.inference_mode():
        for first in range(frames.start, frames.stop, batch_size):
            started = clock()
            rendered = pipe.renderer.render(
                state, result.coefficients, first, min(first + batch_size, frames.stop), result.relationship
            )
            render_s += clock() - started
            if enhancer is None:
                continue
            video_frames = list(pipe.preprocessor.restore_frames(rendered, result.source))
            started = clock()
            tracker = tracker or pipe._face_tracker(result.source, video_frames[0].shape)
            pipe._enhance(enhancer, video_frames, tracker, 0, first)
            enhance_s += clock() - started
    return render_s, enhance_s


def run_child(args: argparse.Namespace) -> None:
    """One configuration: every phase timed, one JSON line on stdout."""
    import torch

    from tavce import TalkingHeadPipeline
    from tavce.audio import load_audio

    torch.set_num_threads(args.threads)
    clock = time.perf_counter
    started = clock()
    enhancer = {} if args.enhancer_weights is None else {"enhancer": "gfpgan", "enhancer_weights": args.enhancer_weights}
    pipe = TalkingHeadPipeline.from_pretrained(
        args.weights, local_files_only=True, device="cpu", dtype=args.dtype, **enhancer
    )
    load_s = clock() - started

    started = clock()
    source = pipe.preprocessor.prepare(str(args.photo), "crop", pipe.size, face_box=tuple(args.face_box))
    face_s = clock() - started

    started = clock()
    result = pipe(source, load_audio(args.audio), seed=0, batch_size=args.batch_size, progress=False)
    plan_s = clock() - started
    total = result.num_frames

    with torch.inference_mode():
        started = clock()
        state = pipe.renderer.prepare_source(result.source)  # once per clip, as save does
        prepare_s = clock() - started
    # Half the clip's frame work is timed before save and half after, so a machine that speeds up or
    # slows down during the run (other tenants) moves both sides of the ratio alike.
    middle = (total // 2) // args.batch_size * args.batch_size
    before = frame_work(pipe, result, state, args.batch_size, range(0, middle))
    started = clock()
    result.save(args.output)
    save_s = clock() - started
    after = frame_work(pipe, result, state, args.batch_size, range(middle, total))
    render_s, enhance_s = prepare_s + before[0] + after[0], before[1] + after[1]

    end_to_end_s = load_s + face_s + plan_s + save_s
    row = {
        "config": "generate", "dtype": args.dtype, "batch": args.batch_size, "frames": total,
        "clip_s": total / result.fps, "load_s": load_s, "face_s": face_s, "plan_s": plan_s,
        "render_s": render_s, "enhance_s": enhance_s, "save_s": save_s,
        "paste_encode_s": save_s - render_s - enhance_s, "end_to_end_s": end_to_end_s,
        "render_s_per_frame": render_s / total, "enhance_s_per_frame": enhance_s / total,
        "end_to_end_s_per_frame": end_to_end_s / total, "overhead": end_to_end_s / render_s,
        "overhead_vs_render_and_enhance": end_to_end_s / (render_s + enhance_s),
        "enhancer": getattr(pipe, "enhancer", None) is not None, "peak_rss_mib": _peak_rss_mib(),
    }  # fmt: skip
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per configuration (default: a table)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the speech clip (default 10)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated precisions to run")
    parser.add_argument("--batch-size", type=int, default=1, help="frames per render batch (default 1, the CPU's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process (default 2)")
    parser.add_argument("--weights", type=Path, help="a tavce weights folder (default: recipe weights, official sizes)")
    parser.add_argument("--tiny", action="store_true", help="tiny random weights (checks the script in seconds)")
    parser.add_argument("--workdir", type=Path, help="keeps the recipe weights between runs (default: a temp folder)")
    parser.add_argument("--enhancer", help="also enhance every frame: 'recipe' (GFPGAN and ParseNet at the official "
                        "sizes with recipe weights, upscale 1), 'tiny' (small networks: checks the script), or a folder "
                        "of enhancer weights; its time alone is enhance_s, and it is part of save_s")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--enhancer-weights", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--photo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--face-box", type=float, nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    with tempfile.TemporaryDirectory(prefix="tavce-e2e-") as temporary:
        workspace = Path(temporary)
        workdir = args.workdir or workspace
        workdir.mkdir(parents=True, exist_ok=True)
        if args.weights is None:
            from tavce.testing import make_tiny_checkpoint

            args.weights = make_tiny_checkpoint(workspace / "tiny") if args.tiny else official_256_folder(workdir)
        if args.enhancer in ("recipe", "tiny"):
            from enhancer import recipe_enhancer

            args.enhancer_weights = workdir / f"enhancer-{args.enhancer}"
            if not args.enhancer_weights.is_dir():
                recipe_enhancer(tiny=args.enhancer == "tiny", upscale=1).save_pretrained(args.enhancer_weights)
        elif args.enhancer is not None:
            args.enhancer_weights = Path(args.enhancer)
        import imageio.v3 as iio
        import soundfile

        image, box = synthetic_portrait(*PORTRAIT_SIZE)
        photo, audio = workspace / "portrait.png", workspace / "speech.wav"
        iio.imwrite(photo, image)
        soundfile.write(audio, speech_like(args.seconds), SAMPLE_RATE)
        rows = []
        machine = {**cpu_description(), "thread_scaling": thread_scaling(args.threads)}
        for dtype in args.dtypes.split(","):
            command = [
                sys.executable, __file__, "--child", "--dtype", dtype, "--weights", str(args.weights),
                "--photo", str(photo), "--face-box", *(str(v) for v in box), "--audio", str(audio),
                "--output", str(workspace / f"{dtype}.mp4"), "--batch-size", str(args.batch_size),
                "--threads", str(args.threads),
                *(["--enhancer-weights", str(args.enhancer_weights)] if args.enhancer_weights else []),
            ]  # fmt: skip
            environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{dtype} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row |= {"weights": args.weights.name, "threads": args.threads, **machine}
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    if not args.json:
        columns = ("load_s", "face_s", "plan_s", "render_s", "enhance_s", "paste_encode_s",
                   "end_to_end_s_per_frame", "render_s_per_frame", "overhead", "peak_rss_mib")  # fmt: skip
        print(f"{'dtype':9s} {'frames':>6s} " + " ".join(f"{name:>22s}" for name in columns))
        for row in rows:
            verdict = "" if row["overhead"] <= TARGET_OVERHEAD else "  (above the 1.10 target)"
            print(f"{row['dtype']:9s} {row['frames']:6d} " + " ".join(f"{row[name]:22.3f}" for name in columns) + verdict)


if __name__ == "__main__":
    main()
