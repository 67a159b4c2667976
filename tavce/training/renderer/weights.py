"""Initial weights of stage 2: official SadTalker / face-vid2vid / TAVCE files or a tavce weights folder.

TAVCE starts stage 2 from a face-vid2vid checkpoint and loads it **non-strictly**: the
generator has no CERL fusion layers there, so they start from their random
initialisation. :func:`read_renderer_parts` reads every source into tavce-named
state dicts per part (``kp_detector``, ``mapping``, ``generator``, and ``he_estimator`` /
``discriminator`` where a pickled file holds them; later sources override earlier ones),
and :func:`load_part` loads one part into its training module with exactly that
leniency: keys the file lacks keep their initialisation and are reported, while a key
the module does not have, or a shape that differs, is an error.

Official files are read through :func:`tavce.convert.load_official_file` (one rename
table per family, ``weights_only=True`` for pickles). A tavce folder contributes its
``renderer`` component, whose generator was saved for inference with the spectral
normalisation folded; it is unfolded here (``weight_orig`` = the folded weight, u and v
its singular vectors, so σ = 1 and the effective weight is unchanged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError
from tavce.models.renderer.spectral import (
    LEFT_VECTOR,
    ORIGINAL_WEIGHT,
    RIGHT_VECTOR,
    fold_spectral_norm,
    spectral_vectors,
)

__all__ = [
    "RENDERER_PARTS",
    "InitialWeightsReport",
    "WeightsSource",
    "load_metric",
    "load_part",
    "read_renderer_parts",
    "unfold_spectral_norm",
]

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
RENDERER_PARTS = ("kp_detector", "mapping", "generator", "he_estimator", "discriminator")
"""Parts stage 2 initialises, by the converters' part names."""

WeightsSource = str | Path | tuple[str | Path, str]
"""A tavce folder, an official file under its official name, or (file, official name) for a renamed file."""


@dataclass
class InitialWeightsReport:
    """What the initial weights covered.

    Attributes:
        sources: the files / folders read, in order.
        loaded: part → number of tensors loaded.
        fresh: part → keys that kept their initialisation (e.g. the CERL layers from a
            face-vid2vid or SadTalker generator, or a whole part no source holds).
    """

    sources: list[str] = field(default_factory=list)
    loaded: dict[str, int] = field(default_factory=dict)
    fresh: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per part: loaded count and fresh keys (shortened)."""
        lines = []
        for part in sorted(set(self.loaded) | set(self.fresh)):
            fresh = self.fresh.get(part, [])
            shown = ", ".join(fresh[:6]) + (f", … ({len(fresh)} in all)" if len(fresh) > 6 else "")
            lines.append(f"{part}: {self.loaded.get(part, 0)} tensors loaded" + (f"; fresh: {shown}" if fresh else ""))
        return "\n".join(lines)


def unfold_spectral_norm(state_dict: Mapping[str, torch.Tensor], expected_keys: Iterable[str]) -> StateDict:
    """Turn folded ``<p>.weight`` entries back into spectral-norm triples where the module expects them.

    ``weight_orig`` = W, and u, v from power iterations on W (float64), so that the
    module's σ = uᵀWv is W's largest singular value; a folded W has σ ≈ 1, so the
    spectral-norm module computes (almost exactly) W again.
    """
    unfolded = dict(state_dict)
    for key in expected_keys:
        if not key.endswith(ORIGINAL_WEIGHT):
            continue
        prefix = key[: -len(ORIGINAL_WEIGHT)]
        if key in unfolded or f"{prefix}.weight" not in unfolded:
            continue
        weight = unfolded.pop(f"{prefix}.weight")
        left, right = spectral_vectors(weight)
        unfolded[key] = weight
        unfolded[prefix + LEFT_VECTOR] = left.to(weight.dtype)
        unfolded[prefix + RIGHT_VECTOR] = right.to(weight.dtype)
    return unfolded


def load_part(module: nn.Module, state_dict: Mapping[str, torch.Tensor], part: str) -> tuple[int, list[str]]:
    """Load ``state_dict`` non-strictly: missing keys keep their initialisation.

    Spectral-norm layouts are matched to the module (folded ↔ triples).

    Returns:
        (tensors loaded, sorted keys left fresh).

    Raises:
        IncompatibleWeightsError: keys the module does not have, or mismatched shapes.
    """
    expected = module.state_dict()
    state = dict(state_dict)
    if any(key.endswith(ORIGINAL_WEIGHT) for key in expected):
        state = unfold_spectral_norm(state, expected)
    elif any(key.endswith(ORIGINAL_WEIGHT) for key in state):
        state = fold_spectral_norm(state)
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(state) & set(expected)
        if tuple(state[key].shape) != tuple(expected[key].shape)
    )
    if unexpected or mismatched:
        problems = "; ".join(
            f"{label}: {', '.join(keys[:6])}{' …' if len(keys) > 6 else ''}"
            for label, keys in (("unexpected", unexpected), ("shape mismatch", mismatched))
            if keys
        )
        raise IncompatibleWeightsError(
            f"initial {part} weights do not fit the training {type(module).__name__} ({problems}); "
            "use weights of the same architecture (official sizes, or the renderer config they were saved with)"
        )
    module.load_state_dict(state, strict=False)
    return len(state), sorted(set(expected) - set(state))


def _official_training_parts(path: Path) -> dict[str, StateDict]:
    """The training-only parts (he_estimator, discriminator) a pickled official file holds, in tavce names."""
    from tavce.convert.renderer import convert_discriminator, convert_he_estimator
    from tavce.hub import load_legacy_checkpoint

    if path.suffix == ".safetensors":
        return {}
    checkpoint = load_legacy_checkpoint(path)
    parts = {}
    for part, convert in (("he_estimator", convert_he_estimator), ("discriminator", convert_discriminator)):
        if isinstance(checkpoint.get(part), Mapping):
            parts[part] = convert(checkpoint[part], source=f"{path} {part}")
    return parts


def _renderer_folder_parts(folder: Path) -> dict[str, StateDict]:
    """kp_detector, mapping and generator of a tavce folder's ``renderer`` component."""
    from tavce.components import read_pipeline_config
    from tavce.models.base import resolve_component_class

    recorded = read_pipeline_config(folder).get("components", {})
    if "renderer" not in recorded:
        raise IncompatibleWeightsError(f"{folder}: the tavce folder has no renderer component to start stage 2 from")
    renderer = resolve_component_class(recorded["renderer"], folder).from_pretrained(folder / "renderer")
    return {
        "kp_detector": renderer.keypoint_detector.state_dict(),
        "mapping": renderer.mapping.state_dict(),
        "generator": renderer.generator.state_dict(),
    }


