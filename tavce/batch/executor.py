"""The executor interface: run tasks on workers that each set up once, yield outcomes as tasks finish.

A *runner* says what one task is (``setup`` once per worker: load the networks; ``run``
per task). An *executor* says where tasks run: :class:`~tavce.batch.local.LocalExecutor`
(processes on this machine) or :class:`~tavce.batch.ray_executor.RayExecutor` (Ray actors).
Commands choose an executor; they never schedule work themselves.

Both executors give the same guarantees: a task whose ``run`` raises fails alone (its
outcome carries the error); a task whose worker dies (killed, out of memory) is run once
more on another or a restarted worker, then reported failed; the other tasks go on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["MAX_ATTEMPTS", "Executor", "Outcome", "Task", "TaskRunner", "execute", "limit_threads", "worker_lost"]

MAX_ATTEMPTS = 2
"""Runs of a task whose worker died: the first and one retry."""


@dataclass(frozen=True)
class Task:
    """One unit of work: ``key`` names it in its :class:`Outcome`; ``payload`` is what ``runner.run`` gets (picklable)."""

    key: str
    payload: Any


@dataclass(frozen=True)
class Outcome:
    """What became of one task.

    Attributes:
        key: the task's key.
        value: what ``runner.run`` returned (None when it failed).
        error_type: class name of the error (``FaceNotDetectedError``, ``WorkerDied``), None when it succeeded.
        error: the error's message.
        worker: which worker ran it last (e.g. ``local-1 pid 4242``, ``ray 1a2b3c4d@10.0.0.5 pid 77``).
        seconds: wall time of its last run.
        attempts: runs it took (2 when its first worker died).
    """

    key: str
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    worker: str = ""
    seconds: float = 0.0
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error_type is None


@runtime_checkable
class TaskRunner(Protocol):
    """What a task is; pickled to every worker.

    ``setup(device)`` runs once per worker before its first task (load the networks there, not in
    ``__init__``, so nothing heavy is pickled); ``device`` is the device the executor assigns to the
    worker (``"cuda:1"``) or None to let the runner choose. ``run(payload)`` does one task and returns
    a picklable value; an exception fails that task only.
    """

    def setup(self, device: str | None) -> None: ...

    def run(self, payload: Any) -> Any: ...


@runtime_checkable
class Executor(Protocol):
    """Runs tasks on workers; ``map`` yields one :class:`Outcome` per task, in the order they finish.

    Workers are started by ``map`` (not before) and stopped when it ends or is closed. Errors of
    ``runner.setup`` (e.g. weights not found) are raised by ``map``: no task could run.
    """

    def map(self, runner: TaskRunner, tasks: Iterable[Task]) -> Iterator[Outcome]: ...


def execute(runner: TaskRunner, task: Task, worker: str, attempts: int = 1) -> Outcome:
    """Run one task in a worker, turning an exception into a failed outcome."""
    started = time.perf_counter()
    try:
        value = runner.run(task.payload)
    except Exception as error:  # one bad task must not stop its worker; its outcome says why
        return Outcome(task.key, None, type(error).__name__, str(error), worker, time.perf_counter() - started, attempts)
    return Outcome(task.key, value, None, None, worker, time.perf_counter() - started, attempts)


def worker_lost(task: Task, worker: str, attempts: int, reason: str) -> Outcome:
    """The failed outcome of a task whose worker died on every attempt."""
    return Outcome(
        task.key,
        error_type="WorkerDied",
        error=f"the worker running it died ({reason}) on each of {attempts} attempts; "
        "out of memory? try fewer workers or a smaller batch_size",
        worker=worker,
        attempts=attempts,
    )


def limit_threads(threads: int) -> None:
    """Give a worker ``threads`` CPU threads, so workers sharing a machine do not oversubscribe it."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when it is first imported
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
