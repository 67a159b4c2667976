"""The tavce weights folder: components -> save_components -> load_components is bit-exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tavce.components import load_components, save_components
from tavce.convert.export import preprocessing_constants
from tavce.convert.official import detect_layout, is_tavce_folder
from tavce.errors import ComponentNotSerializableError, IncompatibleWeightsError
from tavce.testing import tiny_components


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and buffer drawn at random, so a load that drops or mixes tensors shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return module.eval()


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    components = {name: _randomised(module, seed) for seed, (name, module) in enumerate(tiny_components(0).items())}
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
    assert torch.equal(loaded["preprocessor"].face_recon(faces), components["preprocessor"].face_recon(faces))
    assert json.loads((folder / "pipeline_config.json").read_text())["provenance"] == {"size": 256, "cerl": False}


def test_a_component_that_cannot_be_saved_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    components = dict(tiny_components(0), renderer=object())
    with pytest.raises(ComponentNotSerializableError, match="'renderer' is a object"):
        save_components(tmp_path / "weights", components, preprocessing_constants(256))
    assert not (tmp_path / "weights").exists()
    components = tiny_components(0)
    components["metric"].mouth_encoder = torch.nn.Identity()
    with pytest.raises(ComponentNotSerializableError, match="TAVCMetric.mouth_encoder is a Identity"):
        save_components(tmp_path / "weights", components, preprocessing_constants(256))
    assert not (tmp_path / "weights").exists()


def test_a_folder_of_an_older_layout_is_refused_with_the_fix(tmp_path: Path) -> None:
    folder = save_components(tmp_path / "weights", tiny_components(0), preprocessing_constants(256))
    config = json.loads((folder / "pipeline_config.json").read_text())
    config["components"]["relationship_encoder"] = config["components"].pop("metric")
    (folder / "pipeline_config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleWeightsError, match="relationship_encoder.*tavce convert"):
        load_components(folder)


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
    from tests.helpers import lay_out_hub_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    tavce_snapshot = lay_out_hub_cache(
        cache,
        "me/tavce-256",
        {"pipeline_config.json": b"{}", "renderer/config.json": b"{}", "renderer/model.safetensors": b"x"},
    )
    lay_out_hub_cache(cache, "vinthony/SadTalker-V002rc", {"SadTalker_V0.0.2_256.safetensors": b"x"})
    assert locate_weights("me/tavce-256", cache_dir=cache) == ("tavce", tavce_snapshot)
    assert locate_weights("vinthony/SadTalker-V002rc", cache_dir=cache) == ("official", "vinthony/SadTalker-V002rc")
    assert locate_weights(tavce_snapshot) == ("tavce", tavce_snapshot)
    assert locate_weights(tmp_path) == ("official", tmp_path)
