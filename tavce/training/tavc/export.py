"""Where a trained metric goes: the run's ``OUT/metric`` folder, then a tavce weights folder's ``metric`` component.

:func:`export_metric` writes the run's result (``tavce train tavc`` does it at the end of a
run). :func:`install_metric` (``tavce train tavc ... --install-into WEIGHTS``) puts it into
a weights folder, after which ``TalkingHeadPipeline.from_pretrained(folder)`` gives the
renderer's CERL the relationships of the new audio encoder. ``tavce train renderer --metric``
and ``tavce evaluate --tavc-metric`` take the ``OUT/metric`` folder as it is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

from tavce.components import PIPELINE_CONFIG_NAME, read_pipeline_config
from tavce.errors import InvalidArgumentError
from tavce.models.base import class_path
from tavce.models.tavc import TAVCMetric, TAVCMetricConfig

__all__ = ["METRIC_DIR", "export_metric", "install_metric"]

logger = logging.getLogger(__name__)

METRIC_COMPONENT = "metric"
METRIC_DIR = "metric"
"""The trained metric's folder in a stage-1 run folder."""


def export_metric(metric: TAVCMetric, folder: str | Path, *, alpha: float) -> Path:
    """Write the trained metric (with the ``alpha`` it was trained with) as a tavce component folder."""
    folder = Path(folder)
    if isinstance(metric.config, TAVCMetricConfig):
        metric.config = dataclasses.replace(metric.config, alpha=alpha)
    metric.save_pretrained(folder)
    logger.info(
        "trained metric written to %s: pass it as `tavce train renderer DATA OUT --metric %s` and "
        "`tavce evaluate --tavc-metric %s`; to put it into a tavce weights folder, run the same "
        "`tavce train tavc` command with `--resume --install-into WEIGHTS`",
        folder, folder, folder,
    )  # fmt: skip
    return folder


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
