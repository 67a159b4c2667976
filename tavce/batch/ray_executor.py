"""Ray actors: :class:`RayExecutor` runs tasks on a local Ray instance or a cluster.

Each actor sets its runner up once (loads the networks) and keeps it; tasks are spread
over the actors by Ray's own :class:`ray.util.ActorPool`. An actor that dies is replaced
by a new one and its task resubmitted once. Ray is the optional extra ``tavce[ray]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tavce._extras import require
from tavce.batch.executor import MAX_ATTEMPTS, Outcome, Task, TaskRunner, execute, limit_threads, worker_lost
from tavce.errors import InvalidArgumentError

__all__ = ["RayExecutor"]

logger = logging.getLogger(__name__)


class _RayWorker:
    """The actor: holds one runner, set up once."""

    def __init__(self, runner: TaskRunner, threads: int) -> None:
        import os

        import ray

        limit_threads(threads)
        self.runner = runner
        context = ray.get_runtime_context()
        self.name = f"ray {(context.get_actor_id() or '')[:8]}@{ray.util.get_node_ip_address()} pid {os.getpid()}"

    def setup(self, device: str | None) -> None:
        self.runner.setup(device)

    def run(self, task: Task, attempts: int) -> Outcome:
        return execute(self.runner, task, self.name, attempts)


class RayExecutor:
    """Run tasks on Ray actors (see :class:`~tavce.batch.executor.Executor`).

    Ray is started by :meth:`map` when it is not already initialised (and shut down after),
    so an executor costs nothing until there is work.

    Args:
        address: a cluster (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.5:6379"``); None starts a
            local instance on this machine.
        workers: actors; default as many as the cluster's GPUs allow (``GPUs / gpus_per_worker``),
            or its CPUs allow (``CPUs / cpus_per_worker``) on a cluster without GPUs.
        gpus_per_worker: GPUs each actor reserves (fractions share a GPU: 0.5 = two per GPU); default
            1 when the cluster has GPUs, else 0 (CPU actors).
        cpus_per_worker: CPUs each actor reserves; also its torch thread count.
        init_options: extra keyword arguments of ``ray.init`` when this executor starts Ray.

    Raises:
        MissingExtraError: Ray is not installed (names ``pip install 'tavce[ray]'``).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        gpus_per_worker: float | None = None,
        cpus_per_worker: int = 1,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        require("ray", "ray")
        if workers is not None and workers < 1:
            raise InvalidArgumentError(f"workers={workers}: must be at least 1")
        if gpus_per_worker is not None and not 0 <= gpus_per_worker:
            raise InvalidArgumentError(f"gpus_per_worker={gpus_per_worker}: must be 0 or more (0.5 shares a GPU)")
        if cpus_per_worker < 1:
            raise InvalidArgumentError(f"cpus_per_worker={cpus_per_worker}: must be at least 1")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.init_options = init_options or {}

    def map(self, runner: TaskRunner, tasks: Iterable[Task]) -> Iterator[Outcome]:
        import ray

        tasks = list(tasks)
        if not tasks:
            return
        started = not ray.is_initialized()
        if started:
            options = {"include_dashboard": False, "logging_level": logging.WARNING, **self.init_options}
            ray.init(address=self.address, **options)
        try:
            yield from self._map(ray, runner, tasks)
        finally:
            if started:
                ray.shutdown()

    def _map(self, ray: Any, runner: TaskRunner, tasks: list[Task]) -> Iterator[Outcome]:
        from ray.util import ActorPool

        resources = ray.cluster_resources()
        gpus = self.gpus_per_worker
        if gpus is None:
            gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        capacity = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / self.cpus_per_worker
        count = min(self.workers or max(1, int(capacity)), len(tasks))
        actor_class = ray.remote(num_cpus=self.cpus_per_worker, num_gpus=gpus, max_restarts=0)(_RayWorker)
        logger.info("%d Ray workers (%s GPU, %d CPU each)", count, gpus, self.cpus_per_worker)

        def new_actor() -> Any:
            actor = actor_class.remote(runner, self.cpus_per_worker)
            actor.setup.remote(None)  # ordered before its first task; an error there surfaces on each task
            return actor

        actors = [actor_class.remote(runner, self.cpus_per_worker) for _ in range(count)]
        try:
            ray.get([actor.setup.remote(None) for actor in actors])
        except ray.exceptions.RayTaskError as error:
            cause = error.as_instanceof_cause()
            raise (cause.cause if getattr(cause, "cause", None) is not None else cause) from None
        pool = ActorPool(actors)
        pending: dict[str, tuple[Any, Task, int]] = {}  # key -> (object ref, task, attempt)

        def submit(task: Task, attempts: int) -> None:
            def call(actor: Any, value: tuple[Task, int]) -> Any:
                reference = actor.run.remote(*value)
                pending[value[0].key] = (reference, *value)
                return reference

            pool.submit(call, (task, attempts))

        for task in tasks:
            submit(task, 1)
        while pending:
            try:
                outcome = pool.get_next_unordered()
            except ray.exceptions.RayActorError:
                # The pool dropped the dead actor without saying which task it held: the failed
                # references among those finished are the ones; each is handled once.
                yield from self._handle_deaths(ray, pending, submit)
                pool.push(new_actor())
                continue
            pending.pop(outcome.key, None)
            yield outcome

    @staticmethod
    def _handle_deaths(ray: Any, pending: dict, submit: Callable[[Task, int], None]) -> Iterator[Outcome]:
        references = [reference for reference, _, _ in pending.values()]
        finished, _ = ray.wait(references, num_returns=len(references), timeout=0)
        for key, (reference, task, attempts) in list(pending.items()):
            if reference not in finished:
                continue
            try:
                ray.get(reference)
            except ray.exceptions.RayActorError as error:
                del pending[key]
                reason = type(error).__name__
                logger.warning("a Ray worker died (%s) running %s", reason, key)
                if attempts < MAX_ATTEMPTS:
                    submit(task, attempts + 1)
                else:
                    yield worker_lost(task, "ray", attempts, reason)
