"""Deprecated module name: TAVCDataset lives in :mod:`tavce.training.data.tavc_dataset`; import it from there or from :mod:`tavce.training.data`."""

import warnings

from tavce.training.data.tavc_dataset import TAVCDataset, TAVCDatasetConfig

__all__ = ["TAVCDataset", "TAVCDatasetConfig"]

warnings.warn(
    "tavce.training.data.stage1 is deprecated, import from tavce.training.data.tavc_dataset (removed in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
