"""Deprecated module: :func:`train_renderer` and :class:`RendererRunConfig` are in :mod:`tavce.training.renderer.run`,
the step records in :mod:`tavce.training.renderer.trainer`; import them from :mod:`tavce.training.renderer`."""

import warnings

from torch.nn.parallel import DistributedDataParallel

from tavce.training.renderer.run import (
    RendererRunConfig,
    RendererTrainingResult,
    build_trainer,
    train_renderer,
)
from tavce.training.renderer.trainer import LOSS_TERMS, RendererStepRecord, wrap_for_data_parallel

__all__ = ["LOSS_TERMS", "RendererRunConfig", "RendererStepRecord", "RendererTrainingResult", "build_trainer", "train_renderer"]


def _wrap_for_data_parallel(trainer, context, sync_batch_norm: bool) -> None:
    """Deprecated: :meth:`RendererTrainer.prepare` wraps the trainer (this module's ``DistributedDataParallel`` is used)."""
    wrap_for_data_parallel(trainer, context, sync_batch_norm, data_parallel=DistributedDataParallel)


warnings.warn(
    "tavce.training.renderer.loop is deprecated, import from tavce.training.renderer (removed in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
