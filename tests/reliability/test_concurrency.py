"""One pipeline, many callers: threads sharing a TalkingHeadPipeline get exactly the frames they get alone."""

from __future__ import annotations

import json
import pickle
import signal
import threading
import time

import torch

from tavce.models.renderer.fast_conv import DerivedWeights
from tavce.preprocess.landmarks import _DetectorPool
from tavce.testing import tiny_components
from tests.reliability.conftest import run_python


def test_four_threads_sharing_one_pipeline_get_the_sequential_frames(tiny_weights, speech, real_portraits):
    run = run_python(
        "-m", "tests.reliability.concurrent_callers", str(tiny_weights), str(speech), *map(str, real_portraits)
    )
    died = f" (signal {signal.Signals(-run.returncode).name})" if run.returncode < 0 else ""
    assert run.returncode == 0, f"worker exited with {run.returncode}{died}:\n{run.stderr[-3000:]}"
    digests = json.loads(run.stdout.splitlines()[-1])
    sequential = digests["sequential"]
    assert len(set(sequential)) == len(sequential), "the callers' seeds and photos should give different videos"
    for number, threaded in enumerate(digests["rounds"], 1):
        assert threaded == sequential, f"round {number}: threaded frames differ from the sequential run's:\n{run.stderr[-3000:]}"


def _run_together(callers: int, call) -> None:
    start = threading.Barrier(callers)

    def run() -> None:
        start.wait()
        call()

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_detector_pool_lends_each_concurrent_caller_its_own_detector():
    built, in_use, overlaps = [], set(), []
    lock = threading.Lock()

    def build():
        built.append(object())
        return built[-1]

    pool = _DetectorPool(build)

    def detect():
        with pool.borrow() as detector:
            with lock:
                overlaps.append(detector in in_use)
                in_use.add(detector)
            time.sleep(0.05)
            with lock:
                in_use.discard(detector)

    _run_together(4, detect)
    assert not any(overlaps), "a detector was lent to two callers at once"
    assert len(built) == 4
    _run_together(4, detect)
    assert len(built) == 4, "idle detectors are reused, not rebuilt"
    for _ in range(3):
        detect()
    assert len(built) == 4


def test_derived_weights_are_built_once_under_concurrent_first_use():
    cache, builds = DerivedWeights(), []
    source = torch.ones(3)

    def build():
        builds.append(1)
        time.sleep(0.05)
        return (source * 2,)

    results = []
    _run_together(4, lambda: results.append(cache.get("doubled", [source], build)[0]))
    assert len(builds) == 1
    assert all(result is results[0] for result in results)
    assert pickle.loads(pickle.dumps(cache)).get("doubled", [source], build)[0].tolist() == [2.0, 2.0, 2.0]


def test_a_renderer_steps_first_calls_run_alone_and_later_calls_together():
    """A first call re-lays conv weights out in place; another thread's conv must not read them meanwhile."""
    renderer = tiny_components(0)["renderer"].eval()
    size = renderer.image_size
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    state = renderer.prepare_image(image, torch.zeros(70))
    windows = torch.zeros(1, 70, 27)
    relationship = torch.zeros(1, renderer.generator.config.relationship_dim)
    animate, running, most = renderer.generator.animate, [0], []
    lock = threading.Lock()

    def watched_animate(*args, **kwargs):
        with lock:
            running[0] += 1
            most.append(running[0])
        time.sleep(0.2)
        try:
            return animate(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    renderer.generator.animate = watched_animate
    frames = []
    _run_together(3, lambda: frames.append(renderer.render_windows(state, windows, relationship)))
    assert max(most) == 1, "first calls overlapped"
    most.clear()
    _run_together(3, lambda: frames.append(renderer.render_windows(state, windows, relationship)))
    assert max(most) > 1, "calls after the first ones should not wait for each other"
    assert all(torch.equal(frame, frames[0]) for frame in frames)
