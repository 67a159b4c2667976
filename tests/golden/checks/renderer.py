"""Golden checks for the face renderer (reference-pipeline.md §4, §5)."""

from __future__ import annotations

import re

import torch

from tavce.convert.generator import convert_generator, generator_config_from_original
from tavce.models.renderer.generator import GeneratorOutput, OcclusionAwareSPADEGenerator, load_inference_generator
from tests.golden.harness import CaseResult, GoldenCase


# --- generator, CERL fusion and render loops (generator half of the renderer) ---

def _generator_label(case: GoldenCase) -> str:
    """The case's generator module label (``generator`` or ``generator_cerl``), found by its key names."""
    for label, shapes in case.meta["state_dicts"].items():
        if "second.weight" in shapes:
            return label
    raise KeyError(f"{case.name}: no generator state dict")


def _inference_generator(case: GoldenCase) -> OcclusionAwareSPADEGenerator:
    """Recipe weights → converter → spectral folding → strict load, config from the recorded kwargs."""
    label = _generator_label(case)
    config = generator_config_from_original(case.meta["modules"][label]["constructor_kwargs"])
    generator = load_inference_generator(convert_generator(case.state_dict(label)), config, source=case.name)
    assert generator.has_cerl == config.cerl, "fusion weights and recorded config disagree"
    return generator


def _generator_outputs(output: GeneratorOutput, names: list[str], suffix: str) -> dict[str, torch.Tensor]:
    """Map recorded output names (prediction, occlusion_map, mask, mask_d<N>) + suffix to our tensors."""
    values: dict[str, torch.Tensor] = {}
    for name in names:
        if not name.endswith(suffix) or (not suffix and name.endswith("_nocor")):
            continue
        base = name[: len(name) - len(suffix)] if suffix else name
        depth_slice = re.fullmatch(r"mask_d(\d+)", base)
        if depth_slice:
            values[name] = output.mask[:, :, int(depth_slice.group(1))]
        else:
            values[name] = {"prediction": output.prediction, "mask": output.mask, "occlusion_map": output.occlusion_map}[base]
    return values


def check_generator(case: GoldenCase) -> CaseResult:
    """OcclusionAwareSPADEGenerator(source, kp_driving, kp_source[, cor]); ``*_nocor`` outputs with cor=None."""
    generator = _inference_generator(case)
    inputs = case.inputs
    names = list(case.outputs)
    outputs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        result = generator(inputs["source_image"], inputs["kp_source"], inputs["kp_driving"], inputs.get("cor"))
        outputs.update(_generator_outputs(result, names, ""))
        if any(name.endswith("_nocor") for name in names):
            plain = generator(inputs["source_image"], inputs["kp_source"], inputs["kp_driving"], None)
            outputs.update(_generator_outputs(plain, names, "_nocor"))
    return CaseResult(outputs=outputs)


def check_cerl_fusion(case: GoldenCase) -> CaseResult:
    """Encoder output, fused feature with the recorded relationship, and with a zero one (frame 0)."""
    generator = _inference_generator(case)
    relationship = case.inputs["cor"]
    with torch.inference_mode():
        features = generator.encode(case.inputs["source_image"])
        return CaseResult(
            outputs={
                "feature_before_fusion": features,
                "feature_after_fusion": generator.fuse(features, relationship),
                "feature_after_fusion_zero_cor": generator.fuse(features, torch.zeros_like(relationship)),
            }
        )
