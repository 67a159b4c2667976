"""Batch jobs: read a CSV / JSON-lines job file, validate each row, and place its output inside OUT.

A row names an ``image``, an ``audio`` and optionally an ``output`` (a file name inside
OUT); every other column is a per-call option of the pipeline, validated by
:meth:`tavce.options.GenerationOptions.from_mapping` (the validator of every front-end).
A bad row is refused alone: it becomes a :class:`RefusedJob` with the reason, and the
other rows still run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tavce.errors import InvalidArgumentError
from tavce.options import GenerationOptions

__all__ = [
    "BatchJob",
    "JOB_COLUMNS",
    "PlannedJob",
    "RefusedJob",
    "output_inside",
    "plan_jobs",
    "read_job_file",
]

JOB_COLUMNS = ("image", "audio", "output")
"""The batch's own columns; every other column is a per-call option."""

_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10))}
_RESERVED_NAMES = {"results.jsonl"}


@dataclass(frozen=True)
class BatchJob:
    """One video to generate: ``image`` + ``audio`` -> ``output`` (a name inside OUT), with per-call ``options``.

    ``output`` defaults to ``<image stem>-<audio stem>.mp4``; ``options`` are names and values of
    :class:`~tavce.options.GenerationOptions` (strings are converted, as in a job file).
    """

    image: str | Path
    audio: str | Path
    output: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BatchJob:
        """A job from a mapping with ``image``, ``audio``, optional ``output`` and option names."""
        missing = [name for name in ("image", "audio") if not str(row.get(name) or "").strip()]
        if missing:
            raise InvalidArgumentError(f"no {' and no '.join(missing)}: every job needs an image and an audio column")
        output = row.get("output")
        return cls(
            image=str(row["image"]).strip(),
            audio=str(row["audio"]).strip(),
            output=str(output).strip() if output not in (None, "") else None,
            options={name: value for name, value in row.items() if name not in JOB_COLUMNS},
        )


@dataclass(frozen=True)
class PlannedJob:
    """A valid job, ready to run.

    Attributes:
        where: where it came from, for messages (``jobs.csv row 3``).
        image, audio: absolute input paths.
        output: its name inside OUT (``/``-separated).
        options: the row's option values, as given (validated; a worker validates them again).
        key: hash of the input files' contents, the validated options and the pipeline's identity;
            a rerun skips the job when ``results.jsonl`` records this key as done.
    """

    where: str
    image: Path
    audio: Path
    output: str
    options: dict[str, Any]
    key: str


@dataclass(frozen=True)
class RefusedJob:
    """A row that cannot run; ``error`` says why (``error_type`` is the error's class name)."""

    where: str
    output: str | None
    row: dict[str, Any]
    error_type: str
    error: str


