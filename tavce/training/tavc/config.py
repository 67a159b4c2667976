"""Settings of the stage-1 trainer (:class:`TAVCTrainingConfig`) and their file form (JSON, or YAML with PyYAML).

Defaults are the original code's (``correlation/train.py``), not the
paper's where the two differ: the code counts epochs (10, lr ×0.1
after 8) where the paper states 40 000 iterations (set ``max_steps``), and the LPIPS
reconstruction term the code adds (λ = 1) is off here by default because its VGG
weights must come from a file you provide.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.models.base import config_from_dict, config_to_dict
from tavce.models.tavc import MouthEncoderConfig
from tavce.training.perceptual import PerceptualDistanceConfig
from tavce.training.tavc.reconstruction import ReconstructionGeneratorConfig

__all__ = ["MIXED_PRECISION_MODES", "TAVCTrainingConfig"]

MIXED_PRECISION_MODES = ("auto", "off", "fp16", "bf16")


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
        device: ``auto`` (the local GPU, else CPU), ``cpu``, ``cuda``, ``cuda:1``.
        num_workers: data-loading processes per training process (4).
        mixed_precision: ``auto`` (float16 autocast + gradient scaling on CUDA, off on CPU),
            ``off``, ``fp16`` or ``bf16``.
        sync_batch_norm: under DDP on CUDA, BatchNorm statistics over the global batch (on).

    Output:
        log_every: log and record the figures every N steps (10).
        checkpoint_every: also checkpoint every N steps (None: after each epoch and at the end only).
        export_metric: write the trained metric to ``OUT/metric`` at the end (needs saveable encoders).
        progress: show a progress bar (rank 0).
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

    device: str = "auto"
    num_workers: int = 4
    mixed_precision: str = "auto"
    sync_batch_norm: bool = True

    log_every: int = 10
    checkpoint_every: int | None = None
    export_metric: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.mouth_encoder.embedding_dim != self.embedding_dim:
            problems.append(
                f"mouth_encoder.embedding_dim {self.mouth_encoder.embedding_dim} differs from embedding_dim "
                f"{self.embedding_dim}"
            )
        if self.epochs is None and self.max_steps is None:
            problems.append("set epochs or max_steps (or both: training stops at whichever comes first)")
        for name in ("epochs", "max_steps", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1, got {value}")
        for name in ("batch_size", "log_every", "lr_step_epochs", "negative_distance", "repeats"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be 0 or more, got {self.num_workers}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        if self.mixed_precision not in MIXED_PRECISION_MODES:
            problems.append(
                f"mixed_precision must be one of {', '.join(MIXED_PRECISION_MODES)}, got {self.mixed_precision!r}"
            )
        if self.reconstruction and not self.lpips_weights:
            problems.append(
                "reconstruction needs lpips_weights: a file with the LPIPS VGG weights, e.g. "
                "torch.save(lpips.LPIPS(net='vgg').state_dict(), 'lpips_vgg.pth')"
            )
        if problems:
            raise InvalidArgumentError("TAVCTrainingConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (nested configs as dicts, tuples as lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TAVCTrainingConfig:
        """Rebuild from :meth:`to_dict`'s form; missing fields keep their defaults.

        Raises:
            InvalidArgumentError: an unknown field (naming ``source``).
        """
        try:
            return config_from_dict(cls, values)
        except IncompatibleWeightsError as error:
            known = ", ".join(field.name for field in dataclasses.fields(cls))
            raise InvalidArgumentError(f"{source}: {error}. Known fields: {known}") from None

    def save(self, path: str | Path) -> Path:
        """Write as JSON (``.json``) or YAML (``.yaml`` / ``.yml``, needs PyYAML)."""
        path = Path(path)
        values = self.to_dict()
        if path.suffix in (".yaml", ".yml"):
            path.write_text(_yaml().safe_dump(values, sort_keys=False))
        else:
            path.write_text(json.dumps(values, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TAVCTrainingConfig:
        """Read a file written by :meth:`save` (or by hand: any subset of the fields).

        Raises:
            InvalidArgumentError: missing or unparsable file, unknown fields, invalid values.
        """
        path = Path(path)
        if not path.is_file():
            raise InvalidArgumentError(f"{path}: training config not found; write one with TAVCTrainingConfig().save()")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            yaml = _yaml()
            try:
                values = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise InvalidArgumentError(f"{path}: not valid YAML ({error})") from error
        else:
            try:
                values = json.loads(text)
            except json.JSONDecodeError as error:
                raise InvalidArgumentError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(values, dict):
            raise InvalidArgumentError(f"{path}: expected a mapping of field names to values")
        return cls.from_dict(values, source=str(path))


def _yaml():
    try:
        import yaml
    except ImportError as error:
        raise InvalidArgumentError(
            "YAML training configs need PyYAML (pip install pyyaml); or use a .json file"
        ) from error
    return yaml
