"""Settings of the stage-1 trainer (:class:`TAVCTrainingConfig`) and their file form (JSON, or YAML with PyYAML,
through :mod:`tavce.training.config_file`).

Defaults are the original code's (``correlation/train.py``), not the
paper's where the two differ: the code counts epochs (10, lr ×0.1
after 8) where the paper states 40 000 iterations (set ``max_steps``), and the LPIPS
reconstruction term the code adds (λ = 1) is off here by default because its VGG
weights must come from a file you provide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tavce.errors import ConfigError
from tavce.models.base import config_to_dict
from tavce.models.tavc import MouthEncoderConfig
from tavce.training.config_file import config_from_mapping, load_config, save_config
from tavce.training.distributed import MIXED_PRECISION_CHOICES
from tavce.training.perceptual import PerceptualDistanceConfig
from tavce.training.run_settings import RunSettings
from tavce.training.tavc.reconstruction import ReconstructionGeneratorConfig

__all__ = ["MIXED_PRECISION_MODES", "TAVCTrainingConfig"]

MIXED_PRECISION_MODES = MIXED_PRECISION_CHOICES


@dataclass(frozen=True)
class TAVCTrainingConfig(RunSettings):
    """Stage-1 training settings (defaults: TAVCE's ``correlation/train.py``).

    Data:
        negative_distance: τ, least distance |j − i| of a negative frame (3).
        repeats: visits of each video (or identity) per epoch (``num_repeats``, 1).
        identity_sampling: one item per identity instead of per video (``--id_sampling``, off).
        encode_negative_window: also encode frame j's audio window, which no loss uses but
            which enters train-mode BatchNorm statistics, as in the original (on).

    Model:
        embedding_dim: size D of both encoders' embeddings (128); must equal ``mouth_encoder.embedding_dim``.
        mouth_encoder: the IResNet18 sizes (TAVCE's by default; tests use tiny ones).
        wav2lip_checkpoint: official ``wav2lip.pth`` initialising the audio encoder's Wav2Lip stack
            (the original always does; None: random initialisation).
        iresnet_checkpoint: face-recognition ``iresnet18.pth`` initialising the mouth encoder's
            backbone (head trained from scratch; None: random).

    Objective:
        alpha: weight of the negative term (1).
        reconstruction: add the auxiliary LPIPS reconstruction term (the code's, not the paper's; off).
        reconstruction_weight: its weight λ (1).
        lpips_weights: file with the LPIPS VGG weights (required with ``reconstruction``), see
            :mod:`tavce.training.perceptual`.
        generator, perceptual: sizes of the auxiliary generators and of the LPIPS backbone.

    Optimisation:
        learning_rate (1e-4), adam_betas ((0.9, 0.999)), adam_eps (1e-8), weight_decay (0): PyTorch's Adam defaults.
        lr_step_epochs, lr_gamma: StepLR, ×0.1 every 8 epochs, stepped at each epoch's end.
        epochs: passes over the data (10); None: until ``max_steps``.
        max_steps: stop after this many optimiser steps (None: after ``epochs``); the paper's 40 000.
        batch_size: items per process and step (16 per GPU).
        seed: seeds initialisation, shuffling and every item's random choices (2024).

    Output:
        export_metric: write the trained metric to ``OUT/metric`` at the end (needs saveable encoders).

    Compute, logging, checkpoints, validation and watching: :class:`~tavce.training.run_settings.RunSettings`
    (here validation reports the similarities and the fraction ranked correctly on the held-out
    items; the best checkpoint is the one with the largest similarity gap).
    """

    negative_distance: int = 3
    repeats: int = 1
    identity_sampling: bool = False
    encode_negative_window: bool = True

    embedding_dim: int = 128
    mouth_encoder: MouthEncoderConfig = field(default_factory=MouthEncoderConfig)
    wav2lip_checkpoint: str | None = None
    iresnet_checkpoint: str | None = None

    alpha: float = 1.0
    reconstruction: bool = False
    reconstruction_weight: float = 1.0
    lpips_weights: str | None = None
    generator: ReconstructionGeneratorConfig = field(default_factory=ReconstructionGeneratorConfig)
    perceptual: PerceptualDistanceConfig = field(default_factory=PerceptualDistanceConfig)

    learning_rate: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    lr_step_epochs: int = 8
    lr_gamma: float = 0.1
    epochs: int | None = 10
    max_steps: int | None = None
    batch_size: int = 16
    seed: int = 2024

    export_metric: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.mouth_encoder.embedding_dim != self.embedding_dim:
            problems.append(
                f"mouth_encoder.embedding_dim {self.mouth_encoder.embedding_dim} differs from embedding_dim "
                f"{self.embedding_dim}"
            )
        if self.epochs is None and self.max_steps is None:
            problems.append("set epochs or max_steps (or both: training stops at whichever comes first)")
        for name in ("epochs", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1, got {value}")
        for name in ("batch_size", "lr_step_epochs", "negative_distance", "repeats"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        problems += self.run_problems()
        if self.reconstruction and not self.lpips_weights:
            problems.append(
                "reconstruction needs lpips_weights: a file with the LPIPS VGG weights, e.g. "
                "torch.save(lpips.LPIPS(net='vgg').state_dict(), 'lpips_vgg.pth')"
            )
        if problems:
            raise ConfigError("TAVCTrainingConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (nested configs as dicts, tuples as lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TAVCTrainingConfig:
        """Rebuild from :meth:`to_dict`'s form; missing fields keep their defaults.

        Raises:
            ConfigError: an unknown field or a refused value (naming ``source`` and the field).
        """
        return config_from_mapping(cls, values, source=source)

    def save(self, path: str | Path) -> Path:
        """Write as JSON (``.json``) or YAML (``.yaml`` / ``.yml``, needs PyYAML)."""
        return save_config(self, path)

    @classmethod
    def load(cls, path: str | Path) -> TAVCTrainingConfig:
        """Read a file written by :meth:`save` (or by hand: any subset of the fields).

        Raises:
            ConfigError: missing or unparsable file, unknown fields, invalid values.
        """
        return load_config(cls, path)
