"""Stage 1 of TAVCE: training the TAVC metric.

The same files as stage 2 (:mod:`tavce.training.renderer`):

* :mod:`~tavce.training.tavc.config` — :class:`TAVCTrainingConfig` and its file form;
* :mod:`~tavce.training.tavc.trainer` — :class:`TAVCTrainer`, stage 1's step for the shared
  run loop (:mod:`tavce.training.loop`), and :func:`build_metric`;
* :mod:`~tavce.training.tavc.run` — :func:`train_tavc` (``tavce train tavc``), single process or
  under ``torchrun``;
* :mod:`~tavce.training.tavc.export` — the run's ``OUT/metric`` and :func:`install_metric` (a
  trained metric into a tavce weights folder);
* :mod:`~tavce.training.tavc.losses` — the stage-1 objective and the logged similarity;
* :mod:`~tavce.training.tavc.reconstruction` — the original's auxiliary LPIPS reconstruction term;
* :func:`evaluate_similarity` — positive and negative similarities of a metric on held-out items.
"""

from tavce.training.tavc.config import TAVCTrainingConfig
from tavce.training.tavc.evaluate import SimilarityFigures, evaluate_similarity
from tavce.training.tavc.export import export_metric, install_metric
from tavce.training.tavc.losses import (
    SimilarityAverage,
    StageOneEmbeddings,
    StageOneLosses,
    embed_stage_one_batch,
    stage_one_losses,
    stage_one_objective,
)
from tavce.training.tavc.reconstruction import ReconstructionGeneratorConfig, ReconstructionLoss, RelationshipGenerator
from tavce.training.tavc.run import TAVCTrainingResult, train_tavc
from tavce.training.tavc.trainer import StageOneModel, StepRecord, TAVCTrainer, build_metric

__all__ = [
    "ReconstructionGeneratorConfig",
    "ReconstructionLoss",
    "RelationshipGenerator",
    "SimilarityAverage",
    "SimilarityFigures",
    "StageOneEmbeddings",
    "StageOneLosses",
    "StageOneModel",
    "StepRecord",
    "TAVCTrainer",
    "TAVCTrainingConfig",
    "TAVCTrainingResult",
    "build_metric",
    "embed_stage_one_batch",
    "evaluate_similarity",
    "export_metric",
    "install_metric",
    "stage_one_losses",
    "stage_one_objective",
    "train_tavc",
]
