"""Pieces every trainer's loop shares: data order, autocast choice, the epoch/step walk, the figures log.

The stage-1 (:mod:`tavce.training.tavc.trainer`) and stage-2
(:mod:`tavce.training.renderer.loop`) loops differ only in what one step does and
what a checkpoint holds; the walk over epochs and steps — resumable position,
scheduler at each epoch's end, checkpoints after every epoch, every N steps and at
the end, the progress bar — is :func:`run_steps`.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tavce.errors import CheckpointError
from tavce.training.checkpoint import (
    capture_rng_state,
    find_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from tavce.training.distributed import DistributedContext
from tavce.training.sampler import GlobalBatchSampler, SeededItems

CHECKPOINTS_DIR = "checkpoints"
METRICS_LOG = "metrics.jsonl"
CONFIG_NAME = "training_config.json"

__all__ = [
    "LoopPosition",
    "append_metrics",
    "autocast_dtype",
    "build_loader",
    "load_resumable",
    "restore_position",
    "write_checkpoint",
    "planned_steps",
    "run_steps",
    "seed_everything",
    "truncate_metrics_log",
]

logger = logging.getLogger(__name__)


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a ``mixed_precision`` setting: auto → float16 on CUDA, none on CPU."""
    if mode == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[mode]


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy and Python's ``random`` (initialisation draws before any checkpoint exists)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    context: DistributedContext,
    *,
    seed: int,
    num_workers: int,
) -> tuple[GlobalBatchSampler, DataLoader]:
    """This rank's slice of every global batch (``batch_size`` items), items seeded by (seed, epoch, index)."""
    sampler = GlobalBatchSampler(dataset, batch_size, num_replicas=context.world_size, rank=context.rank, seed=seed)
    loader = DataLoader(
        SeededItems(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=context.device.type == "cuda",
        persistent_workers=num_workers > 0,
    )
    return sampler, loader


def truncate_metrics_log(log: Path, global_step: int) -> None:
    """Drop records an interrupted run wrote after its checkpoint at ``global_step`` (they are written again)."""
    if log.is_file():
        kept = [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= global_step]
        log.write_text("".join(line + "\n" for line in kept))


def append_metrics(log: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to the figures log."""
    with log.open("a") as file:
        file.write(json.dumps(record) + "\n")


def load_resumable(location: str | Path, *, stage: str, global_batch_size: int) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to resume from at ``location`` and its contents, checked for this stage and global batch.

    Raises:
        CheckpointError: no checkpoint there, another stage's, or another number of items per step.
    """
    path = find_checkpoint(location)
    state = load_checkpoint(path)
    if state.get("stage") != stage:
        raise CheckpointError(f"{path}: a {state.get('stage')!r} checkpoint, not a {stage!r} one; pass this stage's run")
    if state["global_batch_size"] != global_batch_size:
        raise CheckpointError(
            f"{path}: written with {state['global_batch_size']} items per step (batch size × processes), this "
            f"run has {global_batch_size}; resume with the same batch size and number of processes"
        )
    return path, state


def write_checkpoint(
    context: DistributedContext,
    output: Path,
    position: LoopPosition,
    state: Callable[[], dict[str, Any]],
) -> Path | None:
    """Rank 0 writes ``state()`` + position + RNG states to ``OUT/checkpoints/step_<N>.pt``; every rank waits.

    Returns the file written (None on other ranks).
    """
    path = None
    if context.is_main:
        contents = {**state(), "position": position.as_dict(), "rng": capture_rng_state()}
        path = save_checkpoint(output / CHECKPOINTS_DIR / f"step_{position.global_step:08d}.pt", contents)
    context.barrier()  # no rank runs ahead of a checkpoint being written
    return path


@dataclass
class LoopPosition:
    """Where a run stands: epochs completed, steps into the current epoch, optimiser steps in total."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step}

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> LoopPosition:
        return cls(int(values["epoch"]), int(values["step_in_epoch"]), int(values["global_step"]))


def restore_position(path: Path, state: dict[str, Any], context: DistributedContext, output: Path) -> LoopPosition:
    """The last step of a resumed run: the checkpoint's position and RNG states, the figures log cut back to it."""
    position = LoopPosition.from_dict(state["position"])
    restore_rng_state(state["rng"])
    if context.is_main:
        truncate_metrics_log(output / METRICS_LOG, position.global_step)
    logger.info(
        "resumed from %s at step %d (epoch %d, step %d)",
        path, position.global_step, position.epoch, position.step_in_epoch,
    )  # fmt: skip
    return position


def run_steps(
    *,
    loader: DataLoader,
    sampler: GlobalBatchSampler,
    position: LoopPosition,
    epochs: int | None,
    max_steps: int | None,
    step: Callable[[Any], None],
    end_epoch: Callable[[], None],
    save: Callable[[], None],
    checkpoint_every: int | None,
    progress: bool,
    description: str,
) -> None:
    """Walk the epochs from ``position`` until ``epochs`` or ``max_steps`` (whichever comes first).

    ``step(batch)`` runs one optimiser step (``position`` already counts it when it is
    called: ``global_step`` is the step's 1-based number); ``end_epoch()`` runs after an
    epoch's last step (schedulers), before the checkpoint of that epoch; ``save()`` writes a
    checkpoint (after every epoch, every ``checkpoint_every`` steps and at the end).
    """
    from tqdm.auto import tqdm

    def finished() -> bool:
        return (max_steps is not None and position.global_step >= max_steps) or (
            epochs is not None and position.epoch >= epochs
        )

    steps_per_epoch = sampler.steps_per_epoch
    bar = tqdm(total=planned_steps(epochs, max_steps, steps_per_epoch), initial=position.global_step, desc=description, unit="step", disable=not progress)
    saved_at = position.global_step
    with bar:
        while not finished():
            sampler.set_position(position.epoch, position.step_in_epoch)
            for batch in loader:
                position.global_step += 1
                position.step_in_epoch += 1
                step(batch)
                bar.update(1)
                epoch_ended = position.step_in_epoch == steps_per_epoch
                if epoch_ended:
                    end_epoch()
                    position.epoch, position.step_in_epoch = position.epoch + 1, 0
                if epoch_ended or (checkpoint_every and position.global_step % checkpoint_every == 0) or finished():
                    save()
                    saved_at = position.global_step
                if finished():
                    break
    if saved_at != position.global_step:
        save()


def planned_steps(epochs: int | None, max_steps: int | None, steps_per_epoch: int) -> int:
    """Steps a run of ``epochs`` / ``max_steps`` makes (whichever limit comes first)."""
    by_epochs = None if epochs is None else epochs * steps_per_epoch
    return min(steps for steps in (by_epochs, max_steps) if steps is not None)