def read_renderer_parts(sources: Sequence[WeightsSource]) -> tuple[dict[str, StateDict], list[str]]:
    """Read every source into ``{part: tavce state dict}`` (renderer parts only; later sources win).

    Args:
        sources: tavce folders (``pipeline_config.json``), official files under their official
            names (``SadTalker_V0.0.2_256.safetensors``, ``mapping_00229-model.pth.tar``,
            ``facevid2vid_00189-model.pth.tar``, ``tavce_facerender_latest.pth``), or
            ``(path, official name)`` for a renamed file (e.g. TAVCE's ``00000189-checkpoint.pth.tar``).

    Returns:
        (parts, the sources read as strings).

    Raises:
        WeightsNotFoundError / IncompatibleWeightsError: from the readers; InvalidArgumentError for an
        unknown file name.
    """
    from tavce.convert.files import FILE_CONVERTERS
    from tavce.convert.layout import is_tavce_folder
    from tavce.convert.official import load_official_file

    parts: dict[str, StateDict] = {}
    read: list[str] = []
    for source in sources:
        path, name = (Path(source[0]), source[1]) if isinstance(source, tuple) else (Path(source), None)
        if path.is_dir():
            if not is_tavce_folder(path):
                raise InvalidArgumentError(
                    f"{path}: a folder that is not a tavce weights folder; pass the official files themselves "
                    "(e.g. .../SadTalker_V0.0.2_256.safetensors) or a folder written by `tavce convert`"
                )
            found = _renderer_folder_parts(path)
        else:
            name = name or path.name
            if name not in FILE_CONVERTERS:
                raise InvalidArgumentError(
                    f"{path}: unknown official file {name!r}; pass (path, official name) with one of "
                    f"{', '.join(FILE_CONVERTERS)}"
                )
            converted = load_official_file(path, name)
            found = {part: converted[part] for part in RENDERER_PARTS if part in converted}
            found |= _official_training_parts(path)
        parts |= found
        read.append(str(path))
        logger.info("initial weights: %s -> %s", path, ", ".join(sorted(found)) or "nothing for the renderer")
    return parts, read


def load_metric(source: str | Path) -> nn.Module:
    """The frozen stage-1 TAVC metric from a tavce folder (its ``metric`` component) or TAVCE's correlation file.

    Raises:
        IncompatibleWeightsError: a folder without a metric, or a file that is not a correlation checkpoint.
    """
    from tavce.components import read_pipeline_config
    from tavce.convert.assemble import build_metric
    from tavce.convert.official import TAVCE_CORRELATION_FILE, load_official_file
    from tavce.models.base import resolve_component_class

    path = Path(source)
    if path.is_dir():
        recorded = read_pipeline_config(path).get("components", {})
        if "metric" not in recorded:
            raise IncompatibleWeightsError(
                f"{path}: no metric component; pass the folder written by stage 1, or TAVCE's correlation checkpoint"
            )
        metric = resolve_component_class(recorded["metric"], path).from_pretrained(path / "metric")
    else:
        metric = build_metric(load_official_file(path, TAVCE_CORRELATION_FILE), source=str(path))
    return metric.eval()
