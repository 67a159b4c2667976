"""Test helpers that ship with tavce, for our tests and for users' own.

``reference_tensor`` / ``reference_state_dict`` implement the deterministic
weights recipe the golden cases were recorded with: the same (key, shape, salt)
gives the same tensor on any machine with PyTorch, so a checkpoint can be
rebuilt under its original key names without downloading anything.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping

import numpy as np
import torch

__all__ = [
    "reference_tensor",
    "reference_state_dict",
    "official_manifest",
    "make_official_checkpoint",
    "official_golden_state",
    "write_official_file",
    "is_bare_file",
    "face_landmarks",
    "face_photo",
    "tiny_components",
    "make_tiny_checkpoint",
    "make_synthetic_videos",
    "synthetic_face_landmarks",
]

_SPECTRAL_POWER_ITERATIONS = 30


def reference_tensor(key: str, shape: Iterable[int], salt: int = 0) -> torch.Tensor:
    """The recipe tensor for one state-dict entry (float32, or int64 for ``num_batches_tracked``)."""
    shape = tuple(int(s) for s in shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()) ^ salt)
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
    if leaf == "running_mean":
        values = 0.1 * uniform
    elif leaf == "running_var":
        values = 1 + 0.25 * (uniform + 1)
    elif len(shape) >= 2:
        fan_in = math.prod(shape) // shape[0]
        values = uniform * math.sqrt(3.0 / fan_in)
    elif len(shape) == 1:
        values = 0.1 * uniform if leaf == "bias" else 1 + 0.1 * uniform
    else:
        values = 0.1 * uniform
    return values.to(torch.float32)


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm().clamp_min(1e-12)


def reference_state_dict(shapes: Mapping[str, Iterable[int]], salt: int = 0) -> dict[str, torch.Tensor]:
    """Recipe tensors for every key of ``shapes`` (original key names), spectral-norm u/v settled.

    For each ``<p>.weight_orig`` with ``<p>.weight_u`` and ``<p>.weight_v`` beside it,
    u and v are replaced by 30 float64 power iterations on ``weight_orig`` reshaped
    to (out, -1), starting from the recipe u, as the recorded checkpoints have them.
    """
    state = {key: reference_tensor(key, shape, salt) for key, shape in shapes.items()}
    for key in [k for k in state if k.endswith(".weight_orig")]:
        prefix = key[: -len(".weight_orig")]
        if f"{prefix}.weight_u" not in state or f"{prefix}.weight_v" not in state:
            continue
        matrix = state[key].to(torch.float64).reshape(state[key].shape[0], -1)
        left = _unit(state[f"{prefix}.weight_u"].to(torch.float64))
        right = _unit(matrix.t() @ left)
        for _ in range(_SPECTRAL_POWER_ITERATIONS):
            right = _unit(matrix.t() @ left)
            left = _unit(matrix @ right)
        state[f"{prefix}.weight_u"] = left.to(torch.float32)
        state[f"{prefix}.weight_v"] = right.to(torch.float32)
    return state


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

    from tavce.hub import save_safetensors

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
        tensors = reference_state_dict(tensor_shapes, salt)
        path = folder / filename
        if filename.endswith(".safetensors"):
            save_safetensors(tensors, path)
        elif is_bare_file(filename):
            torch.save(tensors, path)
        else:
            nested: dict = {}
            for key, entry in manifest.items():
                top, _, inner = key.partition(".")
                if key in tensors:
                    nested.setdefault(top, {})[inner] = tensors[key]
                elif key not in tensor_shapes and entry.get("dtype") not in ("float32", "int64"):
                    nested[top] = _non_tensor_entry(entry["dtype"])
            torch.save(nested, path)
        written.append(path)
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


# ------------------------------------------------------------------ synthetic portraits
def face_landmarks(centre: tuple[float, float], scale: float, roll_degrees: float = 0.0) -> np.ndarray:
    """(68, 2) float32 landmarks (y down) of the standard face, ``scale`` pixels per unit, rotated in-plane."""
    from tavce.preprocess.standard_landmarks import STANDARD_LANDMARKS_3D

    angle = np.deg2rad(roll_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = STANDARD_LANDMARKS_3D[:, :2].astype(np.float64) * [1, -1] @ rotation.T
    return (points * scale + np.asarray(centre)).astype(np.float32)


def face_photo(width: int, height: int, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 synthetic portrait: smooth gradient background, a skin-coloured face ellipse and dark landmark dots."""
    import cv2

    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    photo = np.stack([columns / width * 200 + 20, rows / height * 200 + 20, np.full_like(rows, 90)], -1)
    photo = (photo + rng.normal(0, 4, photo.shape)).clip(0, 255).astype(np.uint8)
    centre = landmarks.mean(axis=0)
    axes = (landmarks.max(axis=0) - landmarks.min(axis=0)) * 0.6
    cv2.ellipse(photo, (int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])), 0, 0, 360, (225, 180, 150), -1)
    for x, y in landmarks:
        cv2.circle(photo, (int(round(x)), int(round(y))), 2, (60, 30, 30), -1)
    return photo


