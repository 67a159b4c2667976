"""``results.jsonl``: the record of a batch, one JSON object a line, the last line per output wins.

Each line holds the job's inputs and options, ``status`` (``ok`` / ``failed``), the error's
type and message, the frame count, the seconds it took, the worker that ran it and the
job's ``key`` (hash of the input files' contents, options and weights). A rerun skips the
jobs whose line says ``ok`` with the same key and whose video is still there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

__all__ = ["RESULTS_NAME", "ResultsLog"]

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.jsonl"


class ResultsLog:
    """The results file of the output folder ``out``; :meth:`append` records a job as it finishes."""

    def __init__(self, out: Path) -> None:
        self.path = out / RESULTS_NAME
        self._file: TextIO | None = None

    def read(self) -> dict[str, dict[str, Any]]:
        """Output name -> its latest record (unreadable lines are ignored with a warning)."""
        records: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return records
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records[record["output"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("%s line %d: unreadable (a run killed while writing it?); ignored", self.path, number)
        return records

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace the file by ``records`` (one line each), atomically."""
        temporary = self.path.with_name(f".{RESULTS_NAME}.tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        os.replace(temporary, self.path)

    def append(self, record: dict[str, Any]) -> None:
        """Add one line and flush it, so a finished job is on record even if the run is killed next."""
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
