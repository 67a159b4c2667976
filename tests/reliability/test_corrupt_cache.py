"""Corrupt cache: a damaged weights file gives one line naming it and a fix that works; a tampered .pth runs nothing."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from huggingface_hub import try_to_load_from_cache

from tavce import TalkingHeadPipeline
from tavce.errors import IncompatibleWeightsError, WeightsNotFoundError
from tavce.hub import load_legacy_checkpoint
from tests.helpers import COMMIT

REPO = "someone/tiny-tavce"


def _hub_cache_of(folder: Path, cache: Path, repo_id: str = REPO) -> Path:
    """A Hugging Face cache holding ``folder`` as ``repo_id`` the way downloads leave it: blobs + snapshot links."""
    repo_folder = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_folder / "snapshots" / COMMIT
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo_folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_folder / "refs").mkdir()
    (repo_folder / "refs" / "main").write_text(COMMIT)
    return snapshot


def _truncate(path: Path) -> None:
    target = path.resolve()
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])


def _load_from_cache(cache: Path):
    return TalkingHeadPipeline.from_pretrained(REPO, cache_dir=cache, local_files_only=True)


@pytest.mark.parametrize("damaged", ["renderer/model.safetensors", "renderer/config.json"])
def test_damaged_file_in_the_hub_cache_names_it_and_the_fix(tiny_weights, tmp_path, damaged):
    cache = tmp_path / "hub"
    snapshot = _hub_cache_of(tiny_weights, cache)
    _truncate(snapshot / damaged)
    with pytest.raises(IncompatibleWeightsError) as caught:
        _load_from_cache(cache)
    message = str(caught.value)
    blob = (snapshot / damaged).resolve()
    assert "\n" not in message and message.startswith(f"{snapshot / damaged}: not ")
    assert f"`hf download {REPO} {damaged} --revision {COMMIT} --cache-dir {cache} --force-download`" in message
    assert f"delete {blob} and run the same command again while online" in message

    # The fix works: without the damaged blob the Hub client no longer finds the file in the cache,
    # so the next online run downloads it instead of linking the damaged copy again.
    blob.unlink()
    assert try_to_load_from_cache(REPO, damaged, cache_dir=cache, revision=COMMIT) is None
    with pytest.raises(WeightsNotFoundError):
        _load_from_cache(cache)
    shutil.copyfile(tiny_weights / damaged, blob)  # what the download puts back
    assert _load_from_cache(cache).has_cerl


def test_damaged_file_in_a_tavce_folder_names_it_and_how_to_write_it_again(tiny_weights, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    _truncate(folder / "audio2coeff" / "model.safetensors")
    with pytest.raises(IncompatibleWeightsError) as caught:
        TalkingHeadPipeline.from_pretrained(folder)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{folder / 'audio2coeff' / 'model.safetensors'}: not a valid")
    assert "`tavce convert`" in message and "save_pretrained()" in message


class _CreatesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _tamper(checkpoint: Path, payload: object) -> None:
    """Replace the pickle inside a torch zip checkpoint, keeping its tensor records."""
    with zipfile.ZipFile(checkpoint) as original:
        entries = {info.filename: original.read(info) for info in original.infolist()}
    pickled = next(name for name in entries if name.endswith("/data.pkl"))
    entries[pickled] = pickle.dumps(payload, protocol=2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as tampered:
        for name, data in entries.items():
            tampered.writestr(name, data)
    checkpoint.resolve().write_bytes(buffer.getvalue())


def test_tampered_pth_in_the_hub_cache_runs_nothing(tmp_path):
    official = tmp_path / "official"
    official.mkdir()
    torch.save({"state_dict": {"weight": torch.ones(3)}}, official / "mapping_00229-model.pth.tar")
    snapshot = _hub_cache_of(official, tmp_path / "hub", "vinthony/SadTalker-V002rc")
    checkpoint = snapshot / "mapping_00229-model.pth.tar"
    marker = tmp_path / "pwned"
    _tamper(checkpoint, {"state_dict": _CreatesMarker(marker)})
    with pytest.raises(pickle.UnpicklingError):  # the tampered file really would run code ...
        torch.load(checkpoint, weights_only=True)
    assert not marker.exists()
    torch.load(checkpoint, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(IncompatibleWeightsError, match="refused for safety.*nothing from it was executed"):
        load_legacy_checkpoint(checkpoint)  # ... but tavce's loader never unpickles code
    assert not marker.exists()
