"""Backbones from files: module folders of any registered class, the TAVC metric from a tavce weights folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tavce.errors import IncompatibleWeightsError, WeightsNotFoundError
from tavce.evaluation import (
    TorchIdentityEncoder,
    load_feature_extractor,
    load_identity_encoder,
    load_sync_encoder,
    load_tavc_metric,
)
from tavce.models.tavc import TAVCMetric
from tests.evaluation.backbones import TinyFaceConfig, TinyFaceNetwork, TinyFeatureExtractor


def test_module_folders_load_with_their_class_and_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    extractor = TinyFeatureExtractor()
    extractor.save_pretrained(tmp_path / "features")
    loaded = load_feature_extractor(tmp_path / "features")
    frames = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(loaded(frames), extractor(frames))

    TinyFaceNetwork(TinyFaceConfig(input_size=64)).save_pretrained(tmp_path / "face")
    encoder = load_identity_encoder(tmp_path / "face")
    assert isinstance(encoder, TorchIdentityEncoder) and encoder.input_size == 64


def test_tavc_metric_from_a_tavce_weights_folder(tiny_weights: Path) -> None:
    assert isinstance(load_tavc_metric(tiny_weights), TAVCMetric)
    assert isinstance(load_tavc_metric(tiny_weights / "metric"), TAVCMetric)


def test_wrong_files_are_named(tmp_path: Path, tiny_weights: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="syncnet_v2.model"):
        load_sync_encoder(tmp_path / "nothing.model")
    (tmp_path / "arcface.pth").write_bytes(b"not onnx")
    with pytest.raises(IncompatibleWeightsError, match=r"\.onnx"):
        load_identity_encoder(tmp_path / "arcface.pth")
    with pytest.raises(IncompatibleWeightsError, match="not a TAVC metric"):
        load_tavc_metric(tiny_weights / "renderer")