_TINY_KEYPOINT_DETECTOR = dict(base_channels=4, max_channels=16, num_blocks=2, reshape_channels=64, reshape_depth=4)
_TINY_MAPPING = dict(hidden_channels=8)
_TINY_GENERATOR = dict(
    base_channels=4,
    max_channels=16,
    volume_channels=4,
    volume_depth=4,
    num_volume_blocks=1,
    motion_base_channels=4,
    motion_num_blocks=2,
    motion_max_channels=16,
    motion_compressed_channels=2,
    decoder_hidden_channels=8,
    decoder_num_middle_blocks=1,
    decoder_up_channels=(8, 4),
    spade_hidden_channels=4,
)
_TINY_AUDIO2COEFF = dict(pose_vae=dict(seq_len=8, latent_dim=4, decoder_hidden_dims=(8,), resunet_channels=(2, 3, 4, 5)))


def _recipe_filled(module, salt: int):
    """``module`` with every tensor replaced by the recipe (seeded by key and salt; the global RNG is untouched)."""
    from tavce.models.base import load_state_dict_strict

    shapes = {key: tensor.shape for key, tensor in module.state_dict().items()}
    load_state_dict_strict(module, reference_state_dict(shapes, salt), source=type(module).__name__)
    return module.eval()


def tiny_components(seed: int = 0, *, cerl: bool = True) -> dict:
    """Tiny random components of every kind the pipeline uses, named as in a tavce folder.

    Sizes are far below the official ones (a few MB in all; the Wav2Lip audio encoders
    keep their fixed architecture) so that a whole generation runs in seconds on a CPU.
    The same ``seed`` gives the same weights on any machine.
    """
    import dataclasses

    from tavce.models.audio2coeff import SadTalkerAudio2Coeff, SadTalkerAudio2CoeffConfig
    from tavce.models.base import config_from_dict
    from tavce.models.face_recon import FaceReconConfig, FaceReconNet
    from tavce.models.renderer.generator import GeneratorConfig
    from tavce.models.renderer.keypoint_detector import KeypointDetectorConfig
    from tavce.models.renderer.mapping_net import MappingNetConfig
    from tavce.models.renderer.renderer import CERLRenderer, CERLRendererConfig
    from tavce.models.tavc import (
        MouthEncoder,
        MouthEncoderConfig,
        TAVCAudioEncoder,
        TAVCAudioEncoderConfig,
        TAVCMetric,
    )
    from tavce.preprocess import FacePreprocessor

    keypoints, relationship_dim = 3, 4
    mapping = MappingNetConfig(**_TINY_MAPPING, num_keypoints=keypoints)
    renderer = CERLRendererConfig(
        keypoint_detector=KeypointDetectorConfig(**_TINY_KEYPOINT_DETECTOR, num_keypoints=keypoints),
        mapping=mapping,
        generator=GeneratorConfig(**_TINY_GENERATOR, num_keypoints=keypoints, cerl=cerl, relationship_dim=relationship_dim),
        # As with the official weights: SadTalker has a full-mode MappingNet, TAVCE does not.
        full_mode_mapping=None if cerl else dataclasses.replace(mapping, coeff_dim=73),
    )
    components = {
        "preprocessor": FacePreprocessor(
            face_recon=FaceReconNet(FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=4))
        ),
        "audio2coeff": SadTalkerAudio2Coeff(config_from_dict(SadTalkerAudio2CoeffConfig, _TINY_AUDIO2COEFF)),
        "renderer": CERLRenderer(renderer),
    }
    if cerl:
        components["metric"] = TAVCMetric(
            audio_encoder=TAVCAudioEncoder(TAVCAudioEncoderConfig(embedding_dim=relationship_dim)),
            mouth_encoder=MouthEncoder(
                MouthEncoderConfig(image_size=32, stem_channels=4, stage_channels=(4, 8), blocks_per_stage=(1, 1), embedding_dim=relationship_dim)
            ),
        )
    return {name: _recipe_filled(module, seed) for name, module in components.items()}


def make_tiny_checkpoint(folder, *, seed: int = 0, cerl: bool = True, size: int = 256):
    """Write a tiny random tavce weights folder (see :func:`tiny_components`) for fast pipeline tests.

    Loads with :func:`tavce.components.load_components` and ``TalkingHeadPipeline.from_pretrained``.

    Args:
        folder: destination (created).
        seed: weights seed; the same seed writes the same tensors.
        cerl: include the CERL fusion layers and the TAVC metric (else a full-mode MappingNet).
        size: the crop size recorded in the preprocessing constants (256 or 512).

    Returns:
        The folder, as a ``Path``.
    """
    from tavce.components import save_components
    from tavce.convert.export import preprocessing_constants

    return save_components(
        folder,
        tiny_components(seed, cerl=cerl),
        preprocessing_constants(size),
        provenance={"source": "tavce.testing.make_tiny_checkpoint", "seed": seed, "size": size, "cerl": cerl},
    )


def make_synthetic_videos(folder, n: int = 2, seconds: float = 2.0, seed: int = 0, *, size: int = 128):
    """Tiny talking-head mp4s whose mouth follows their audio; see :func:`tavce.synthetic_video.make_synthetic_videos`.

    Returns the list of written paths (``folder/talker_000.mp4``, ...).
    """
    from tavce.synthetic_video import make_synthetic_videos as make  # cv2 and the preprocessing on first use only

    return make(folder, n, seconds, seed, size=size)


def synthetic_face_landmarks(size: int, opening: float = 0.0):
    """(68, 2) landmarks of the synthetic videos' face; see :func:`tavce.synthetic_video.synthetic_face_landmarks`."""
    from tavce.synthetic_video import synthetic_face_landmarks as landmarks

    return landmarks(size, opening)
