"""One converter per official file: the file's dictionary -> tavce state dicts per part.

Each ``convert_<file family>(checkpoint)`` takes what :func:`tavce.hub.load_safetensors`
(flat tensors) or :func:`tavce.hub.load_legacy_checkpoint` (nested dict) returns and
gives ``{part: state dict in tavce's names}``; the parts are assembled into
components by :mod:`tavce.convert.official`. The work per file is:

1. flatten to the manifests' key names and drop the keys of the one unused-key
   table (:mod:`tavce.convert.unused_keys`);
2. split by sub-model prefix (``audio2exp.``, ``generator`` …; ``module.`` from
   DataParallel / DDP removed);
3. hand each sub-dict to its family converter (``tavce.convert.<family>``), which
   renames strictly: a key no rule covers is an error, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch

from tavce.convert.common import select_prefix, strip_module_prefix
from tavce.convert.unused_keys import unused_entry
from tavce.errors import IncompatibleWeightsError

__all__ = [
    "FILE_CONVERTERS",
    "convert_sadtalker_safetensors",
    "convert_mapping_checkpoint",
    "convert_facevid2vid_checkpoint",
    "convert_wav2lip_checkpoint",
    "convert_tavce_correlation_checkpoint",
    "convert_tavce_facerender_checkpoint",
    "convert_gfpgan_checkpoint",
    "convert_parsenet_checkpoint",
]

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
PartConverter = Callable[[Mapping[str, torch.Tensor]], StateDict]

# Sub-models of the SadTalker safetensors, by key prefix, and the tavce part each becomes.
SADTALKER_PARTS = {
    "kp_extractor.": "kp_detector",
    "generator.": "generator",
    "audio2exp.": "audio2exp",
    "audio2pose.": "audio2pose",
    "face_3drecon.": "face_recon",
}


def _part_converter(part: str) -> PartConverter:
    """The family converter of one part (imported on use: each family module imports its model)."""
    if part == "face_recon":
        from tavce.convert.face_recon import convert_face_recon

        return convert_face_recon
    if part in ("audio2exp", "audio2pose"):
        from tavce.convert import audio2coeff

        return getattr(audio2coeff, f"convert_{part}")
    if part in ("kp_detector", "mapping"):
        from tavce.convert import renderer

        return getattr(renderer, f"convert_{part}")
    if part == "generator":
        from tavce.convert.generator import convert_generator

        return convert_generator
    if part in ("tavc_audio_encoder", "mouth_encoder"):
        from tavce.convert import tavc

        return tavc.convert_audio_encoder if part == "tavc_audio_encoder" else tavc.convert_mouth_encoder
    if part == "audio_encoder":
        return _convert_wav2lip_encoder
    if part in ("restorer", "parser"):
        from tavce.convert import enhancer

        return enhancer.convert_gfpgan if part == "restorer" else enhancer.convert_parsenet
    raise KeyError(part)


def _only_tensors(filename: str, state_dict: Mapping[str, Any], where: str = "") -> Mapping[str, torch.Tensor]:
    """``state_dict`` itself; an entry that is not a tensor (a pickled number, string, dict ...) is refused."""
    wrong = sorted(f"{where}{key} ({type(value).__name__})" for key, value in state_dict.items() if not isinstance(value, torch.Tensor))
    if wrong:
        raise IncompatibleWeightsError(
            f"{filename}: entries that are not tensors: {', '.join(wrong[:8])}; a state dict holds tensors only, "
            "so this is not the official file (download it again from its release page)"
        )
    return state_dict


def _convert_wav2lip_encoder(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    from tavce.convert.audio_encoder import WAV2LIP_ENCODER_RULES
    from tavce.convert.common import rename_state_dict

    return rename_state_dict(state_dict, WAV2LIP_ENCODER_RULES, source="wav2lip.pth audio_encoder")


def _drop_unused(filename: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in flat.items() if unused_entry(filename, key) is None}
    logger.debug("%s: %d of %d entries deliberately not loaded", filename, len(flat) - len(kept), len(flat))
    return kept


def _read_sub_dicts(filename: str, checkpoint: Mapping[str, Any], read: tuple[str, ...]) -> dict[str, StateDict]:
    """The named top-level sub-dicts of a pickled checkpoint, ``module.`` removed, unused keys dropped.

    Top-level entries the original readers never open are skipped (debug log), as they are.
    """
    missing = [name for name in read if not isinstance(checkpoint.get(name), Mapping)]
    if missing:
        raise IncompatibleWeightsError(
            f"{filename}: no {', '.join(repr(name) for name in missing)} entry (top-level keys: "
            f"{', '.join(sorted(map(str, checkpoint))) or 'none'}); this is not a {filename} checkpoint"
        )
    skipped = sorted(set(map(str, checkpoint)) - set(read))
    if skipped:
        logger.debug("%s: top-level entries not read: %s", filename, ", ".join(skipped))
    sub_dicts = {}
    for name in read:
        flat = {f"{name}.{key}": value for key, value in checkpoint[name].items()}
        sub_dicts[name] = strip_module_prefix(select_prefix(_drop_unused(filename, flat), f"{name}."))
    return sub_dicts


def convert_sadtalker_safetensors(
    tensors: Mapping[str, torch.Tensor], filename: str = "SadTalker_V0.0.2_256.safetensors"
) -> dict[str, StateDict]:
    """``SadTalker_V0.0.2_{256,512}.safetensors`` -> parts kp_detector, generator, audio2exp, audio2pose, face_recon."""
    kept = _drop_unused(filename, tensors)
    unknown = sorted(key for key in kept if not key.startswith(tuple(SADTALKER_PARTS)))
    if unknown:
        raise IncompatibleWeightsError(
            f"{filename}: {len(unknown)} key(s) outside the known sub-models ({', '.join(unknown[:8])}); "
            "this is not a SadTalker V0.0.2 checkpoint"
        )
    return {part: _part_converter(part)(select_prefix(kept, prefix)) for prefix, part in SADTALKER_PARTS.items()}


def convert_mapping_checkpoint(
    checkpoint: Mapping[str, Any], filename: str = "mapping_00229-model.pth.tar"
) -> dict[str, StateDict]:
    """``mapping_00229`` (70-dim) / ``mapping_00109`` (73-dim) -> part mapping."""
    sub_dicts = _read_sub_dicts(filename, checkpoint, ("mapping",))
    return {"mapping": _part_converter("mapping")(sub_dicts["mapping"])}


def convert_facevid2vid_checkpoint(
    checkpoint: Mapping[str, Any], filename: str = "facevid2vid_00189-model.pth.tar"
) -> dict[str, StateDict]:
    """Legacy ``facevid2vid_00189-model.pth.tar`` -> parts kp_detector, generator (he_estimator unused)."""
    sub_dicts = _read_sub_dicts(filename, checkpoint, ("generator", "kp_detector"))
    return {part: _part_converter(part)(sub_dicts[part]) for part in ("kp_detector", "generator")}


def convert_wav2lip_checkpoint(checkpoint: Mapping[str, Any], filename: str = "wav2lip.pth") -> dict[str, StateDict]:
    """``wav2lip.pth`` -> part audio_encoder (:class:`~tavce.models.audio_encoder.Wav2LipAudioEncoder`).

    Only the audio encoder is read, as in TAVCE (it initialises the ExpNet and TAVC
    audio encoders before training).
    """
    sub_dicts = _read_sub_dicts(filename, checkpoint, ("state_dict",))
    encoder = select_prefix(sub_dicts["state_dict"], "audio_encoder.")
    return {"audio_encoder": _part_converter("audio_encoder")(encoder)}


def convert_tavce_correlation_checkpoint(
    checkpoint: Mapping[str, Any], filename: str = "tavce_correlation_epoch_N.pth"
) -> dict[str, StateDict]:
    """TAVCE correlation (stage-1) checkpoint -> parts tavc_audio_encoder and mouth_encoder (the TAVC metric).

    ``module.`` prefixes (DDP-saved files) are allowed; the two training-only generators are not read.
    """
    sub_dicts = _read_sub_dicts(filename, checkpoint, ("audio_encoder", "image_encoder"))
    return {
        "tavc_audio_encoder": _part_converter("tavc_audio_encoder")(sub_dicts["audio_encoder"]),
        "mouth_encoder": _part_converter("mouth_encoder")(sub_dicts["image_encoder"]),
    }


def convert_tavce_facerender_checkpoint(
    checkpoint: Mapping[str, Any], filename: str = "tavce_facerender_latest.pth"
) -> dict[str, StateDict]:
    """TAVCE face-render checkpoint -> parts mapping, kp_detector, generator (with the CERL layers).

    The original loads this generator non-strictly, so a file without the fusion
    layers would run with random ones; here that file is refused.
    """
    from tavce.convert.generator import has_cerl_weights

    sub_dicts = _read_sub_dicts(filename, checkpoint, ("mapping", "kp_detector", "generator"))
    parts = {part: _part_converter(part)(sub_dicts[part]) for part in ("mapping", "kp_detector", "generator")}
    if not has_cerl_weights(parts["generator"], source=f"{filename} generator"):
        raise IncompatibleWeightsError(
            f"{filename}: the generator has no CERL fusion weights (proj1, proj2, linear); it is a plain SadTalker "
            "generator, and the original would run CERL with random fusion layers. Pass a TAVCE "
            "face-render checkpoint, or leave the TAVCE weights out to render without CERL"
        )
    return parts

def convert_gfpgan_checkpoint(checkpoint: Mapping[str, Any], filename: str = "GFPGANv1.4.pth") -> dict[str, StateDict]:
    """``GFPGANv1.4.pth`` -> part restorer (:class:`~tavce.models.enhancer.GFPGAN`).

    The weights are under ``params_ema`` (the averaged weights GFPGAN was released with),
    else under ``params``, as the original reads them.
    """
    name = "params_ema" if "params_ema" in checkpoint else "params"
    (state_dict,) = _read_sub_dicts(filename, checkpoint, (name,)).values()
    return {"restorer": _part_converter("restorer")(_only_tensors(filename, state_dict, f"{name}."))}


def convert_parsenet_checkpoint(
    checkpoint: Mapping[str, Any], filename: str = "parsing_parsenet.pth"
) -> dict[str, StateDict]:
    """``parsing_parsenet.pth`` (a bare state dict) -> part parser (:class:`~tavce.models.enhancer.ParseNet`)."""
    return {"parser": _part_converter("parser")(_only_tensors(filename, checkpoint))}


FILE_CONVERTERS: dict[str, Callable[..., dict[str, StateDict]]] = {
    "SadTalker_V0.0.2_256.safetensors": convert_sadtalker_safetensors,
    "SadTalker_V0.0.2_512.safetensors": convert_sadtalker_safetensors,
    "mapping_00229-model.pth.tar": convert_mapping_checkpoint,
    "mapping_00109-model.pth.tar": convert_mapping_checkpoint,
    "facevid2vid_00189-model.pth.tar": convert_facevid2vid_checkpoint,
    "wav2lip.pth": convert_wav2lip_checkpoint,
    "tavce_correlation_epoch_N.pth": convert_tavce_correlation_checkpoint,
    "tavce_facerender_latest.pth": convert_tavce_facerender_checkpoint,
    "GFPGANv1.4.pth": convert_gfpgan_checkpoint,
    "parsing_parsenet.pth": convert_parsenet_checkpoint,
}
"""Official file (manifest name) -> its converter; call as ``converter(checkpoint, filename)``."""
