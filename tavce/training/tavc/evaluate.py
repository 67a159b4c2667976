"""How well a metric separates adjacent from distant mouth movements on held-out items."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from tavce.models.base import module_device
from tavce.models.tavc import TAVCMetric, flattened_cosine, row_cosine
from tavce.training.sampler import SeededItems
from tavce.training.tavc.losses import embed_stage_one_batch

__all__ = ["SimilarityFigures", "evaluate_similarity"]


@dataclass(frozen=True)
class SimilarityFigures:
    """Means over the evaluated items.

    Attributes:
        cos_positive, cos_negative: flattened cosine S(R_a, R_v) of the adjacent (i, i+1) and the
            distant (i, j) mouth pair — the quantity the loss trains, in [0, 1].
        row_positive, row_negative: the row-wise cosine the original logs, in [−1, 1].
        ranked: fraction of items whose adjacent pair scores above their distant pair.
        items: number of items.
    """

    cos_positive: float
    cos_negative: float
    row_positive: float
    row_negative: float
    ranked: float
    items: int

    @property
    def gap(self) -> float:
        """cos_positive − cos_negative: 0 for an untrained metric, towards 1 for a perfect one."""
        return self.cos_positive - self.cos_negative


@torch.no_grad()
def evaluate_similarity(
    metric: TAVCMetric, dataset: Dataset, *, items: int | None = None, seed: int = 0, batch_size: int = 16
) -> SimilarityFigures:
    """Similarities of ``metric`` (in eval mode: running BatchNorm statistics) on ``dataset``'s items.

    Items 0 … ``items`` − 1 (default: all) are drawn with fixed random choices (``seed``), so two
    metrics evaluated with the same arguments see exactly the same frames.
    """
    count = len(dataset) if items is None else min(items, len(dataset))  # type: ignore[arg-type]
    keys = [(0, index) for index in range(count)]
    loader = DataLoader(SeededItems(dataset, seed), batch_size=batch_size, sampler=keys)
    was_training = metric.training
    metric.eval()
    device = module_device(metric)
    sums = torch.zeros(5, dtype=torch.float64)
    for batch in loader:
        embeddings = embed_stage_one_batch(metric, batch["mels"][:, :2].to(device), batch["mouths"].to(device))
        audio, positive, negative = (factor.float() for factor in embeddings.relationships())
        cos_positive, cos_negative = flattened_cosine(audio, positive), flattened_cosine(audio, negative)
        sums += (
            torch.stack(
                [
                    cos_positive.sum(),
                    cos_negative.sum(),
                    row_cosine(audio, positive).mean(dim=1).sum(),
                    row_cosine(audio, negative).mean(dim=1).sum(),
                    (cos_positive > cos_negative).sum(),
                ]
            )
            .double()
            .cpu()
        )
    metric.train(was_training)
    means = (sums / max(count, 1)).tolist()
    return SimilarityFigures(*means, items=count)
