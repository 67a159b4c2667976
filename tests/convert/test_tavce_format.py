"""The tavce weights folder: components -> save_components -> load_components is bit-exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tavce.components import load_components, save_components
from tavce.convert.export import preprocessing_constants
from tavce.convert.official import detect_layout, is_tavce_folder
from tavce.models.audio_encoder import Wav2LipAudioEncoder
from tavce.models.face_recon import FaceReconConfig, FaceReconNet


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and buffer drawn at random, so a load that drops or mixes tensors shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return module.eval()


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    components = {
        "face_recon": _randomised(FaceReconNet(FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=8)), 1),
        "relationship_encoder": _randomised(Wav2LipAudioEncoder(), 2),
    }
    folder = save_components(
        tmp_path / "weights", components, preprocessing_constants(256), provenance={"size": 256, "cerl": False}
    )
    loaded, preprocessing = load_components(folder)
    assert preprocessing == json.loads(json.dumps(preprocessing_constants(256)))
    assert set(loaded) == set(components)
    for name, component in components.items():
        assert type(loaded[name]) is type(component) and loaded[name].config == component.config
        original, reloaded = component.state_dict(), loaded[name].state_dict()
        assert list(reloaded) == list(original)
        for key in original:
            assert reloaded[key].dtype == original[key].dtype
            assert torch.equal(reloaded[key], original[key]), f"{name}.{key}"
    faces = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded["face_recon"](faces), components["face_recon"](faces))
    assert json.loads((folder / "pipeline_config.json").read_text())["provenance"] == {"size": 256, "cerl": False}


def test_preprocessing_constants_are_the_training_conventions() -> None:
    constants = preprocessing_constants(512)
    assert (constants["sample_rate"], constants["fps"], constants["crop_size"]) == (16000, 25, 512)
    assert constants["mel"] == {
        "n_fft": 800,
        "hop_length": 200,
        "win_length": 800,
        "n_mels": 80,
        "fmin": 55.0,
        "fmax": 7600.0,
        "preemphasis": 0.97,
        "min_level_db": -100.0,
        "ref_level_db": 20.0,
        "max_abs_value": 4.0,
        "window_steps": 16,
    }


def test_layout_detection(tmp_path: Path) -> None:
    tavce_folder, official_folder, other = tmp_path / "tavce", tmp_path / "official", tmp_path / "other"
    for folder in (tavce_folder, official_folder, other):
        folder.mkdir()
    (tavce_folder / "pipeline_config.json").write_text("{}")
    (official_folder / "SadTalker_V0.0.2_512.safetensors").write_bytes(b"")
    (other / "model.safetensors").write_bytes(b"")
    assert [detect_layout(f) for f in (tavce_folder, official_folder, other)] == ["tavce", "official", None]
    assert is_tavce_folder(tavce_folder) and not is_tavce_folder(official_folder)
    assert detect_layout(tmp_path / "absent") is None
    assert detect_layout("vinthony/SadTalker-V002rc") is None  # a Hub id is not a local folder


@pytest.mark.parametrize("size", [128, 1024])
def test_unknown_size_is_refused(size: int) -> None:
    from tavce.convert.official import official_filenames
    from tavce.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="256 and 512"):
        official_filenames(size)


def test_locate_weights_tells_tavce_from_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from tavce.convert.layout import locate_weights
    from tests.test_hub import _lay_out_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    tavce_snapshot = _lay_out_cache(
        cache,
        "me/tavce-256",
        {"pipeline_config.json": b"{}", "renderer/config.json": b"{}", "renderer/model.safetensors": b"x"},
    )
    _lay_out_cache(cache, "vinthony/SadTalker-V002rc", {"SadTalker_V0.0.2_256.safetensors": b"x"})
    assert locate_weights("me/tavce-256", cache_dir=cache) == ("tavce", tavce_snapshot)
    assert locate_weights("vinthony/SadTalker-V002rc", cache_dir=cache) == ("official", "vinthony/SadTalker-V002rc")
    assert locate_weights(tavce_snapshot) == ("tavce", tavce_snapshot)
    assert locate_weights(tmp_path) == ("official", tmp_path)
