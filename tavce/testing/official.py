"""Official-layout checkpoint files (SadTalker / TAVCE names and nesting) filled with recipe weights.

The key names, shapes and bookkeeping entries come from the manifests bundled in
``tavce/convert/manifests``; the tensors from :mod:`tavce.testing.recipe`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tavce.testing.recipe import reference_state_dict

__all__ = [
    "OFFICIAL_FILES",
    "official_manifest",
    "make_official_checkpoint",
    "official_golden_state",
    "write_official_file",
    "is_bare_file",
]

OFFICIAL_FILES = (
    "SadTalker_V0.0.2_256.safetensors",
    "SadTalker_V0.0.2_512.safetensors",
    "mapping_00229-model.pth.tar",
    "mapping_00109-model.pth.tar",
    "facevid2vid_00189-model.pth.tar",
    "wav2lip.pth",
    "tavce_correlation_epoch_N.pth",
    "tavce_facerender_latest.pth",
    "GFPGANv1.4.pth",
    "parsing_parsenet.pth",
)


def official_manifest(filename: str) -> dict[str, dict]:
    """Key -> {shape, dtype, flags} of an official checkpoint file (bundled with tavce)."""
    import json
    from importlib import resources

    if filename not in OFFICIAL_FILES:
        raise ValueError(f"unknown official file {filename!r}; known: {', '.join(OFFICIAL_FILES)}")
    text = resources.files("tavce.convert").joinpath("manifests", f"{filename}.json").read_text()
    return json.loads(text)


def is_bare_file(filename: str) -> bool:
    """Whether the official pickled file is a plain state dict (its manifest marks every entry ``bare``)."""
    return all(entry.get("bare") for entry in official_manifest(filename).values())


def _non_tensor_entry(dtype: str):
    # Stand-ins for the bookkeeping entries of the official pickles; all load with weights_only=True.
    if dtype == "python int":
        return 0
    if "Adam" in dtype:
        return {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.999), "params": []}]}
    return {"step_size": 1, "gamma": 0.1, "last_epoch": 0}


def make_official_checkpoint(
    folder,
    files=OFFICIAL_FILES,
    *,
    salt: int = 0,
    include_optional: bool = False,
):
    """Write official-layout checkpoint files filled with recipe weights at the full manifest shapes.

    Args:
        folder: destination folder (created).
        files: which official file names to write (default: all of them; the two
            SadTalker safetensors are about 725 MB each).
        salt: recipe salt (the golden cases use the salt in their json).
        include_optional: also write entries the manifests mark ``optional`` (discriminators).

    Returns:
        The list of written paths. ``.safetensors`` files are flat; the pickled files are
        nested dicts (``{'mapping': state_dict, 'epoch': 0}`` …) saved with ``torch.save``.
    """
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename in files:
        manifest = official_manifest(filename)
        tensor_shapes = {
            key: entry["shape"]
            for key, entry in manifest.items()
            if entry.get("dtype") in ("float32", "int64") and (include_optional or not entry.get("optional"))
        }
        entries = {
            key: _non_tensor_entry(entry["dtype"])
            for key, entry in manifest.items()
            if entry.get("dtype") not in ("float32", "int64")
        }
        entries.update(reference_state_dict(tensor_shapes, salt))
        written.append(write_official_file(folder / filename, entries))
    return written


def official_golden_state(filename: str, salt: int = 0, *, include_optional: bool = False) -> dict[str, object]:
    """Flat entries of an official file whose tensors are the golden cases' weights.

    The golden cases fill each module with the recipe under the module's own key
    names (``first.0.weight``), while :func:`make_official_checkpoint` seeds by the
    file's key (``mapping.first.0.weight``). Here every tensor is seeded by its key
    inside its sub-model (``audio2exp.``, ``mapping`` ...), so a file written from this
    state holds exactly the weights a golden case with the same salt used; converted
    modules can then be compared with that case's recorded outputs.
    """
    manifest = official_manifest(filename)
    groups: dict[str, dict[str, list[int]]] = {}
    entries: dict[str, object] = {}
    for key, entry in manifest.items():
        if entry.get("optional") and not include_optional:
            continue
        if entry.get("bare") and entry.get("dtype") in ("float32", "int64"):
            groups.setdefault("", {})[key] = entry["shape"]
        elif entry.get("dtype") in ("float32", "int64"):
            # sub-model = top-level key (pickles) or first name segment (safetensors)
            sub_model, _, inner = key.partition(".")
            groups.setdefault(sub_model, {})[inner] = entry["shape"]
        else:
            entries[key] = _non_tensor_entry(entry["dtype"])
    for prefix, shapes in groups.items():
        for inner, tensor in reference_state_dict(shapes, salt).items():
            entries[f"{prefix}.{inner}" if prefix else inner] = tensor
    return entries


def write_official_file(path, entries: Mapping[str, object]):
    """Write flat manifest-style entries in an official file's layout (flat safetensors, or nested pickle).

    For pickled files the first dot of a key separates the top-level dict key, except in
    bare files (a plain state dict, see :func:`is_bare_file`), written as they are.
    """
    from pathlib import Path

    from tavce.hub import save_safetensors

    path = Path(path)
    if path.name.endswith(".safetensors"):
        return save_safetensors(dict(entries), path)
    if path.name in OFFICIAL_FILES and is_bare_file(path.name):
        torch.save(dict(entries), path)
        return path
    nested: dict = {}
    for key, value in entries.items():
        top, _, inner = key.partition(".")
        if inner:
            nested.setdefault(top, {})[inner] = value
        else:
            nested[top] = value
    torch.save(nested, path)
    return path
