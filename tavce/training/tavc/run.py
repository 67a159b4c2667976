"""``train_tavc``: stage 1 (the TAVC metric) on a prepared dataset, through the shared run loop.

:func:`train_tavc` runs as one process or, unchanged, as every rank of a ``torchrun``
job. Rank 0 logs every ``log_every`` steps, shows the progress bar and writes the
checkpoints (``OUT/checkpoints/step_<N>.pt``, after every epoch, every
``checkpoint_every`` steps and at the end) and the trained metric (``OUT/metric``, a
tavce component folder). A run resumed from a checkpoint continues exactly: model,
optimiser, scheduler, gradient scaler, the smoothed similarities, the position in the
data and every RNG are restored, and batches depend only on (seed, epoch, step).
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from tavce.models.tavc import TAVCMetric
from tavce.training.distributed import DistributedContext
from tavce.training.loop import LoopSettings, split_validation, train_stage
from tavce.training.tavc.config import TAVCTrainingConfig
from tavce.training.tavc.trainer import StepRecord, TAVCTrainer

__all__ = ["TAVCTrainingResult", "loop_settings", "train_tavc"]


@dataclass
class TAVCTrainingResult:
    """What :func:`train_tavc` leaves.

    Attributes:
        metric: the trained metric (eval mode, on the training device).
        history: one record per step run by this call (global-batch figures; empty on ranks other than 0).
        steps: optimiser steps done in total (including those before a resume).
        checkpoint: the last checkpoint written (None on ranks other than 0).
        metric_folder: ``OUT/metric`` if exported.
    """

    metric: TAVCMetric
    history: list[StepRecord]
    steps: int
    checkpoint: Path | None
    metric_folder: Path | None


def loop_settings(config: TAVCTrainingConfig) -> LoopSettings:
    """How the shared loop runs stage 1 (all of it comes from the stage-1 settings)."""
    return LoopSettings.gather(config, export=config.export_metric)


def _train_tavc(
    config: TAVCTrainingConfig | None,
    data: str | Path,
    output: str | Path,
    *,
    resume: str | Path | None = None,
    metric: TAVCMetric | None = None,
    dataset: Dataset | None = None,
) -> TAVCTrainingResult:
    """Train the TAVC metric (stage 1) on a folder written by ``tavce prepare-data``.

    Args:
        config: settings (None: :class:`TAVCTrainingConfig`'s defaults, the original code's).
        data: the prepared dataset folder (its ``manifest.jsonl`` lists the videos).
        output: run folder: ``training_config.json``, ``metrics.jsonl``, ``checkpoints/``, ``metric/``.
        resume: a checkpoint file, or a run folder whose newest checkpoint to continue from.
        metric: train this metric instead of building one from ``config`` (its embedding size
            must be ``config.embedding_dim`` when the reconstruction term is on).
        dataset: items as :class:`~tavce.training.data.TAVCDataset` gives them (default: that
            dataset over ``data``).

    Under ``torchrun`` every rank calls this with the same arguments. The form
    ``train_tavc(data, output, config=None)`` of earlier releases still works, with a
    DeprecationWarning, until the next release.

    Raises:
        InvalidArgumentError: no prepared data (missing folder or manifest, no usable video), or
            fewer items than one global batch.
        CheckpointError: ``resume`` names no usable checkpoint, or one written with another batch size.
        WeightsNotFoundError, IncompatibleWeightsError: an initialisation or LPIPS weights file.
    """
    config = config or TAVCTrainingConfig()

    settings = loop_settings(config)

    def build(context: DistributedContext) -> tuple[TAVCTrainer, Dataset, Dataset | None]:
        from tavce.training.data import TAVCDataset, TAVCDatasetConfig

        def make(folder: str | Path) -> Dataset:
            return TAVCDataset(
                folder,
                TAVCDatasetConfig(
                    negative_distance=config.negative_distance,
                    repeats=config.repeats,
                    identity_sampling=config.identity_sampling,
                ),
            )

        items, held_out = split_validation(make, data, settings, dataset)
        return TAVCTrainer(config, metric), items, held_out

    outcome = train_stage(build, output, settings, config, resume=resume)
    trainer = outcome.trainer
    assert isinstance(trainer, TAVCTrainer)
    return TAVCTrainingResult(
        metric=trainer.metric,
        history=outcome.history,
        steps=outcome.steps,
        checkpoint=outcome.checkpoint,
        metric_folder=outcome.exported,
    )


def _earlier_form(
    data: str | Path, output: str | Path, config: TAVCTrainingConfig | None = None, **keywords: Any
) -> dict[str, Any]:
    return {"config": config, "data": data, "output": output, **keywords}


def train_tavc(*arguments: Any, **keywords: Any) -> TAVCTrainingResult:
    if arguments and isinstance(arguments[0], (str, os.PathLike)):  # train_tavc(data, output, config=None)
        warnings.warn(
            "train_tavc(data, output, config) is deprecated: pass the config first, "
            "train_tavc(config, data, output) (the old order stops working in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _train_tavc(**_earlier_form(*arguments, **keywords))
    return _train_tavc(*arguments, **keywords)


train_tavc.__doc__ = _train_tavc.__doc__
train_tavc.__signature__ = inspect.signature(_train_tavc)  # type: ignore[attr-defined]
