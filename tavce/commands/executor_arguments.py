"""The executor options shared by ``tavce batch``, ``prepare-data`` and ``evaluate``: ``--workers``, ``--ray``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tavce.batch.executor import Executor

__all__ = ["LOCAL_RAY", "add_executor_arguments", "executor_from_arguments"]

LOCAL_RAY = "local"
"""The value ``--ray`` takes without an address: start a Ray instance on this machine."""


def add_executor_arguments(parser: argparse.ArgumentParser, *, unit: str, default_workers: str) -> None:
    """Add ``--workers``, ``--ray [ADDRESS]``, ``--gpus-per-worker`` and ``--cpus-per-worker``; ``unit`` is what one task makes."""
    group = parser.add_argument_group("executor (where the work runs)")
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"{unit}s made in parallel, one worker process each, each loading the networks once (default: "
        f"{default_workers}); with --ray: the number of Ray actors (default: as many as the cluster's GPUs, "
        "or CPUs, allow)",
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        default=None,
        metavar="ADDRESS",
        help="run on Ray actors instead of local processes: alone, a Ray instance started on this machine; "
        "with an address (auto, ray://head:10001, HOST:6379), that cluster (needs pip install 'tavce[ray]')",
    )
    group.add_argument(
        "--gpus-per-worker",
        type=float,
        default=None,
        help="with --ray: GPUs each actor reserves; fractions share one (0.5 = two actors per GPU) "
        "(default: 1 when the cluster has GPUs, else CPU actors)",
    )
    group.add_argument(
        "--cpus-per-worker",
        type=int,
        default=1,
        help="with --ray: CPUs each actor reserves, also its torch thread count (default 1)",
    )


def executor_from_arguments(arguments: argparse.Namespace) -> Executor:
    """A ``RayExecutor`` for ``--ray``, else a ``LocalExecutor`` with ``--workers``.

    Raises:
        MissingExtraError: ``--ray`` without Ray installed.
        InvalidArgumentError: a bad worker count or GPU share.
    """
    from tavce.errors import InvalidArgumentError

    if arguments.ray is None:
        if arguments.gpus_per_worker is not None:
            raise InvalidArgumentError("--gpus-per-worker: only with --ray (local workers take one GPU each)")
        from tavce.batch.local import LocalExecutor

        return LocalExecutor(arguments.workers)
    from tavce.batch.ray_executor import RayExecutor

    return RayExecutor(
        None if arguments.ray == LOCAL_RAY else arguments.ray,
        workers=arguments.workers,
        gpus_per_worker=arguments.gpus_per_worker,
        cpus_per_worker=arguments.cpus_per_worker,
    )
