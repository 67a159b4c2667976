"""tavce.hub: safetensors round trip, safe legacy loading, local folders and the offline Hub cache."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, OutputError, WeightsNotFoundError
from tavce.hub import load_legacy_checkpoint, load_safetensors, resolve_weights, save_safetensors
from tests.helpers import lay_out_hub_cache



def test_safetensors_round_trip_is_atomic_and_handles_views(tmp_path: Path) -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = {"weight": base.t(), "tied": base, "bias": torch.ones(2)}  # non-contiguous + shared storage
    path = save_safetensors(state, tmp_path / "model.safetensors")
    loaded = load_safetensors(path)
    assert set(loaded) == {"weight", "tied", "bias"}
    assert torch.equal(loaded["weight"], base.t()) and torch.equal(loaded["tied"], base)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write weights"):
        save_safetensors({"weight": torch.ones(1)}, tmp_path / "missing" / "model.safetensors")
    with pytest.raises(Exception):
        save_safetensors({"bad": "not a tensor"}, tmp_path / "model.safetensors")  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_load_safetensors_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="not found"):
        load_safetensors(tmp_path / "absent.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(IncompatibleWeightsError, match="corrupt.safetensors.*download it again"):
        load_safetensors(corrupt)


def test_legacy_checkpoint_loads_nested_state_dicts(tmp_path: Path) -> None:
    path = tmp_path / "model.pth.tar"
    torch.save({"generator": {"conv.weight": torch.ones(2, 3)}, "epoch": 7}, path)
    checkpoint = load_legacy_checkpoint(path)
    assert checkpoint["epoch"] == 7
    assert torch.equal(checkpoint["generator"]["conv.weight"], torch.ones(2, 3))


class _CreatesMarker:
    """Unpickling this calls open(marker, "w"), i.e. runs code with a visible side effect."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    # The crafted file really runs code under plain pickle (so the test can fail) ...
    probe = tmp_path / "probe.pkl"
    probe.write_bytes(pickle.dumps(_CreatesMarker(tmp_path / "probe-ran")))
    pickle.loads(probe.read_bytes()).close()
    assert (tmp_path / "probe-ran").exists()
    # ... but the checkpoint loader refuses it before anything executes.
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _CreatesMarker(marker)}, path)
    with pytest.raises(IncompatibleWeightsError, match="refused for safety.*nothing from it was executed"):
        load_legacy_checkpoint(path)
    assert not marker.exists()


def test_legacy_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        load_legacy_checkpoint(tmp_path / "absent.pth")
    truncated = tmp_path / "truncated.pth"
    torch.save({"weight": torch.ones(100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(IncompatibleWeightsError, match="truncated.pth"):
        load_legacy_checkpoint(truncated)
    not_dict = tmp_path / "tensor.pth"
    torch.save(torch.ones(3), not_dict)
    with pytest.raises(IncompatibleWeightsError, match="expected a dictionary"):
        load_legacy_checkpoint(not_dict)
    assert zipfile.is_zipfile(not_dict)


def test_local_folder_is_used_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("a local folder must not touch the Hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.safetensors").write_bytes(b"x")
    assert resolve_weights(str(tmp_path), ["sub/a.safetensors"]) == tmp_path
    with pytest.raises(WeightsNotFoundError, match="missing weight file.*b.safetensors"):
        resolve_weights(tmp_path, ["sub/a.safetensors", "b.safetensors"])
    with pytest.raises(WeightsNotFoundError, match="folder not found"):
        resolve_weights(tmp_path / "absent", "a.safetensors")
    with pytest.raises(InvalidArgumentError):
        resolve_weights(tmp_path)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, both in the environment and in huggingface_hub's import-time constant."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_offline_cache_hit(tmp_path: Path, offline: None) -> None:
    snapshot = lay_out_hub_cache(tmp_path, "org/talking", {"renderer/model.safetensors": b"x", "config.json": b"{}"})
    folder = resolve_weights("org/talking", ["config.json", "renderer/model.safetensors"], cache_dir=tmp_path)
    assert folder == snapshot
    assert resolve_weights("org/talking", allow_patterns="renderer/*", cache_dir=tmp_path) == snapshot


def test_offline_cache_miss_tells_the_fix(tmp_path: Path, offline: None) -> None:
    lay_out_hub_cache(tmp_path, "org/talking", {"config.json": b"{}"})
    with pytest.raises(WeightsNotFoundError, match=r"HF_HUB_OFFLINE.*hf download org/talking") as caught:
        resolve_weights("org/talking", "model.safetensors", cache_dir=tmp_path)
    assert caught.value.__cause__ is not None
    with pytest.raises(WeightsNotFoundError, match="hf download org/absent"):
        resolve_weights("org/absent", "model.safetensors", cache_dir=tmp_path)
    with pytest.raises(WeightsNotFoundError, match="no file matches"):
        resolve_weights("org/talking", allow_patterns="*.safetensors", cache_dir=tmp_path)


def test_local_files_only_without_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    snapshot = lay_out_hub_cache(tmp_path, "org/talking", {"model.safetensors": b"x"})
    assert resolve_weights("org/talking", "model.safetensors", cache_dir=tmp_path, local_files_only=True) == snapshot
    with pytest.raises(WeightsNotFoundError, match="local_files_only"):
        resolve_weights("org/talking", "other.safetensors", cache_dir=tmp_path, local_files_only=True)


def test_a_module_loads_its_safetensors_tensor_by_tensor_with_strict_keys(tmp_path):
    from tavce.models.base import load_safetensors_strict

    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    path = save_safetensors(source.state_dict(), tmp_path / "linear.safetensors")
    load_safetensors_strict(target, path, source="linear")
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    weight_only = save_safetensors({"weight": source.weight}, tmp_path / "weight.safetensors")
    with pytest.raises(IncompatibleWeightsError, match=r"missing: bias.*shape mismatch: weight: file \(2, 3\) vs model"):
        load_safetensors_strict(torch.nn.Linear(3, 4), weight_only, source="weight")


def test_safetensors_tensors_read_into_a_module_s_own_tensors_cast_and_versioned(tmp_path):
    from tavce.hub import open_safetensors

    values = torch.randn(4, 5, dtype=torch.float64)
    path = save_safetensors({"weight": values.float(), "empty": torch.zeros(0)}, tmp_path / "w.safetensors")
    same, cast = torch.zeros(4, 5), torch.zeros(4, 5, dtype=torch.bfloat16)
    version = same._version
    with open_safetensors(path) as (shapes, read):
        assert shapes == {"weight": (4, 5), "empty": (0,)}
        assert read("weight", out=same) is same and same._version > version  # caches keyed on versions see the load
        read("weight", out=cast)
        assert read("empty").shape == (0,)
    assert torch.equal(same, values.float()) and torch.equal(cast, values.float().bfloat16())
