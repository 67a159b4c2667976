"""Stage 1 on synthetic talking heads: the positive-minus-negative similarity gap before and after training.

A script, not a test: ``python benchmarks/tavc_stage1.py [--steps 200] [--batch-size 8] [--json]``.

Synthetic clips (:func:`tavce.testing.make_synthetic_videos`: a drawn face whose mouth
opens with its audio's loudness) are prepared with the test stand-ins (their exact
landmarks, a tiny random 3DMM network): ``--train-clips`` for training and
``--held-out-clips`` others (another seed) for evaluation. The metric is the default
:class:`~tavce.models.tavc.TAVCMetric` with the full Wav2Lip audio encoder (random
initialisation: no ``wav2lip.pth`` offline) and a narrow IResNet mouth encoder; it is
trained by :func:`tavce.training.tavc.train_tavc` on the CPU. Before and after, the
held-out items are scored by :func:`~tavce.training.tavc.evaluate_similarity`: the mean
flattened cosine of the adjacent (positive) and distant (negative) mouth pairs, their
gap, the row-wise similarities the original logs, and the fraction of items ranked
correctly. ``--json`` prints one JSON line (the slow test reads it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # the test stand-ins live in tests/helpers.py

from tavce.models.tavc import MouthEncoderConfig  # noqa: E402
from tavce.testing import make_synthetic_videos  # noqa: E402
from tavce.training.data import PrepareConfig, TAVCDataset, TAVCDatasetConfig, prepare_dataset  # noqa: E402
from tavce.training.tavc import TAVCTrainingConfig, build_metric, evaluate_similarity, train_tavc  # noqa: E402
from tests.helpers import SyntheticFaceLandmarker, tiny_face_recon  # noqa: E402

logger = logging.getLogger("benchmarks.tavc_stage1")

EMBEDDING = 32
NARROW_MOUTH = MouthEncoderConfig(
    stem_channels=8, stage_channels=(8, 16, 16, 32), blocks_per_stage=(1, 1, 1, 1), embedding_dim=EMBEDDING
)


def prepare(folder: Path, clips: int, seconds: float, seed: int) -> Path:
    make_synthetic_videos(folder / "videos", n=clips, seconds=seconds, seed=seed)
    prepare_dataset(
        folder / "videos", folder / "data", face_recon=tiny_face_recon(), landmarker=SyntheticFaceLandmarker(),
        config=PrepareConfig(crop_mode="resize"), progress=False,
    )  # fmt: skip
    return folder / "data"


def run(arguments: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        started = time.perf_counter()
        train_data = prepare(root / "train", arguments.train_clips, arguments.seconds, seed=0)
        held_out_data = prepare(root / "held_out", arguments.held_out_clips, arguments.seconds, seed=1000)
        prepared_seconds = time.perf_counter() - started
        held_out = TAVCDataset(held_out_data, TAVCDatasetConfig(repeats=arguments.evaluation_items))
        config = TAVCTrainingConfig(
            embedding_dim=EMBEDDING,
            mouth_encoder=NARROW_MOUTH,
            batch_size=arguments.batch_size,
            repeats=arguments.steps * arguments.batch_size // arguments.train_clips + 1,
            epochs=None,
            max_steps=arguments.steps,
            learning_rate=arguments.learning_rate,
            seed=arguments.seed,
            device="cpu",
            num_workers=0,
            log_every=50,
            progress=not arguments.json,
            export_metric=False,
        )
        torch.manual_seed(config.seed)
        metric = build_metric(config)
        before = evaluate_similarity(metric, held_out, items=arguments.evaluation_items)
        started = time.perf_counter()
        result = train_tavc(train_data, root / "run", config, metric=metric)
        training_seconds = time.perf_counter() - started
        after = evaluate_similarity(result.metric, held_out, items=arguments.evaluation_items)
    return {
        "steps": result.steps,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "before": {**before.__dict__, "gap": before.gap},
        "after": {**after.__dict__, "gap": after.gap},
        "last_smoothed_similarity": [result.history[-1].smoothed_positive, result.history[-1].smoothed_negative],
        "prepare_seconds": round(prepared_seconds, 1),
        "train_seconds": round(training_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps (default 200)")
    parser.add_argument("--batch-size", type=int, default=8, help="items per step (default 8)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--train-clips", type=int, default=6, help="synthetic training clips (default 6)")
    parser.add_argument("--held-out-clips", type=int, default=2, help="synthetic evaluation clips (default 2)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each clip (default 3)")
    parser.add_argument("--evaluation-items", type=int, default=128, help="held-out items scored (default 128)")
    parser.add_argument("--seed", type=int, default=2024, help="training seed (default 2024)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if arguments.json else logging.INFO, format="%(message)s")
    figures = run(arguments)
    if arguments.json:
        print(json.dumps(figures))
        return
    print(f"{figures['steps']} steps, batch {figures['batch_size']}, lr {figures['learning_rate']:g}: "
          f"prepared in {figures['prepare_seconds']} s, trained in {figures['train_seconds']} s")  # fmt: skip
    print(f"{'held-out':<8} {'cos+':>7} {'cos-':>7} {'gap':>7} {'row+':>7} {'row-':>7} {'ranked':>7}")
    for name in ("before", "after"):
        f = figures[name]
        print(f"{name:<8} {f['cos_positive']:7.3f} {f['cos_negative']:7.3f} {f['gap']:7.3f} "
              f"{f['row_positive']:7.3f} {f['row_negative']:7.3f} {f['ranked']:7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
