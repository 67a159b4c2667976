"""Reproducible, resumable and rank-independent data order for the trainers.

Two pieces make every batch a pure function of (seed, epoch, step), whatever the
number of processes, loader workers or interruptions:

* :class:`GlobalBatchSampler` shuffles the dataset once per epoch (seeded by
  seed + epoch, as ``DistributedSampler`` does), cuts the order into *global* batches
  of ``batch_size × world_size`` items and gives rank r the r-th slice of each. A
  2-process run therefore sees, at every step, exactly the items of a 1-process run
  with the doubled batch. It can start in the middle of an epoch (resume).
* :class:`SeededItems` draws each item's own random choices (which video of an
  identity, which frames) from a generator seeded by (seed, epoch, index), so the
  items do not depend on which worker process reads them or on the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, DistributedSampler

from tavce.errors import InvalidArgumentError

__all__ = ["GlobalBatchSampler", "SeededItems", "item_seed"]


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one item draw; distinct (seed, epoch, index) give unrelated streams."""
    generator = torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_033 + index) % 2**63)
    return int(torch.randint(2**62, (), generator=generator).item())


class SeededItems(Dataset):
    """Wraps a dataset whose ``__getitem__`` draws from torch's default generator.

    Indexed by ``(epoch, index)`` pairs (what :class:`GlobalBatchSampler` yields): the
    wrapped item is read with the default generator temporarily seeded by
    :func:`item_seed`, then the generator's previous state is restored, so reading an
    item neither depends on nor disturbs the training process's RNG.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, epoch, index))
            return self.dataset[index]


class GlobalBatchSampler(DistributedSampler):
    """``DistributedSampler`` whose ranks share each global batch; yields ``(epoch, index)`` pairs.

    Args:
        dataset: the (unwrapped) dataset, for its length.
        batch_size: items per rank and step.
        num_replicas, rank: the job's world size and this process's rank.
        seed: shuffling seed (the permutation of epoch e uses seed + e).

    Each epoch has ``len(dataset) // (batch_size × num_replicas)`` steps; the last
    incomplete global batch is dropped so that every step has the same size on every rank.
    Call :meth:`set_position` (or ``set_epoch``) before iterating each epoch.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.start_step = 0
        if self.steps_per_epoch == 0:
            raise InvalidArgumentError(
                f"the dataset has {len(dataset)} items per epoch, fewer than one global batch of "  # type: ignore[arg-type]
                f"{batch_size} × {num_replicas} processes; raise the dataset's repeats or lower the batch size"
            )

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.num_replicas

    @property
    def steps_per_epoch(self) -> int:
        return len(self.dataset) // self.global_batch_size  # type: ignore[arg-type]

    def set_position(self, epoch: int, step: int = 0) -> None:
        """Iterate epoch ``epoch`` from step ``step`` (0-based) on."""
        if not 0 <= step <= self.steps_per_epoch:
            raise InvalidArgumentError(f"step {step} is outside epoch of {self.steps_per_epoch} steps")
        self.set_epoch(epoch)
        self.start_step = step

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.start_step = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()  # type: ignore[arg-type]
        size, offset = self.global_batch_size, self.rank * self.batch_size
        for step in range(self.start_step, self.steps_per_epoch):
            start = step * size + offset
            for index in order[start : start + self.batch_size]:
                yield self.epoch, index

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.batch_size
