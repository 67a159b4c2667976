"""Metric backbones from files: the official weights, or any tavce module folder.

Each loader takes either the official file of its metric or a folder written by
``save_pretrained`` of a :class:`~tavce.models.base.TavceModule` (``config.json`` +
``model.safetensors``; the class is read from ``config.json``, so a researcher's own
backbone, registered with :func:`tavce.components.register_component_class`, loads the
same way). Nothing pickled is executed: ``.pth`` / ``.model`` files go through
``torch.load(weights_only=True)``, ONNX models through onnxruntime.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import cast

import torch

from tavce.errors import IncompatibleWeightsError, WeightsNotFoundError
from tavce.evaluation.fid import FeatureExtractor
from tavce.evaluation.identity import ARCFACE_INPUT_SIZE, ArcFaceEncoder, IdentityEncoder, TorchIdentityEncoder
from tavce.evaluation.inception import load_fid_inception
from tavce.evaluation.sync import SyncEncoder
from tavce.evaluation.syncnet import load_syncnet
from tavce.models.base import CONFIG_NAME, TavceModule, resolve_component_class
from tavce.models.tavc.metric import TemporalCorrelationMetric

__all__ = [
    "load_feature_extractor",
    "load_identity_encoder",
    "load_module_folder",
    "load_sync_encoder",
    "load_tavc_metric",
]

logger = logging.getLogger(__name__)


def _existing(path: str | Path, what: str, hint: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsNotFoundError(f"{path}: {what} not found; {hint}")
    return path


def load_module_folder(folder: str | Path) -> TavceModule:
    """The module saved in ``folder`` by ``save_pretrained`` (its class read from ``config.json``), in eval mode."""
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsNotFoundError(
            f"{folder}: no {CONFIG_NAME}; give the official weights file or a folder written by save_pretrained()"
        )
    description = json.loads(config_path.read_text())
    return resolve_component_class(description["class"], folder).from_pretrained(folder).eval()


def load_feature_extractor(path: str | Path, device: str | torch.device = "cpu") -> FeatureExtractor:
    """FID's Inception from pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, or a module folder."""
    path = _existing(
        path, "FID Inception weights", "download pt_inception-2015-12-05-6726825d.pth (docs/evaluation.md)"
    )
    model = load_module_folder(path) if path.is_dir() else load_fid_inception(path)
    return model.to(device)


def load_identity_encoder(path: str | Path, device: str | torch.device = "cpu") -> IdentityEncoder:
    """An insightface ArcFace ``.onnx`` (e.g. buffalo_l's ``w600k_r50.onnx``), or a module folder whose
    network maps (B, 3, S, S) RGB in [−1, 1] to embeddings (S: its config's ``input_size``, else 112)."""
    path = _existing(path, "ArcFace model", "use w600k_r50.onnx from insightface's buffalo_l pack (docs/evaluation.md)")
    if path.is_dir():
        network = load_module_folder(path).to(device)
        return TorchIdentityEncoder(network, int(getattr(network.config, "input_size", ARCFACE_INPUT_SIZE)))
    if path.suffix.lower() != ".onnx":
        raise IncompatibleWeightsError(
            f"{path}: not an .onnx model; CSIM takes insightface's ArcFace ONNX models (w600k_r50.onnx, "
            "glintr100.onnx) or a tavce module folder"
        )
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if torch.device(device).type == "cuda" else None
    return ArcFaceEncoder(path, providers=providers)


def load_sync_encoder(path: str | Path, device: str | torch.device = "cpu") -> SyncEncoder:
    """SyncNet from syncnet_python's ``syncnet_v2.model``, or a module folder."""
    path = _existing(path, "SyncNet weights", "download syncnet_v2.model of syncnet_python (docs/evaluation.md)")
    model = load_module_folder(path) if path.is_dir() else load_syncnet(path)
    return cast(SyncEncoder, model.to(device))


def load_tavc_metric(path: str | Path, device: str | torch.device = "cpu") -> TemporalCorrelationMetric:
    """The TAVC metric from a tavce weights folder (its ``metric/``), a metric folder (``RUN/metric`` of
    ``tavce train tavc``), or TAVCE's correlation checkpoint (``.pth``, converted on load).

    The one loader of every option that takes a metric (``tavce evaluate --tavc-metric``,
    ``tavce train renderer --metric``).

    Raises:
        WeightsNotFoundError: nothing at ``path``.
        IncompatibleWeightsError: a weights folder without a metric component, or not a metric.
    """
    from tavce.components import PIPELINE_CONFIG_NAME

    path = _existing(
        path, "TAVC metric weights", "give a tavce weights folder with a metric, or the TAVCE correlation .pth"
    )
    if path.is_dir():
        has_metric = (path / "metric" / CONFIG_NAME).is_file()
        if (path / PIPELINE_CONFIG_NAME).is_file() and not has_metric:
            raise IncompatibleWeightsError(
                f"{path}: a tavce weights folder with no metric component; pass the metric folder written by "
                "`tavce train tavc` (RUN/metric), a weights folder with a metric, or TAVCE's correlation checkpoint"
            )
        folder = path / "metric" if has_metric else path
        metric = load_module_folder(folder)
    else:
        from tavce.convert.assemble import build_metric
        from tavce.convert.files import convert_tavce_correlation_checkpoint
        from tavce.hub import load_legacy_checkpoint

        metric = build_metric(convert_tavce_correlation_checkpoint(load_legacy_checkpoint(path), path.name), str(path))
    if not isinstance(metric, TemporalCorrelationMetric):
        raise IncompatibleWeightsError(f"{path}: holds a {type(metric).__name__}, not a TAVC metric")
    return metric.to(device)
