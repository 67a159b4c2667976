"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is one ``torch.save`` file holding only tensors and plain containers
(dicts, lists, tuples, numbers, strings), read back with
``torch.load(weights_only=True)``: loading one never runs code from the file.
Writes go to a temporary file renamed into place, so a crash while saving leaves
the previous checkpoint intact. ``OUT/checkpoints/latest`` names the newest one.

RNG states saved and restored: torch (CPU and every CUDA device), NumPy's global
generator and Python's ``random``. The data order itself is a function of (seed,
epoch, step) (:mod:`tavce.training.sampler`), so the position is enough to restore it.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from tavce._kill_points import kill_point
from tavce._writes import reporting_full_disk, write_atomically
from tavce.errors import CheckpointError
from tavce.hub import torch_load_weights_only

__all__ = [
    "CHECKPOINT_FORMAT",
    "LATEST_NAME",
    "capture_rng_state",
    "find_checkpoint",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "tavce-training-checkpoint/1"
_RESUME = "continue the run with --resume (from the last complete checkpoint)"
LATEST_NAME = "latest"
"""File in the checkpoints folder holding the newest checkpoint's file name."""


def capture_rng_state() -> dict[str, Any]:
    """Every global random generator's state, in weights_only-loadable form."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(cast(np.ndarray, keys).astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state` (CUDA states only if as many devices are visible)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: str | Path, state: dict[str, Any], *, update_latest: bool = True) -> Path:
    """Write ``state`` (plus the format tag) atomically and point ``latest`` at it (unless ``update_latest`` is off).

    Raises:
        OutputError: the disk is full (the message gives the space needed); the previous
            checkpoint and ``latest`` are untouched and no partial file is left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with reporting_full_disk(path, needed=_stored_bytes(state), then=_RESUME):
        try:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, partial)
        except BaseException:
            partial.unlink(missing_ok=True)  # a torn file would hold the space the next try needs
            raise
    kill_point("train:checkpoint")
    os.replace(partial, path)
    if not update_latest:
        return path
    kill_point("train:latest")
    write_atomically(path.parent / LATEST_NAME, path.name + "\n", then=_RESUME)
    logger.info("checkpoint written: %s", path)
    return path


def _stored_bytes(value: Any) -> int:
    """Bytes of the tensors in a nested container (what torch.save writes, give or take the pickle)."""
    if isinstance(value, torch.Tensor):
        return value.untyped_storage().nbytes()
    if isinstance(value, dict):
        return sum(_stored_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_stored_bytes(item) for item in value)
    return 0


def find_checkpoint(location: str | Path) -> Path:
    """A checkpoint file, or the newest one of a run folder (``OUT``) or checkpoints folder.

    Raises:
        CheckpointError: nothing to resume from at ``location``.
    """
    location = Path(location)
    if location.is_file():
        return location
    for folder in (location / "checkpoints", location):
        latest = folder / LATEST_NAME
        if latest.is_file():
            found = folder / latest.read_text().strip()
            if found.is_file():
                return found
            raise CheckpointError(
                f"{latest}: names {found.name}, which does not exist; pass a checkpoint file from {folder} to --resume"
            )
    raise CheckpointError(
        f"{location}: no checkpoint to resume from (expected a checkpoint file, or a run folder with "
        f"checkpoints/{LATEST_NAME}); start without --resume or pass the file"
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and containers only).

    Raises:
        CheckpointError: missing, unreadable, unsafe, or not a tavce training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; check the path given to --resume")
    state = torch_load_weights_only(
        path,
        CheckpointError,
        unsafe_fix="It was not written by a tavce trainer.",
        corrupt_fix="the file is truncated or corrupt, resume from an earlier checkpoint in the same folder",
    )
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path}: not a tavce training checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r}); "
            "to start from trained weights instead, pass them as initialisation, not --resume"
        )
    return state
