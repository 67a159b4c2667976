"""load_official_components: which files it fetches, safety and argument errors (fast; no full-size weights)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
import torch

from tavce.convert.official import load_official_components, load_official_file, official_filenames
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, WeightsNotFoundError
from tests.helpers import lay_out_hub_cache


def test_files_per_size_and_mode() -> None:
    assert official_filenames(256) == ["SadTalker_V0.0.2_256.safetensors", "mapping_00229-model.pth.tar"]
    assert official_filenames(512, full_mode=True) == [
        "SadTalker_V0.0.2_512.safetensors",
        "mapping_00229-model.pth.tar",
        "mapping_00109-model.pth.tar",
    ]
    assert official_filenames(256, full_mode=True, tavce=True) == [
        "SadTalker_V0.0.2_256.safetensors",
        "mapping_00109-model.pth.tar",
    ]


@pytest.mark.parametrize(
    ("size", "full_mode", "expected"),
    [
        (512, False, ["mapping_00229-model.pth.tar", "SadTalker_V0.0.2_512.safetensors"]),
        (256, True, ["mapping_00109-model.pth.tar", "mapping_00229-model.pth.tar", "SadTalker_V0.0.2_256.safetensors"]),
    ],
)
def test_hub_downloads_only_what_size_and_mode_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, full_mode: bool, expected: list[str]
) -> None:
    import huggingface_hub

    requested: list[str] = []
    not_a_checkpoint = tmp_path / "snapshot"
    not_a_checkpoint.mkdir()

    def fake_download(*, repo_id: str, filename: str, revision=None, **kwargs) -> str:
        assert (repo_id, revision) == ("vinthony/SadTalker-V002rc", "v1")
        requested.append(filename)
        (not_a_checkpoint / filename).write_bytes(b"not a checkpoint")
        return str(not_a_checkpoint / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(IncompatibleWeightsError, match=expected[0]):
        load_official_components(size=size, full_mode=full_mode, revision="v1")
    assert sorted(requested) == sorted(expected)


def test_offline_cache_miss_fails_clearly(tmp_path: Path) -> None:
    lay_out_hub_cache(tmp_path, "org/sadtalker", {"mapping_00229-model.pth.tar": b"x"})
    with pytest.raises(WeightsNotFoundError, match=r"org/sadtalker: .*SadTalker_V0.0.2_256.safetensors.*hf download"):
        load_official_components("org/sadtalker", cache_dir=tmp_path, local_files_only=True)


def test_missing_local_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "SadTalker_V0.0.2_256.safetensors").write_bytes(b"")
    with pytest.raises(WeightsNotFoundError, match="mapping_00229-model.pth.tar"):
        load_official_components(tmp_path)


class _CreatesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_official_pickle_is_refused_before_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"mapping": _CreatesMarker(marker), "epoch": 0}, tmp_path / "mapping_00229-model.pth.tar")
    (tmp_path / "SadTalker_V0.0.2_256.safetensors").write_bytes(b"never read: the mapping fails first")
    with pytest.raises(IncompatibleWeightsError, match="mapping_00229-model.pth.tar: refused for safety"):
        load_official_components(tmp_path)
    with pytest.raises(IncompatibleWeightsError, match="refused for safety"):
        load_official_file(tmp_path / "mapping_00229-model.pth.tar")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # the file really is an unsafe pickle
        torch.load(tmp_path / "mapping_00229-model.pth.tar", weights_only=True)


def test_tavce_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="come in pairs"):
        load_official_components(tmp_path, tavce_correlation=tmp_path / "corr.pth")
    with pytest.raises(InvalidArgumentError, match="trained at 256x256 only"):
        load_official_components(tmp_path, size=512, tavce_correlation="a.pth", tavce_facerender="b.pth")
    with pytest.raises(InvalidArgumentError, match="unknown official file"):
        load_official_file(tmp_path / "model.pth")


def test_plain_generator_as_tavce_facerender_is_refused(tmp_path: Path) -> None:
    """The original loads non-strictly: a face-render checkpoint without fusion layers would run CERL with random ones."""
    from tavce.testing import official_manifest

    manifest = official_manifest("tavce_facerender_latest.pth")
    checkpoint: dict = {}
    for key, entry in manifest.items():
        top, _, inner = key.partition(".")
        if not entry.get("tavce_addition") and not entry.get("optional"):
            checkpoint.setdefault(top, {})[inner] = torch.zeros(1)  # converters rename; shapes do not matter here
    path = tmp_path / "latest.pth"
    torch.save(checkpoint, path)
    with pytest.raises(IncompatibleWeightsError, match="no CERL fusion weights.*random fusion layers"):
        load_official_file(path, "tavce_facerender_latest.pth")
    checkpoint["generator"]["proj1.weight"] = torch.zeros(1)  # an incomplete set is refused too
    torch.save(checkpoint, path)
    with pytest.raises(IncompatibleWeightsError, match="incomplete CERL fusion weights"):
        load_official_file(path, "tavce_facerender_latest.pth")


def test_cerl_off_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    import tavce.convert.official as official

    monkeypatch.setattr(official, "load_official_file", _refuse_sadtalker)
    torch.save({"mapping": {}, "epoch": 0}, tmp_path / "mapping_00229-model.pth.tar")
    (tmp_path / "SadTalker_V0.0.2_256.safetensors").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="tavce.convert.official"), pytest.raises(_Stop):
        load_official_components(tmp_path)
    messages = [record.getMessage() for record in caplog.records if "CERL off" in record.getMessage()]
    assert len(messages) == 1 and "no TAVCE weights" in messages[0]


class _Stop(Exception):
    pass


def _refuse_sadtalker(path, filename=None):
    if Path(path).name.endswith(".safetensors"):
        raise _Stop
    return {"mapping": {}}


def test_wav2lip_file_gives_the_shared_audio_encoder(tmp_path: Path) -> None:
    from tavce.models.audio_encoder import Wav2LipAudioEncoder
    from tavce.models.base import load_state_dict_strict
    from tavce.testing import official_golden_state, write_official_file

    entries = official_golden_state("wav2lip.pth", salt=5)
    path = write_official_file(tmp_path / "wav2lip.pth", entries)
    parts = load_official_file(path)
    assert list(parts) == ["audio_encoder"]
    encoder = Wav2LipAudioEncoder()
    load_state_dict_strict(encoder, parts["audio_encoder"], source="wav2lip")
    original = "state_dict.module.audio_encoder."
    assert torch.equal(encoder.blocks[3].conv.weight, entries[original + "3.conv_block.0.weight"])
    assert torch.equal(encoder.blocks[12].norm.running_var, entries[original + "12.conv_block.1.running_var"])
