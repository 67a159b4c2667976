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