def read_job_file(path: str | Path) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """The rows of a ``.csv`` (header row) or ``.jsonl`` (one JSON object a line) job file.

    Returns:
        ``(where, row, problem)`` per row: ``where`` is ``"<file> row <n>"`` (n counts jobs from 1);
        ``row`` is None and ``problem`` says why when the row cannot be read (malformed JSON).

    Raises:
        InvalidArgumentError: the file is missing, of another kind, or holds no jobs.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: job file not found; give a .csv or .jsonl file, one job per row")
    suffix = path.suffix.lower()
    rows: list[tuple[str, dict[str, Any] | None, str | None]] = []
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            for number, row in enumerate(reader, start=1):
                where = f"{path} row {number}"
                if None in row:
                    rows.append((where, None, "more cells than the header has columns (quote values with commas)"))
                else:
                    rows.append((where, {name.strip(): value for name, value in row.items()}, None))
    elif suffix in (".jsonl", ".ndjson"):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            where = f"{path} row {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                rows.append((where, None, f"not JSON ({error.msg})"))
                continue
            if isinstance(row, dict):
                rows.append((where, row, None))
            else:
                rows.append((where, None, "expected a JSON object {\"image\": ..., \"audio\": ...}"))
    else:
        raise InvalidArgumentError(f"{path}: job files are .csv (with a header row) or .jsonl (a JSON object a line)")
    if not rows:
        raise InvalidArgumentError(f"{path}: no jobs in the file")
    return rows


def output_inside(out: Path, name: str) -> Path:
    """The path of output ``name`` inside the folder ``out``.

    Raises:
        InvalidArgumentError: an absolute name, ``..``, a NUL byte, a reserved name, not ``.mp4``, or a
            path that leads outside ``out`` through a symbolic link.
    """
    if "\x00" in name or "\\" in name:
        raise InvalidArgumentError(f"output {name!r}: NUL bytes and backslashes are not allowed; use a plain file name")
    relative = PurePosixPath(name)
    if relative.is_absolute() or name.startswith("~") or (len(name) > 1 and name[1] == ":"):
        raise InvalidArgumentError(f"output {name!r}: must be a name inside the output folder, not an absolute path")
    parts = relative.parts
    if not parts or any(part in ("..", ".") for part in parts):
        raise InvalidArgumentError(f"output {name!r}: '..' and '.' are not allowed; the output stays inside OUT")
    for part in parts:
        if part.startswith(".") or part.split(".")[0].lower() in _WINDOWS_RESERVED:
            raise InvalidArgumentError(f"output {name!r}: {part!r} is a reserved or hidden name; choose another")
    if name.lower() in _RESERVED_NAMES:
        raise InvalidArgumentError(f"output {name!r}: the batch's own log; choose another name")
    if relative.suffix.lower() != ".mp4":
        raise InvalidArgumentError(f"output {name!r}: must end in .mp4")
    root = out.resolve()
    path = (out / relative).resolve()  # follows any symbolic link already in OUT
    if root not in path.parents:
        raise InvalidArgumentError(f"output {name!r}: leads outside {out} (through a symbolic link); choose another name")
    return path


def plan_jobs(
    jobs: Iterable[BatchJob | Mapping[str, Any] | tuple[str, Mapping[str, Any] | None, str | None]],
    out: Path,
    *,
    base: Path,
    pipeline_identity: str,
) -> list[PlannedJob | RefusedJob]:
    """Validate every job; relative input paths resolve against ``base`` (the job file's folder).

    Each job is a :class:`BatchJob`, a mapping (a row), or a ``(where, row, problem)`` triple
    from :func:`read_job_file`. Returns one :class:`PlannedJob` or :class:`RefusedJob` per job,
    in order; two jobs writing the same output: the later is refused.
    """
    planned: list[PlannedJob | RefusedJob] = []
    taken: dict[str, str] = {}
    digests: dict[Path, str] = {}
    for number, job in enumerate(jobs, start=1):
        where, row, problem = job if isinstance(job, tuple) else (f"job {number}", job, None)
        shown = _as_row(row) if row is not None else {}
        if problem is not None or row is None:
            planned.append(RefusedJob(where, None, shown, "InvalidArgumentError", f"{where}: {problem}"))
            continue
        try:
            batch_job = row if isinstance(row, BatchJob) else BatchJob.from_row(row)
        except InvalidArgumentError as error:
            planned.append(RefusedJob(where, None, shown, "InvalidArgumentError", f"{where}: {error}"))
            continue
        output = batch_job.output or f"{Path(batch_job.image).stem}-{Path(batch_job.audio).stem}.mp4"
        try:
            options = GenerationOptions.from_mapping(batch_job.options, where=where)
            output_inside(out, output)
            if output in taken:
                raise InvalidArgumentError(
                    f"output {output!r} is already written by {taken[output]}; give this row its own output name"
                )
            image, audio = (_input_file(base, batch_job.image, "image"), _input_file(base, batch_job.audio, "audio"))
        except InvalidArgumentError as error:
            message = str(error) if str(error).startswith(where) else f"{where}: {error}"
            planned.append(RefusedJob(where, output, shown, type(error).__name__, message))
            continue
        taken[output] = where
        for path in (image, audio):
            if path not in digests:
                digests[path] = _file_digest(path)
        key = _job_key(digests[image], digests[audio], options, pipeline_identity)
        planned.append(PlannedJob(where, image, audio, output, dict(batch_job.options), key))
    return planned


def _as_row(row: BatchJob | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(row, BatchJob):
        return {"image": str(row.image), "audio": str(row.audio), "output": row.output, **row.options}
    return {name: value for name, value in row.items()}


def _input_file(base: Path, name: str | Path, column: str) -> Path:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InvalidArgumentError(f"{column} {path}: file not found (relative paths start at the job file's folder)")
    return path.resolve()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _job_key(image_digest: str, audio_digest: str, options: GenerationOptions, pipeline_identity: str) -> str:
    values = {name: getattr(options, name) for name in GenerationOptions.field_names() if name != "progress"}
    text = json.dumps(
        {"image": image_digest, "audio": audio_digest, "options": values, "pipeline": pipeline_identity},
        sort_keys=True,
        default=_canonical,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _canonical(value: Any) -> Any:
    """JSON form of option values that are not JSON types (tensors, tuples, paths) for the key."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return os.fspath(value) if isinstance(value, os.PathLike) else repr(value)
