"""iterate_ahead: order, bounded look-ahead, errors reach the consumer, early stops end the thread; the pipeline overlaps."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tavce import TalkingHeadPipeline
from tavce.background import iterate_ahead

WAIT_SECONDS = 20


def _threads_named(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_items_arrive_in_order_and_the_producer_stays_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def numbers():
        for number in range(20):
            produced.append(number)
            yield number

    received = []
    for number in iterate_ahead(numbers(), depth=3, name="test-order"):
        # Finished and queued: at most 3; one more may be computed and waiting to be queued.
        assert len(produced) <= number + 1 + 3 + 1
        received.append(number)
    assert received == list(range(20))
    assert not _threads_named("test-order")


def test_an_error_in_the_producer_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def failing():
        yield 1
        raise KeyError("broken batch")

    received = []
    with pytest.raises(KeyError, match="broken batch"):
        for item in iterate_ahead(failing(), name="test-error"):
            received.append(item)
    assert received == [1] and not _threads_named("test-error")


def test_stopping_early_stops_the_producer_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless():
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    for number in iterate_ahead(endless(), depth=1, name="test-stop"):
        if number == 2:
            break
    assert closed.is_set() and not _threads_named("test-stop")
    with pytest.raises(ValueError, match="depth"):
        next(iterate_ahead(iter([]), depth=0))


def _recording(pipe: TalkingHeadPipeline, monkeypatch: pytest.MonkeyPatch) -> tuple[list[threading.Thread], list[bool]]:
    """Record the thread of every render call, and whether batch 1 started while batch 0 was pasted back."""
    render, restore = pipe.renderer.render, pipe.preprocessor.restore_frames
    render_threads: list[threading.Thread] = []
    second_batch_started = threading.Event()
    overlapped: list[bool] = []

    def recording_render(state, coefficients, start, stop, relationship):
        render_threads.append(threading.current_thread())
        if start == 1:
            second_batch_started.set()
        return render(state, coefficients, start, stop, relationship)

    def waiting_restore(frames, source):
        if not overlapped:  # the first batch: without overlap the second one cannot start before this returns
            overlapped.append(second_batch_started.wait(WAIT_SECONDS if render_threads[0].name == "tavce-render" else 0))
        return restore(frames, source)

    monkeypatch.setattr(pipe.renderer, "render", recording_render)
    monkeypatch.setattr(pipe.preprocessor, "restore_frames", waiting_restore)
    return render_threads, overlapped


def test_with_an_enhancer_the_pipeline_renders_the_next_batch_while_the_last_one_is_enhanced(
    tiny_weights: Path, portrait, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import speech_like
    from tests.models.test_enhancer import small_enhancer

    pipe = TalkingHeadPipeline(**{**TalkingHeadPipeline.from_pretrained(tiny_weights).components, "enhancer": small_enhancer(1)})
    photo, box = portrait
    result = pipe(photo, speech_like(0.2), face_box=box, seed=0, batch_size=1, progress=False)
    expected = list(result.frames)
    render_threads, overlapped = _recording(pipe, monkeypatch)
    frames = list(result.frames)
    assert overlapped == [True]
    assert {thread.name for thread in render_threads} == {"tavce-render"}
    assert len(frames) == len(expected) and all((a == b).all() for a, b in zip(frames, expected))


def test_on_a_cpu_without_an_enhancer_the_pipeline_renders_in_the_calling_thread(
    tiny_weights: Path, portrait, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import speech_like

    # A second thread running OpenMP regions slows every region down on a CPU (libgomp's workers sleep
    # between them), and pasting a crop back leaves nothing to overlap.
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights)
    photo, box = portrait
    result = pipe(photo, speech_like(0.2), face_box=box, seed=0, batch_size=1, progress=False)
    expected = list(result.frames)
    render_threads, overlapped = _recording(pipe, monkeypatch)
    frames = list(result.frames)
    assert set(render_threads) == {threading.main_thread()} and len(render_threads) == result.num_frames
    assert overlapped == [False]
    assert len(frames) == len(expected) and all((a == b).all() for a, b in zip(frames, expected))


def test_stopping_the_frames_early_leaves_the_callers_inference_mode_alone(tiny_weights: Path, portrait, speech) -> None:
    import torch

    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights)
    photo, box = portrait
    result = pipe(photo, speech, face_box=box, seed=0, batch_size=1, progress=False)
    with torch.inference_mode():
        frames = result.frames
        next(frames)
        frames.close()  # closes the render generator from this thread
        assert torch.is_inference_mode_enabled()
    frames = result.frames
    next(frames)
    frames.close()
    assert not torch.is_inference_mode_enabled()
