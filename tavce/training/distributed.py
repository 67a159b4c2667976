"""One process of a training run: single-process, or one rank of a ``torchrun`` job.

``torchrun`` (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; when they are present the process group is initialised with NCCL on
GPUs and gloo on CPUs, and each rank uses GPU ``LOCAL_RANK``. Without them the run is
a plain single process and nothing is initialised, so the same trainer code runs
unchanged either way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from tavce.device import resolve_device
from tavce.errors import InvalidArgumentError

__all__ = ["MIXED_PRECISION_CHOICES", "DistributedContext", "autocast_dtype", "resolve_device"]

logger = logging.getLogger(__name__)


_AUTOCAST_DTYPES = {
    "float32": None,
    "off": None,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
MIXED_PRECISION_CHOICES = (None, "auto", *_AUTOCAST_DTYPES)
"""Accepted ``mixed_precision`` settings: None (automatic; ``"auto"`` on the command line), torch's dtype
names ``float32`` (off), ``float16``, ``bfloat16``, and the aliases ``off``, ``fp16``, ``bf16``."""


def autocast_dtype(mode: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a ``mixed_precision`` setting: automatic → float16 on CUDA, none (float32) on CPU.

    Raises:
        InvalidArgumentError: a setting not in :data:`MIXED_PRECISION_CHOICES`.
    """
    if mode is None or mode == "auto":
        return torch.float16 if device.type == "cuda" else None
    if mode not in _AUTOCAST_DTYPES:
        raise InvalidArgumentError(
            f"mixed_precision={mode!r}: choose None (automatic), float32, float16 or bfloat16 (or off, fp16, bf16)"
        )
    return _AUTOCAST_DTYPES[mode]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes (1 in a single process).
        local_rank: rank on this machine, which picks the GPU.
        device: the device this process trains on.
        initialised: whether this context initialised a process group (and must destroy it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialised: bool

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, shows the progress bar and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device: str | None = None) -> DistributedContext:
        """Read torchrun's variables and initialise the process group if the job has several ranks."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        resolved = resolve_device(device, local_rank)
        if world_size == 1:
            return cls(rank=0, world_size=1, local_rank=0, device=resolved, initialised=False)
        if resolved.type == "cuda":
            if resolved.index is not None and resolved.index >= torch.cuda.device_count():
                raise InvalidArgumentError(
                    f"rank {rank}: device {resolved} does not exist ({torch.cuda.device_count()} GPU(s) visible); "
                    "start at most one process per GPU (torchrun --nproc_per_node)"
                )
            torch.cuda.set_device(resolved)
        initialised = False
        if not dist.is_initialized():
            backend = "nccl" if resolved.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            initialised = True
            logger.info("rank %d of %d: process group initialised (%s) on %s", rank, world_size, backend, resolved)
        return cls(rank=rank, world_size=world_size, local_rank=local_rank, device=resolved, initialised=initialised)

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.initialised and dist.is_initialized():
            dist.destroy_process_group()
