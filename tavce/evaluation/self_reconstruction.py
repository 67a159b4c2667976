"""Self-reconstruction (paper §IV-A): each test video re-generated from itself.

The source image is the video's first frame, the driving audio its own audio, cut to the
first ``max_frames`` (200) frames as the original preprocessing keeps; pose style 0, random
blinks, seed 2024. The generated videos are then compared with the real frames
(:func:`tavce.evaluation.runner.evaluate_videos`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tavce.types import SAMPLES_PER_FRAME, AudioClip
from tavce.video_reader import read_video

__all__ = ["SelfReconstructionConfig", "self_reconstruct"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelfReconstructionConfig:
    """max_frames: frames kept per video (200). mode: crop mode of the first frame (crop). seed: 2024,
    the original evaluation's. batch_size: frames rendered together."""

    max_frames: int = 200
    mode: str = "crop"
    seed: int = 2024
    batch_size: int = 4


def self_reconstruct(
    references: Sequence[str | Path],
    output: str | Path,
    pipeline,
    config: SelfReconstructionConfig | None = None,
    *,
    progress: bool = True,
) -> list[Path]:
    """Generate ``output/<stem>.mp4`` for every reference video with ``pipeline`` (a TalkingHeadPipeline).

    Returns:
        The written videos, in the order of ``references``.
    """
    import torch
    from tqdm.auto import tqdm

    config = config or SelfReconstructionConfig()
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for reference in tqdm(list(references), desc="self-reconstruction", unit="video", disable=not progress):
        clip = read_video(reference, max_frames=config.max_frames)
        count = min(len(clip.frames), clip.audio.num_frames)
        # Not the file path as source: the writer would mux the whole file's audio, not the 200-frame cut.
        audio = AudioClip(clip.audio.samples[: count * SAMPLES_PER_FRAME], source=f"{reference} (first {count} frames)")
        result = pipeline(clip.frames[0], audio, mode=config.mode, pose_style=0, use_blink=True, seed=config.seed,
                          batch_size=config.batch_size, progress=False)  # fmt: skip
        with torch.inference_mode():
            written.append(result.save(folder / f"{Path(reference).stem}.mp4"))
    return written
