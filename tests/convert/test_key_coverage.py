"""Every key of every official file is consumed by a converter or listed ONCE as deliberately unused.

Converters only rename, so the check runs on uninitialised tensors at the manifests'
full shapes (no recipe filling, nothing instantiated): a key is consumed when its
tensor's storage reaches a converted state dict.
"""

from __future__ import annotations

import pytest
import torch

from tavce.convert.files import FILE_CONVERTERS
from tavce.convert.unused_keys import UNUSED_KEYS, unused_entry
from tavce.errors import IncompatibleWeightsError
from tavce.testing import OFFICIAL_FILES, is_bare_file, official_manifest


def _placeholder_checkpoint(filename: str) -> tuple[dict, dict[str, object]]:
    """(checkpoint laid out like the file, flat manifest key -> its value) with every entry, optional ones included."""
    flat: dict[str, object] = {}
    for key, entry in official_manifest(filename).items():
        if entry["dtype"] in ("float32", "int64"):
            flat[key] = torch.empty(entry["shape"], dtype=getattr(torch, entry["dtype"]))
        else:
            flat[key] = {"bookkeeping": entry["dtype"]}
    if filename.endswith(".safetensors") or is_bare_file(filename):
        return dict(flat), flat
    nested: dict = {}
    for key, value in flat.items():
        top, _, inner = key.partition(".")
        if inner:
            nested.setdefault(top, {})[inner] = value
        else:
            nested[top] = value
    return nested, flat


@pytest.mark.parametrize("filename", OFFICIAL_FILES)
def test_every_key_is_consumed_or_listed_unused(filename: str) -> None:
    checkpoint, flat = _placeholder_checkpoint(filename)
    parts = FILE_CONVERTERS[filename](checkpoint, filename)
    consumed = {tensor.untyped_storage().data_ptr() for part in parts.values() for tensor in part.values()}
    neither, both = [], []
    for key, value in flat.items():
        used = isinstance(value, torch.Tensor) and value.untyped_storage().data_ptr() in consumed
        listed = unused_entry(filename, key) is not None
        if not used and not listed:
            neither.append(key)
        if used and listed:
            both.append(key)
    assert not neither, f"{filename}: keys neither converted nor in the unused table: {neither[:10]}"
    assert not both, f"{filename}: keys converted although listed unused: {both[:10]}"
    converted = sum(len(part) for part in parts.values())
    assert converted == len(consumed) > 0  # one output tensor per consumed key, none duplicated


@pytest.mark.parametrize("filename", OFFICIAL_FILES)
def test_every_unused_row_matches_the_manifest(filename: str) -> None:
    keys = list(official_manifest(filename))
    for entry in UNUSED_KEYS[filename]:
        assert any(entry.matches(key) for key in keys), f"{filename}: row {entry.pattern!r} matches no key"


def test_an_unknown_key_in_a_read_sub_dict_is_refused() -> None:
    checkpoint, _ = _placeholder_checkpoint("mapping_00229-model.pth.tar")
    checkpoint["mapping"]["extra_head.weight"] = torch.zeros(3)
    with pytest.raises(IncompatibleWeightsError, match="extra_head.weight"):
        FILE_CONVERTERS["mapping_00229-model.pth.tar"](checkpoint, "mapping_00229-model.pth.tar")


def test_unknown_sub_model_in_the_safetensors_is_refused() -> None:
    tensors = {"kp_extractor.kp.weight": torch.zeros(1), "lipsync.head.weight": torch.zeros(1)}
    with pytest.raises(IncompatibleWeightsError, match="lipsync.head.weight"):
        FILE_CONVERTERS["SadTalker_V0.0.2_256.safetensors"](tensors, "SadTalker_V0.0.2_256.safetensors")


def test_missing_top_level_entry_is_refused() -> None:
    with pytest.raises(IncompatibleWeightsError, match="no 'mapping' entry.*generator"):
        FILE_CONVERTERS["mapping_00109-model.pth.tar"]({"generator": {}}, "mapping_00109-model.pth.tar")


def test_ddp_prefixes_of_the_correlation_checkpoint_are_removed() -> None:
    filename = "tavce_correlation_epoch_N.pth"
    plain, _ = _placeholder_checkpoint(filename)
    wrapped = {
        top: ({f"module.{key}": value for key, value in entries.items()} if isinstance(entries, dict) else entries)
        for top, entries in plain.items()
    }
    expected = FILE_CONVERTERS[filename](plain, filename)
    converted = FILE_CONVERTERS[filename](wrapped, filename)
    assert {part: list(sd) for part, sd in converted.items()} == {part: list(sd) for part, sd in expected.items()}


def test_docs_show_the_same_unused_table() -> None:
    from pathlib import Path

    from tavce.convert.unused_keys import unused_table_markdown

    page = (Path(__file__).parents[2] / "docs" / "weights.md").read_text()
    shown = page.split("<!-- unused-keys:start -->\n")[1].split("\n<!-- unused-keys:end -->")[0]
    assert shown == unused_table_markdown()


def test_a_gfpgan_file_with_params_instead_of_params_ema_converts_the_same() -> None:
    filename = "GFPGANv1.4.pth"
    checkpoint, _ = _placeholder_checkpoint(filename)
    expected = FILE_CONVERTERS[filename](checkpoint, filename)
    converted = FILE_CONVERTERS[filename]({"params": checkpoint["params_ema"]}, filename)
    assert list(converted["restorer"]) == list(expected["restorer"])


@pytest.mark.parametrize("filename", ["GFPGANv1.4.pth", "parsing_parsenet.pth"])
def test_an_enhancer_file_holding_a_non_tensor_entry_is_refused(filename: str) -> None:
    checkpoint, _ = _placeholder_checkpoint(filename)
    state = checkpoint.get("params_ema", checkpoint)
    state[next(iter(state))] = "not a tensor"
    with pytest.raises(IncompatibleWeightsError, match="not tensors.*str"):
        FILE_CONVERTERS[filename](checkpoint, filename)
