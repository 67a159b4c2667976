"""Handing the memory a finished stage freed back to the operating system.

glibc keeps freed heap memory for reuse, and after a large buffer is freed it raises its
threshold for mapping buffers of their own, so the next ones of that size come from the
heap too. Planning a long clip encodes its audio batch by batch between small allocations
that outlive the batches, which leaves tens of MiB of free pages inside the heap: without
a trim they stay resident through the whole render and count in every later peak.

Each thread that allocates also gets a heap ("arena") of its own, up to eight per core:
the background thread that renders ahead of the video writer (on a GPU, or with the
enhancer) then builds its working set
in a fresh arena instead of reusing the pages the main thread's arena already holds, and
a one-shot generation peaks ~130 MiB higher (bf16, 256², a 2-second clip: 1625 against
1498 MiB; docs/performance.md). Rendering's threads allocate a few large buffers per
operation, so sharing one arena costs no measurable speed; a front-end that owns its
process (``tavce generate``) asks for that with :func:`share_one_heap`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import lru_cache

__all__ = ["release_freed_memory", "share_one_heap"]

_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


@lru_cache(maxsize=2)
def _libc_function(name: str) -> Callable[..., int] | None:
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name, None) if library else None
    except OSError:  # no C library to open by that name (a static or unusual runtime)
        return None


def release_freed_memory() -> None:
    """Return the heap's free pages to the operating system (glibc's ``malloc_trim``).

    A no-op where the C library has no ``malloc_trim`` (macOS, Windows, musl).
    """
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


def share_one_heap() -> bool:
    """Make threads started from now on allocate from the heap the process already has (glibc).

    Process-wide: for a program that owns its process, called before it starts threads.
    Returns False (and changes nothing) where the C library has no ``mallopt`` or refuses.
    """
    mallopt = _libc_function("mallopt")
    return mallopt is not None and mallopt(_M_ARENA_MAX, 1) == 1
