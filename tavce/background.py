"""Run an iterator in a background thread, a bounded number of items ahead of its consumer.

The pipeline renders frames this way on a GPU, and on a CPU when an enhancer runs: while
the caller pastes batch k back into the photo (and enhances it) and hands it to the video
encoder, the renderer already computes batch k + 1 (on a GPU the device is never idle
waiting for the CPU side). PyTorch kernels, numpy/OpenCV and pipe
writes release the GIL, so a thread is enough. At most ``depth`` finished items wait in the
queue, so memory stays bounded whatever the clip's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["iterate_ahead"]

Item = TypeVar("Item")

_POLL_SECONDS = 0.1
_FINISHED = object()


class _Failure:
    """An exception raised by the producer, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def iterate_ahead(items: Iterator[Item], depth: int = 2, name: str = "tavce-background") -> Iterator[Item]:
    """Yield what ``items`` yields, computed in a background thread up to ``depth`` items ahead.

    An exception raised by ``items`` is raised here, in the consumer, with its traceback.
    When the consumer stops early (``break``, an error while handling an item, closing the
    returned generator) the producer is told to stop, finishes the item it is computing,
    and is joined; ``items`` is then closed, so its ``finally`` blocks run.

    Args:
        items: the iterator to run in the background (its code runs in the background thread:
            thread-local state such as ``torch.inference_mode`` must be entered inside it).
        depth: how many finished items may wait for the consumer (≥ 1).
        name: the thread's name (shows in debuggers and ``threading.enumerate()``).
    """
    if depth < 1:
        raise ValueError(f"iterate_ahead: depth must be at least 1, got {depth}")
    finished: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def deliver(item: object) -> bool:
        """Put ``item`` in the queue unless the consumer has stopped; False when it has."""
        while not stop.is_set():
            try:
                finished.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not deliver(item):
                    return
        except BaseException as error:  # everything reaches the consumer, KeyboardInterrupt included
            deliver(_Failure(error))
            return
        deliver(_FINISHED)

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            item = finished.get()
            if item is _FINISHED:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        producer.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
