"""Helpers shared by several test modules (test modules import from here, never from each other)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from tavce.types import SAMPLE_RATE, AudioClip

COMMIT = "0123456789abcdef0123456789abcdef01234567"
"""The revision :func:`lay_out_hub_cache` files its snapshot under."""

PHOTO_SIZE = (320, 240)
"""(W, H) of the ``portrait`` fixture: not square, so crop-mode aspect restoration shows."""


def speech_like(seconds: float) -> AudioClip:
    """Voiced harmonics under a 4 Hz syllable envelope, with pauses."""
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.5 * time)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * time), 0, None)
    return AudioClip(samples=(0.2 * voiced * envelope).astype(np.float32), source="<speech>")


def probe(path: Path) -> str:
    """ffmpeg's stream description of ``path`` (ffmpeg -i prints it on stderr)."""
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True)
    return run.stderr.decode(errors="replace")


def lay_out_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache holding ``files`` for ``repo_id`` at revision :data:`COMMIT`, as a download leaves it."""
    repo_folder = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_folder / "snapshots" / COMMIT
    for name, content in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(content)
    (repo_folder / "refs").mkdir(parents=True)
    (repo_folder / "refs" / "main").write_text(COMMIT)
    return snapshot


class SyntheticFaceLandmarker:
    """Stand-in landmarker for the synthetic talking-head clips: their face's landmarks (closed mouth)
    for the image's size.

    Exact on the clips' frames and on their ``resize``-mode crops (the face scales with the
    frame). Counts calls; ``faces=False`` finds nothing. Pickles, so it can go to worker processes.
    """

    name = "synthetic"

    def __init__(self, faces: bool = True) -> None:
        self.faces = faces
        self.calls = 0

    def detect(self, image: np.ndarray) -> list:
        from tavce.preprocess.landmarks import Face
        from tavce.testing import synthetic_face_landmarks

        self.calls += 1
        if not self.faces:
            return []
        size = image.shape[1]
        return [Face(box=(0.0, 0.0, float(size), float(size)), landmarks=synthetic_face_landmarks(size), score=1.0)]

    def landmarks_in_box(self, image: np.ndarray, box) -> np.ndarray:
        from tavce.testing import synthetic_face_landmarks

        return synthetic_face_landmarks(image.shape[1])


def tiny_face_recon():
    """A tiny random 3DMM network (eval mode): (B, 3, 224, 224) -> (B, 257) in milliseconds."""
    from tavce.models.face_recon import FaceReconConfig, FaceReconNet

    return FaceReconNet(FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=4)).eval()


def write_tiny_training_settings(folder: Path, mouth_channels: tuple[int, ...] = (4, 8, 8, 8)) -> None:
    """``folder/tavc.json`` and ``folder/renderer.json``: settings that train against tavce.testing's tiny weights.

    Stage 1: embedding size 4 (what the tiny renderer's CERL layers take), a narrow IResNet of
    ``mouth_channels``, figures every step. Stage 2: a tiny discriminator, no VGG19 perceptual term.
    """
    from tavce.models.renderer.discriminator import DiscriminatorConfig
    from tavce.models.tavc import MouthEncoderConfig
    from tavce.training.renderer import LossWeights, RendererTrainingConfig, save_training_config
    from tavce.training.tavc import TAVCTrainingConfig

    embedding = 4
    mouth = MouthEncoderConfig(
        image_size=112, stem_channels=mouth_channels[0], stage_channels=mouth_channels,
        blocks_per_stage=(1,) * len(mouth_channels), embedding_dim=embedding,
    )  # fmt: skip
    TAVCTrainingConfig(embedding_dim=embedding, mouth_encoder=mouth, log_every=1).save(folder / "tavc.json")
    renderer = RendererTrainingConfig(
        discriminator=DiscriminatorConfig(base_channels=4, max_channels=16), losses=LossWeights(perceptual=(0.0,) * 5)
    )
    save_training_config(renderer, folder / "renderer.json")
