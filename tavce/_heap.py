"""Handing the memory a finished stage freed back to the operating system.

glibc keeps freed heap memory for reuse, and after a large buffer is freed it raises its
threshold for mapping buffers of their own, so the next ones of that size come from the
heap too. Planning a long clip encodes its audio batch by batch between small allocations
that outlive the batches, which leaves tens of MiB of free pages inside the heap: without
a trim they stay resident through the whole render and count in every later peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import lru_cache

__all__ = ["release_freed_memory"]


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:  # no C library to open by that name (a static or unusual runtime)
        return None


def release_freed_memory() -> None:
    """Return the heap's free pages to the operating system (glibc's ``malloc_trim``).

    A no-op where the C library has no ``malloc_trim`` (macOS, Windows, musl).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
