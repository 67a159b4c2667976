"""Put a trained metric into a tavce weights folder, as the pipeline's ``metric`` component.

After ``install_metric(folder, metric)``, ``TalkingHeadPipeline.from_pretrained(folder)``
gives the renderer's CERL the relationships of the new audio encoder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from tavce.components import PIPELINE_CONFIG_NAME, read_pipeline_config
from tavce.errors import InvalidArgumentError
from tavce.models.base import class_path
from tavce.models.tavc import TAVCMetric

__all__ = ["install_metric"]

logger = logging.getLogger(__name__)

METRIC_COMPONENT = "metric"


def install_metric(weights_folder: str | Path, metric: TAVCMetric | str | Path) -> Path:
    """Write ``metric`` as the ``metric`` component of an existing tavce weights folder.

    Args:
        weights_folder: a folder written by ``tavce convert`` or ``pipe.save_pretrained`` (it must
            have ``pipeline_config.json``); its other components are left as they are.
        metric: the trained metric, or a folder written by its ``save_pretrained`` (``OUT/metric``
            of ``tavce train tavc``).

    Returns:
        The component folder (``weights_folder/metric``).

    Raises:
        WeightsNotFoundError: ``weights_folder`` is not a tavce weights folder, or the metric folder is missing.
        InvalidArgumentError: the metric's embedding size differs from the one the folder's metric had
            (the renderer's CERL layers are sized for it).
    """
    weights_folder = Path(weights_folder)
    pipeline_config = read_pipeline_config(weights_folder)
    if not isinstance(metric, TAVCMetric):
        metric = TAVCMetric.from_pretrained(metric)
    target = weights_folder / METRIC_COMPONENT
    if (target / "config.json").is_file():
        previous = TAVCMetric.from_pretrained(target)
        old_size, new_size = previous.audio_encoder.embedding_dim, metric.audio_encoder.embedding_dim
        if old_size != new_size:
            raise InvalidArgumentError(
                f"{weights_folder}: its metric has embedding size {old_size}, the new one {new_size}; the renderer's "
                "CERL layers are sized for the old one. Train with embedding_dim "
                f"{old_size} or use a renderer built for {new_size}"
            )
    # Written beside the folder and swapped in, so that a failure leaves the old metric in place.
    staging = weights_folder / f".{METRIC_COMPONENT}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    metric.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    pipeline_config.setdefault("components", {})[METRIC_COMPONENT] = class_path(type(metric))
    config_path = weights_folder / PIPELINE_CONFIG_NAME
    partial = config_path.with_name(config_path.name + ".partial")
    partial.write_text(json.dumps(pipeline_config, indent=2) + "\n")
    os.replace(partial, config_path)
    logger.info("metric installed into %s", weights_folder)
    return target
