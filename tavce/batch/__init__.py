"""Many videos on many workers: ``tavce batch`` and the executors shared with ``prepare-data`` and ``evaluate``.

* :mod:`~tavce.batch.jobs`: the job file (CSV / JSON lines) and its validation.
* :mod:`~tavce.batch.results`: ``results.jsonl``, the record a rerun resumes from.
* :mod:`~tavce.batch.executor`: the executor interface (:class:`Executor`, :class:`TaskRunner`).
* :mod:`~tavce.batch.local`: :class:`LocalExecutor`, processes on this machine.
* :mod:`~tavce.batch.ray_executor`: :class:`RayExecutor`, Ray actors (optional extra ``tavce[ray]``).
* :mod:`~tavce.batch.worker`: the generation runner (a pipeline loaded once per worker).
* :mod:`~tavce.batch.run`: :func:`run_batch`.

See docs/batch.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from tavce.batch.executor import Executor, Outcome, Task, TaskRunner
from tavce.batch.local import LocalExecutor
from tavce.batch.ray_executor import RayExecutor

# The job and run modules need torch (through the options): imported on first access, so worker
# processes running other tasks (prepare-data, evaluate) do not pay for them.
_LAZY = {"BatchJob": "tavce.batch.jobs", "BatchReport": "tavce.batch.run", "run_batch": "tavce.batch.run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tavce.batch' has no attribute {name!r}")


__all__ = [
    "BatchJob",
    "BatchReport",
    "Executor",
    "LocalExecutor",
    "Outcome",
    "RayExecutor",
    "Task",
    "TaskRunner",
    "run_batch",
]
