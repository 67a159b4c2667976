"""Stage 1 of TAVCE: training the TAVC metric.

* :func:`train_tavc` / :class:`TAVCTrainingConfig` — the trainer (``tavce train tavc``), single
  process or under ``torchrun``;
* :mod:`~tavce.training.tavc.losses` — the stage-1 objective and the logged similarity;
* :mod:`~tavce.training.tavc.reconstruction` — the original's auxiliary LPIPS reconstruction term;
* :func:`evaluate_similarity` — positive and negative similarities of a metric on held-out items;
* :func:`install_metric` — a trained metric into a tavce weights folder.
"""

from tavce.training.tavc.config import TAVCTrainingConfig
from tavce.training.tavc.evaluate import SimilarityFigures, evaluate_similarity
from tavce.training.tavc.export import install_metric
from tavce.training.tavc.losses import (
    SimilarityAverage,
    StageOneEmbeddings,
    StageOneLosses,
    embed_stage_one_batch,
    stage_one_losses,
    stage_one_objective,
)
from tavce.training.tavc.reconstruction import ReconstructionGeneratorConfig, ReconstructionLoss, RelationshipGenerator
from tavce.training.tavc.trainer import StageOneModel, StepRecord, TAVCTrainingResult, build_metric, train_tavc

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
    "TAVCTrainingConfig",
    "TAVCTrainingResult",
    "build_metric",
    "embed_stage_one_batch",
    "evaluate_similarity",
    "install_metric",
    "stage_one_losses",
    "stage_one_objective",
    "train_tavc",
]
