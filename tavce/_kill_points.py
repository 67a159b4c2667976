"""Test hook: the process kills itself (SIGKILL) at a named phase, to prove that every phase recovers.

``TAVCE_TEST_KILL_AT=<phase>`` kills the process the first time the code reaches
``kill_point("<phase>")``; ``<phase>@<n>`` the n-th time (in this process). Without the
variable a kill point costs one dictionary lookup. Phases:

* ``prepare-data:frame``: a working crop written into the video's partial folder;
* ``prepare-data:annotations``: the annotations written, ``meta.json`` (the completion mark) not yet;
* ``prepare-data:manifest``: a video's manifest line written and flushed;
* ``generate:encode``: a frame handed to the encoder (the video is half-encoded).
* ``batch:record``: a finished job's line written to ``results.jsonl`` (the others not yet done);
* ``train:step``: a training step taken (forward, backward, optimiser update) and its figures
  logged, its checkpoint not yet written (``tavce train tavc`` and ``tavce train renderer``);
* ``train:checkpoint``: a training checkpoint written to its temporary name, not yet renamed;
* ``train:latest``: a checkpoint renamed into place, ``checkpoints/latest`` still naming the previous one.

Used by tests/reliability/test_kill_points.py; not part of the public API.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["KILL_AT_VARIABLE", "kill_point"]

KILL_AT_VARIABLE = "TAVCE_TEST_KILL_AT"

_reached: Counter[str] = Counter()


def kill_point(phase: str) -> None:
    """SIGKILL this process if ``TAVCE_TEST_KILL_AT`` names ``phase`` (and its count is reached)."""
    wanted = os.environ.get(KILL_AT_VARIABLE)
    if not wanted:
        return
    name, _, count = wanted.partition("@")
    if name != phase:
        return
    _reached[phase] += 1
    if _reached[phase] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
