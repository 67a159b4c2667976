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
from tavce.training.tavc.reconstruction import ReconstructionGeneratorConfig

__all__ = ["MIXED_PRECISION_MODES", "TAVCTrainingConfig"]

MIXED_PRECISION_MODES = MIXED_PRECISION_CHOICES


@dataclass(frozen=True)
class TAVCTrainingConfig:
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

    Compute:
        device: None (the local GPU, else CPU; ``auto`` also works), ``cpu``, ``cuda``, ``cuda:1``.
        num_workers: data-loading processes per training process (4).
        mixed_precision: None (float16 autocast + gradient scaling on CUDA, off on CPU; ``auto``
            also works), ``float32`` (off), ``float16`` or ``bfloat16`` (aliases ``off``, ``fp16``, ``bf16``).
        sync_batch_norm: under DDP on CUDA, BatchNorm statistics over the global batch (on).

    Output:
        log_every: log and record the figures every N steps (10).
        checkpoint_every: also checkpoint every N steps (None: after each epoch and at the end only).
        export_metric: write the trained metric to ``OUT/metric`` at the end (needs saveable encoders).
        progress: show a progress bar (rank 0).

    Validation and watching (the shared loop's, :class:`~tavce.training.loop.LoopSettings`):
        val_data: a prepared folder of held-out videos; val_fraction: else hold out this fraction
            of the identities (no person in both parts); None for both: no validation.
        validate_every: similarities and the fraction ranked correctly on the held-out items every
            N steps (None: at the end only); the best checkpoint by the similarity gap is kept.
        validation_items: held-out items per validation (16).
        tensorboard: TensorBoard event files in ``OUT/tensorboard`` (``tavce[train]``).
        plots: ``OUT/curves.png`` at the end (``tavce[train]``).
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

    device: str | None = None
    num_workers: int = 4
    mixed_precision: str | None = None
    sync_batch_norm: bool = True

    log_every: int = 10
    checkpoint_every: int | None = None
    export_metric: bool = True
    progress: bool = True

    val_data: str | None = None
    val_fraction: float | None = None
    validate_every: int | None = None
    validation_items: int = 16
    tensorboard: bool = False
    plots: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.mouth_encoder.embedding_dim != self.embedding_dim:
            problems.append(
                f"mouth_encoder.embedding_dim {self.mouth_encoder.embedding_dim} differs from embedding_dim "
                f"{self.embedding_dim}"
            )
        if self.epochs is None and self.max_steps is None:
            problems.append("set epochs or max_steps (or both: training stops at whichever comes first)")
        for name in ("epochs", "max_steps", "checkpoint_every", "validate_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1, got {value}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            problems.append(f"val_fraction must be in (0, 1) (a fraction of the identities), got {self.val_fraction}")
        for name in ("batch_size", "log_every", "lr_step_epochs", "negative_distance", "repeats", "validation_items"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be 0 or more, got {self.num_workers}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        if self.mixed_precision not in MIXED_PRECISION_MODES:
            problems.append(
                f"mixed_precision must be None (automatic) or one of "
                f"{', '.join(str(mode) for mode in MIXED_PRECISION_MODES[1:])}, got {self.mixed_precision!r}"
            )
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
