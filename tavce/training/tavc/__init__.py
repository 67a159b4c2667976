"""Stage 1 of TAVCE: training the TAVC metric (reference-training.md §2).

* :mod:`~tavce.training.tavc.losses` — the stage-1 objective and the logged similarity.
"""

from tavce.training.tavc.losses import (
    SimilarityAverage,
    StageOneEmbeddings,
    StageOneLosses,
    embed_stage_one_batch,
    stage_one_losses,
    stage_one_objective,
)

__all__ = [
    "SimilarityAverage",
    "StageOneEmbeddings",
    "StageOneLosses",
    "embed_stage_one_batch",
    "stage_one_losses",
    "stage_one_objective",
]
