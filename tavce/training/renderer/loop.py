"""Deprecated module: :func:`train_renderer` and :class:`RendererRunConfig` are in :mod:`tavce.training.renderer.run`,
the step records in :mod:`tavce.training.renderer.trainer`; import them from :mod:`tavce.training.renderer`."""

import warnings

from tavce.training.renderer.run import (
    RendererRunConfig,
    RendererTrainingResult,
    build_trainer,
    train_renderer,
)
from tavce.training.renderer.trainer import LOSS_TERMS, RendererStepRecord
from tavce.training.renderer.trainer import wrap_for_data_parallel as _wrap_for_data_parallel

__all__ = ["LOSS_TERMS", "RendererRunConfig", "RendererStepRecord", "RendererTrainingResult", "build_trainer", "train_renderer"]

warnings.warn(
    "tavce.training.renderer.loop is deprecated, import from tavce.training.renderer (removed in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
