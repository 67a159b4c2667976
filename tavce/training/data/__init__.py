"""Training data: prepare videos once (:func:`prepare_dataset`), then read them with the stage datasets.

See docs/training.md for the layout and the manifest fields.
"""

from tavce.training.data.annotate import PrepareConfig, prepare_video
from tavce.training.data.layout import PreparedVideo, open_prepared_videos, read_manifest
from tavce.training.data.prepare import PrepareReport, list_videos, prepare_dataset
from tavce.training.data.tavc_dataset import TAVCDataset, TAVCDatasetConfig
from tavce.training.data.renderer_dataset import RendererDataset, RendererDatasetConfig
from tavce.training.data.split import split_by_identity

__all__ = [
    "PrepareConfig",
    "PrepareReport",
    "PreparedVideo",
    "RendererDataset",
    "RendererDatasetConfig",
    "TAVCDataset",
    "TAVCDatasetConfig",
    "list_videos",
    "open_prepared_videos",
    "prepare_dataset",
    "prepare_video",
    "read_manifest",
    "split_by_identity",
]
