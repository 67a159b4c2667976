"""Deprecated module name: RendererDataset lives in :mod:`tavce.training.data.renderer_dataset`; import it from there or from :mod:`tavce.training.data`."""

import warnings

from tavce.training.data.renderer_dataset import RendererDataset, RendererDatasetConfig

__all__ = ["RendererDataset", "RendererDatasetConfig"]

warnings.warn(
    "tavce.training.data.stage2 is deprecated, import from tavce.training.data.renderer_dataset (removed in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
