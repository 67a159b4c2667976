"""Writing files that either appear whole or not at all, and saying so when the disk is full.

A full disk shows up differently in every writer: an ``OSError`` with ``ENOSPC`` from
Python, "os error 28" inside a safetensors error, a bare ``RuntimeError`` from
``torch.save`` (its C++ writer drops the errno), "No space left on device" in ffmpeg's
log, an empty ``LibsndfileError``. :func:`lacks_space` recognises all of them (by errno,
by message, or by the free space left next to what was being written) and
:func:`out_of_space_error` turns them into one :class:`~tavce.errors.OutputError` line
naming the file, the free space and the space needed where known. The same is done for
the process's file-size limit (``ulimit -f``, ``EFBIG``), which fails writes the same way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tavce.errors import OutputError

__all__ = ["LOW_SPACE_BYTES", "lacks_space", "out_of_space_error", "reporting_full_disk", "write_atomically"]

LOW_SPACE_BYTES = 1 << 20
"""A write that fails with less than this free beside it is taken for a full disk when no better sign exists."""

_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_MESSAGES = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122")
_LIMIT_MESSAGES = ("file too large", "os error 27")

DEFAULT_NEXT_STEP = "run the same command again"


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _free_bytes(folder: Path) -> int | None:
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _file_size_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _hits_file_size_limit(error: BaseException | str | None, needed: int | None) -> bool:
    limit = _file_size_limit()
    if limit is None:
        return False
    if needed is not None and needed > limit:
        return True
    texts = [error] if isinstance(error, str) else [str(e) for e in _chain(error)]
    errnos = [] if isinstance(error, str) else [getattr(e, "errno", None) for e in _chain(error)]
    return errno.EFBIG in errnos or any(m in text.lower() for text in texts for m in _LIMIT_MESSAGES)


def lacks_space(error: BaseException | str | None, folder: str | Path, needed: int | None = None) -> bool:
    """Whether a failed write into ``folder`` failed for lack of space.

    Args:
        error: the exception raised by the writer (its causes are searched too), or a writer's log text.
        folder: where the file was being written.
        needed: bytes the write needed, when known: less free space than that is a full disk.
    """
    for link in [] if error is None or isinstance(error, str) else _chain(error):
        if getattr(link, "errno", None) in _SPACE_ERRNOS:
            return True
    texts = [error] if isinstance(error, str) else [str(link) for link in _chain(error)]
    if any(marker in text.lower() for text in texts for marker in (*_FULL_MESSAGES, *_LIMIT_MESSAGES)):
        return True
    if _hits_file_size_limit(error, needed):
        return True
    free = _free_bytes(Path(folder))
    return free is not None and free < (needed if needed is not None else LOW_SPACE_BYTES)


def _size(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GiB"
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{max(count, 0) / 1024:.0f} KiB"


def out_of_space_error(
    path: str | Path,
    error: BaseException | str | None = None,
    *,
    needed: int | None = None,
    then: str = DEFAULT_NEXT_STEP,
) -> OutputError:
    """The one-line :class:`OutputError` for a write of ``path`` that failed for lack of space.

    Args:
        error: what the writer raised or logged (tells a file-size limit from a full disk).
        needed: bytes the write needed, when known.
        then: how to carry on once space is freed (default: run the same command again).
    """
    path = Path(path)
    needs = f", about {_size(needed)} needed" if needed is not None else ""
    if _hits_file_size_limit(error, needed):
        return OutputError(
            f"{path}: the file-size limit of this process was reached (ulimit -f: {_size(_file_size_limit())}"
            f"{needs}); raise the limit (`ulimit -f unlimited`), then {then}"
        )
    free = _free_bytes(path.parent)
    left = f"{_size(free)} free" if free is not None else "free space unknown"
    return OutputError(
        f"{path}: the disk is full (no space left on the device holding {path.parent}: {left}{needs}); "
        f"free some space or write elsewhere, then {then}"
    )


@contextlib.contextmanager
def reporting_full_disk(path: str | Path, *, needed: int | None = None, then: str = DEFAULT_NEXT_STEP) -> Iterator[None]:
    """Turn a failure of the writes inside the block into :func:`out_of_space_error` when it was lack of space.

    Other errors, and :class:`OutputError` s already explained, pass through unchanged.
    """
    try:
        yield
    except OutputError:
        raise
    except Exception as error:
        if lacks_space(error, Path(path).parent, needed):
            raise out_of_space_error(path, error, needed=needed, then=then) from error
        raise


def write_atomically(path: str | Path, data: bytes | str, *, then: str = DEFAULT_NEXT_STEP) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    Raises:
        OutputError: the folder cannot be written, or the disk is full (nothing is left behind).
    """
    path = Path(path)
    content = data.encode() if isinstance(data, str) else data
    try:
        with reporting_full_disk(path, needed=len(content), then=then):
            descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(content)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
    except OutputError:
        raise
    except OSError as error:
        raise OutputError(f"{path}: cannot write it ({error.strerror}); choose a writable folder, then {then}") from error
    return path
