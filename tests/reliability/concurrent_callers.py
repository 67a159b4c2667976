"""Worker for test_concurrency: several threads share one pipeline; prints the frames' digests as JSON.

Run as ``python -m tests.reliability.concurrent_callers WEIGHTS AUDIO PHOTO...``, in its own
process so that a crash of the interpreter fails the test instead of ending pytest. The
threads use a fresh pipeline first, so the lazily built state (landmark backend, the
renderer's derived weights) sees concurrent first use; the sequential reference runs last.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading

import numpy as np
import torch

from tavce import TalkingHeadPipeline
from tavce.audio import load_audio
from tavce.types import SAMPLE_RATE, AudioClip

CALLERS = 4
ROUNDS = 2
CLIP_SECONDS = 0.25


def main(weights: str, audio: str, photos: list[str]) -> None:
    torch.set_num_threads(1)  # the callers are the parallelism; frames do not depend on the thread count
    pipe = TalkingHeadPipeline.from_pretrained(weights)
    clip = load_audio(audio)
    clip = AudioClip(clip.samples[: int(CLIP_SECONDS * SAMPLE_RATE)], clip.source)

    def generate(caller: int) -> str:
        result = pipe(photos[caller % len(photos)], clip, mode="crop", seed=caller, batch_size=2, progress=False)
        frames = np.stack(list(result.frames))
        return hashlib.sha256(frames.tobytes() + str(frames.shape).encode()).hexdigest()

    rounds = []
    for _ in range(ROUNDS):
        digests: dict[int, str] = {}
        start = threading.Barrier(CALLERS)

        def call(caller: int) -> None:
            start.wait()
            digests[caller] = generate(caller)

        threads = [threading.Thread(target=call, args=(caller,)) for caller in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rounds.append([digests.get(caller) for caller in range(CALLERS)])
    sequential = [generate(caller) for caller in range(CALLERS)]
    print(json.dumps({"rounds": rounds, "sequential": sequential}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
