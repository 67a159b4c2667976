"""A held-out split of a prepared dataset by identity, so that no person is in both parts."""

from __future__ import annotations

import copy
import random
from typing import TypeVar

from tavce.errors import ConfigError
from tavce.training.data.sampling import sampling_units

__all__ = ["split_by_identity"]

DatasetT = TypeVar("DatasetT")


def split_by_identity(dataset: DatasetT, fraction: float, *, seed: int) -> tuple[DatasetT, DatasetT]:
    """(training part, held-out part) of a :class:`~tavce.training.data.TAVCDataset` or
    :class:`~tavce.training.data.RendererDataset`: ``fraction`` of the identities (the text before
    the first ``#`` of a video's name; at least one) are held out, chosen by ``seed``.

    Raises:
        ConfigError: ``fraction`` outside (0, 1), or fewer than two identities to split.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"val_fraction={fraction!r}: a fraction of the identities in (0, 1), e.g. 0.1")
    videos = dataset.videos  # type: ignore[attr-defined]
    identities = sorted({video.identity for video in videos})
    if len(identities) < 2:
        raise ConfigError(
            f"val_fraction={fraction}: the data holds {len(identities)} identity ({', '.join(identities)}); "
            "a split by identity needs two or more, or pass separately prepared validation data (--val-data)"
        )
    count = min(max(1, round(fraction * len(identities))), len(identities) - 1)
    held_out = set(random.Random(seed).sample(identities, count))
    parts = []
    for keep in (lambda identity: identity not in held_out, lambda identity: identity in held_out):
        part = copy.copy(dataset)
        part.videos = [video for video in videos if keep(video.identity)]  # type: ignore[attr-defined]
        part.units = sampling_units(part.videos, dataset.config.identity_sampling)  # type: ignore[attr-defined]
        parts.append(part)
    return parts[0], parts[1]
