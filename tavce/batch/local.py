"""Processes on this machine: :class:`LocalExecutor`, one process per worker, each set up once.

The parent hands each worker one task at a time over its own pipe, so it always knows
which task a worker holds: when a worker dies (its process sentinel fires), exactly
that task is put back once and the worker is replaced.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from tavce.batch.executor import MAX_ATTEMPTS, Outcome, Task, TaskRunner, execute, limit_threads, worker_lost
from tavce.errors import InvalidArgumentError

__all__ = ["LocalExecutor", "default_workers"]

logger = logging.getLogger(__name__)

_READY, _SETUP_FAILED, _DONE = "ready", "setup-failed", "done"


def default_workers() -> int:
    """One worker per visible CUDA GPU, else one."""
    import torch

    return max(1, torch.cuda.device_count())


def _serve(runner: TaskRunner, device: str | None, threads: int, name: str, connection: Connection) -> None:
    """A worker process: set up once, then run the tasks sent until None arrives."""
    limit_threads(threads)
    try:
        runner.setup(device)
    except BaseException as error:  # reported to the parent, which stops the run with it
        connection.send((_SETUP_FAILED, error))
        return
    connection.send((_READY, None))
    while (message := connection.recv()) is not None:
        task, attempts = message
        connection.send((_DONE, execute(runner, task, f"{name} pid {os.getpid()}", attempts)))


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    connection: Connection
    name: str
    task: Task | None = None
    attempts: int = 0


class LocalExecutor:
    """Run tasks in ``workers`` processes on this machine (see :class:`~tavce.batch.executor.Executor`).

    Args:
        workers: processes; default one per visible CUDA GPU, else one.
        devices: the device of each worker in turn (``["cuda:0", "cuda:1"]``); default: worker i gets
            ``cuda:i`` (modulo the GPU count) when GPUs are visible, else the runner chooses.
        threads: torch CPU threads per worker; default the CPU count divided among the workers.
    """

    def __init__(self, workers: int | None = None, *, devices: list[str] | None = None, threads: int | None = None):
        if workers is not None and workers < 1:
            raise InvalidArgumentError(f"workers={workers}: must be at least 1")
        self.workers = workers
        self.devices = devices
        self.threads = threads

    def map(self, runner: TaskRunner, tasks: Iterable[Task]) -> Iterator[Outcome]:
        queue = deque((task, 1) for task in tasks)
        if not queue:
            return
        count = min(self.workers or default_workers(), len(queue))
        devices = self.devices or self._default_devices(count)
        threads = self.threads or max(1, (os.cpu_count() or 1) // count)
        # spawn, not fork: forking after torch started its thread pools can deadlock.
        context = get_context("spawn")

        def start(index: int) -> _Worker:
            parent, child = context.Pipe()
            name = f"local-{index}"
            process = context.Process(
                target=_serve, args=(runner, devices[index % len(devices)], threads, name, child), daemon=True
            )
            process.start()
            child.close()
            return _Worker(index, process, parent, f"{name} pid {process.pid}")

        workers = [start(index) for index in range(count)]
        try:
            while queue or any(worker.task is not None for worker in workers):
                for worker in workers:
                    if worker.task is None and queue:
                        task, attempts = queue.popleft()
                        worker.task, worker.attempts = task, attempts
                        try:
                            worker.connection.send((task, attempts))
                        except OSError:
                            pass  # it died while idle: its sentinel fires below and the task is put back
                busy = [worker for worker in workers if worker.task is not None]
                wait([worker.connection for worker in busy] + [worker.process.sentinel for worker in busy])
                for worker in busy:
                    outcome = self._collect(worker)
                    if outcome is _STILL_RUNNING:
                        continue
                    if outcome is None:  # the worker died holding its task
                        lost, attempts = worker.task, worker.attempts
                        assert lost is not None  # only busy workers are collected
                        reason = f"exit code {worker.process.exitcode}"
                        logger.warning("%s died (%s) running %s", worker.name, reason, lost.key)
                        worker.connection.close()
                        workers[worker.index] = start(worker.index)
                        if attempts < MAX_ATTEMPTS:
                            queue.appendleft((lost, attempts + 1))
                        else:
                            yield worker_lost(lost, worker.name, attempts, reason)
                        continue
                    worker.task = None
                    assert isinstance(outcome, Outcome)
                    yield outcome
        finally:
            for worker in workers:
                _stop(worker)

    @staticmethod
    def _collect(worker: _Worker) -> Outcome | object | None:
        """The worker's finished outcome, _STILL_RUNNING, or None when it died."""
        while worker.connection.poll():
            try:
                kind, value = worker.connection.recv()
            except (EOFError, OSError):
                break
            if kind == _SETUP_FAILED:
                raise value
            if kind == _DONE:
                return value
        if worker.process.is_alive():
            return _STILL_RUNNING
        worker.process.join()
        return None

    @staticmethod
    def _default_devices(count: int) -> list[str | None]:
        import torch

        gpus = torch.cuda.device_count()
        return [f"cuda:{index % gpus}" for index in range(count)] if gpus else [None]


_STILL_RUNNING = object()


def _stop(worker: _Worker) -> None:
    try:
        worker.connection.send(None)
    except (OSError, ValueError):
        pass  # already gone
    worker.process.join(timeout=10)
    if worker.process.is_alive():
        worker.process.terminate()
        worker.process.join()
    worker.connection.close()
