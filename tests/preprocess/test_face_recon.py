"""The 3DMM coefficient network, its converter and the 73-dim source vector."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tavce.convert.common import select_prefix
from tavce.convert.face_recon import FACE_RECON_PREFIX, convert_face_recon
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.models.base import load_state_dict_strict
from tavce.models.face_recon import FaceReconConfig, FaceReconNet, source_coefficients, split_coefficients
from tavce.testing import reference_state_dict

TINY = FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=4)
MANIFEST = "tavce/convert/manifests/SadTalker_V0.0.2_256.safetensors.json"


def _original_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names -> the official file's, to test the converter's inverse direction."""
    heads = ("identity", "expression", "texture", "angle", "lighting", "translation_xy", "translation_z")
    renamed = {}
    for key, value in state_dict.items():
        for index, name in enumerate(heads):
            key = key.replace(f"heads.{name}.", f"final_layers.{index}.")
        renamed[FACE_RECON_PREFIX + key] = value
    return renamed


def test_tiny_network_shapes_and_split():
    network = FaceReconNet(TINY).eval()
    with torch.no_grad():
        coefficients = network(torch.rand(2, 3, 64, 64))
    assert coefficients.shape == (2, 257)
    parts = split_coefficients(coefficients)
    assert [parts[k].shape[1] for k in ("identity", "expression", "texture", "angle", "lighting", "translation")] == [
        80, 64, 80, 3, 27, 3,
    ]
    assert torch.equal(parts["translation"], coefficients[:, 254:257])
    with pytest.raises(InvalidArgumentError):
        network(torch.rand(1, 1, 64, 64))


def test_source_coefficients_layout():
    coefficients = torch.arange(257, dtype=torch.float32)[None]
    stored = source_coefficients(coefficients, np.array([256, 256, 0.75, 120.5, 131.25]))
    assert stored.shape == (1, 73) and stored.dtype == torch.float32
    assert torch.equal(stored[0, :64], torch.arange(80, 144, dtype=torch.float32))
    assert torch.equal(stored[0, 64:67], torch.arange(224, 227, dtype=torch.float32))
    assert torch.equal(stored[0, 67:70], torch.arange(254, 257, dtype=torch.float32))
    assert stored[0, 70:].tolist() == [0.75, 120.5, 131.25]


def test_converter_round_trip_and_unknown_keys():
    network = FaceReconNet(TINY)
    official = _original_names(network.state_dict())
    converted = convert_face_recon(select_prefix(official, FACE_RECON_PREFIX))
    reloaded = FaceReconNet(TINY)
    load_state_dict_strict(reloaded, converted, source="test")
    with pytest.raises(IncompatibleWeightsError, match="final_layers.7"):
        convert_face_recon({"final_layers.7.weight": torch.zeros(1)})


def test_official_layout_recipe_weights_full_size():
    """The manifest's face_3drecon keys load through the converter; one 224 forward (~4 GFLOPs)."""
    shapes = {
        key: entry["shape"]
        for key, entry in json.loads(open(MANIFEST).read()).items()
        if key.startswith(FACE_RECON_PREFIX)
    }
    official = reference_state_dict(shapes, salt=3)
    network = FaceReconNet()
    load_state_dict_strict(network, convert_face_recon(select_prefix(official, FACE_RECON_PREFIX)), source=MANIFEST)
    with torch.no_grad():
        coefficients = network.eval()(torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert coefficients.shape == (1, 257) and torch.isfinite(coefficients).all()


def test_save_and_load_pretrained(tmp_path):
    network = FaceReconNet(TINY).eval()
    network.save_pretrained(tmp_path)
    reloaded = FaceReconNet.from_pretrained(tmp_path)
    assert reloaded.config == TINY
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(network(image), reloaded(image))
