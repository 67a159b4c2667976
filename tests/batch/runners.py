"""Task runners for the executor tests (importable by worker processes and Ray actors)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


class EchoRunner:
    """Returns its payload doubled; ``"boom"`` raises; ``("kill", marker)`` kills its own worker the first time."""

    def setup(self, device):
        self.pid = os.getpid()

    def run(self, payload):
        if payload == "boom":
            raise ValueError("a bad task")
        if isinstance(payload, tuple) and payload[0] == "kill":
            marker = Path(payload[1])
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return {"pid": os.getpid()}
        if isinstance(payload, tuple) and payload[0] == "always-kill":
            os.kill(os.getpid(), signal.SIGKILL)
        return {"value": payload * 2, "pid": os.getpid()}


class FailingSetupRunner:
    def setup(self, device):
        from tavce.errors import WeightsNotFoundError

        raise WeightsNotFoundError("no weights here")

    def run(self, payload):
        return payload


def check_isolation_and_retry(executor, tmp_path: Path) -> None:
    """The contract of every executor: results as tasks finish, a bad task fails alone, a killed worker's
    task runs once more (on another or a restarted worker), a task that kills every worker fails."""
    from tavce.batch import Task

    marker = tmp_path / "killed-once"
    tasks = [Task(str(n), n) for n in range(3)]
    tasks += [Task("bad", "boom"), Task("killed once", ("kill", str(marker))), Task("always killed", ("always-kill",))]
    outcomes = {outcome.key: outcome for outcome in executor.map(EchoRunner(), tasks)}
    assert set(outcomes) == {task.key for task in tasks}
    assert [outcomes[str(n)].value["value"] for n in range(3)] == [0, 2, 4]
    assert all(outcomes[str(n)].ok and outcomes[str(n)].attempts == 1 for n in range(3))
    assert outcomes["bad"].error_type == "ValueError" and outcomes["bad"].error == "a bad task"
    retried = outcomes["killed once"]
    assert retried.ok and retried.attempts == 2
    assert retried.value["pid"] != int(marker.read_text())  # a new process ran it
    lost = outcomes["always killed"]
    assert not lost.ok and lost.error_type == "WorkerDied" and lost.attempts == 2 and "2 attempts" in lost.error
