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


def _renderer_for(case: GoldenCase):
    """kp detector, MappingNet and generator of the case, each through its converter, assembled."""
    from tavce.convert.assemble import build_mapping
    from tavce.convert.renderer import convert_kp_detector, convert_mapping
    from tavce.models.base import load_state_dict_strict
    from tavce.models.renderer.keypoint_detector import KeypointDetector
    from tavce.models.renderer.renderer import CERLRenderer

    labels = {}
    for label, shapes in case.meta["state_dicts"].items():
        if "kp.weight" in shapes:
            labels["kp_detector"] = label
        elif "fc_yaw.weight" in shapes:
            labels["mapping"] = label
    keypoint_detector = KeypointDetector()
    load_state_dict_strict(keypoint_detector, convert_kp_detector(case.state_dict(labels["kp_detector"])), case.name)
    mapping = build_mapping(convert_mapping(case.state_dict(labels["mapping"])), case.name)
    generator = _inference_generator(case)
    return CERLRenderer.from_modules(keypoint_detector.eval(), mapping, generator)


def check_animation(case: GoldenCase) -> CaseResult:
    """SadTalker make_animation (``target_semantics``) or TAVCE AnimateModel.test (``driving_coeff`` + ``cor``).

    Our render path: source work once (prepare_image), frames in batches of 2. The
    original TAVCE loop was recorded with batch 1 (the only size it gets right), so equal
    frames with batch 2 also show quirk 22 fixed.
    """
    renderer = _renderer_for(case)
    from tavce.models.renderer.renderer import semantic_windows

    inputs = case.inputs
    outputs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        if "target_semantics" in inputs:
            # make_animation: windows built by the caller; the source window repeats one vector.
            source_semantics = inputs["source_semantics"][0, :, 0]
            windows = inputs["target_semantics"][0]
            relationship = None
        else:
            # AnimateModel.test: reference coefficients (73; crop parameters unused), 27-frame windows.
            source_semantics = inputs["ref"][0, 0]
            windows = semantic_windows(inputs["driving_coeff"][0])
            relationship = inputs["cor"][0]
        state = renderer.prepare_image(inputs["source_image"], source_semantics)
        frames = torch.cat(
            [
                renderer.render_windows(state, windows[start : start + 2], None if relationship is None else relationship[start : start + 2])
                for start in range(0, windows.shape[0], 2)
            ]
        )
        outputs["kp_source"] = state.source_keypoints
        outputs["kp_driving"] = renderer.driving_keypoints(state, windows).unsqueeze(1)
        if "kp_driving_pose_override" in case.outputs:
            overridden = renderer.driving_keypoints(
                state, windows, yaw=inputs["yaw_c_seq"][0], pitch=inputs["pitch_c_seq"][0], roll=inputs["roll_c_seq"][0]
            )
            outputs["kp_driving_pose_override"] = overridden.unsqueeze(1)
    if "frames_uint8_bgr" in case.outputs:
        # TAVCE's PNG writer: ×255 truncated (quirk 26 "Option": reproduced here), HWC, RGB→BGR.
        outputs["frames_uint8_bgr"] = (frames * 255).to(torch.uint8).permute(0, 2, 3, 1).flip(-1)
    # make_animation stacks frames on dim 1 (1, T, 3, H, W); test() records them per frame (T, 3, H, W).
    outputs["predictions"] = frames.reshape(case.outputs["predictions"].shape)
    return CaseResult(outputs=outputs)


# --- motion half: MappingNet and keypoint transformation ---

def _mapping_net(case: GoldenCase):
    from tavce.convert.assemble import build_mapping
    from tavce.convert.renderer import convert_mapping

    return build_mapping(convert_mapping(case.only_state_dict()), case.name).eval()


def _head_motion_result(motion) -> CaseResult:
    """A HeadMotion under the original's output names."""
    names = {"yaw": "yaw", "pitch": "pitch", "roll": "roll", "t": "translation", "exp": "expression"}
    return CaseResult(outputs={original: getattr(motion, ours) for original, ours in names.items()})


def check_mapping(case: GoldenCase) -> CaseResult:
    """MappingNet(coeffs) → yaw/pitch/roll logits (heads not swapped), t, exp."""
    with torch.inference_mode():
        motion = _mapping_net(case)(case.inputs["coeffs"])
    return _head_motion_result(motion)


def check_keypoint_transformation(case: GoldenCase) -> CaseResult:
    """Bins → degrees, rotation (3.14, P·Y·R), keypoints with/without expression and with overrides.

    ``t_after_call`` recorded the original's in-place zeroing of the caller's t[:, 0], t[:, 2];
    we never mutate the input, so the check asserts that and compares the values the
    transformation actually used (the y-only translation).
    """
    from tavce.models.renderer.keypoint_transform import bins_to_degrees, rotation_matrix, transform_keypoints
    from tavce.models.renderer.mapping_net import HeadMotion

    inputs = case.inputs
    translation = inputs["t"].clone()
    motion = HeadMotion(inputs["yaw"], inputs["pitch"], inputs["roll"], translation, inputs["exp"])
    canonical = inputs["kp_canonical"]
    degrees = [bins_to_degrees(inputs[name]) for name in ("yaw", "pitch", "roll")]
    overrides = {"yaw_override": inputs["yaw_in"], "pitch_override": inputs["pitch_in"], "roll_override": inputs["roll_in"]}
    outputs = {
        "yaw_deg": degrees[0],
        "pitch_deg": degrees[1],
        "roll_deg": degrees[2],
        "rot_mat": rotation_matrix(*degrees),
        "value": transform_keypoints(canonical, motion),
        "value_wo_exp": transform_keypoints(canonical, motion, with_expression=False),
        "rot_mat_override": rotation_matrix(inputs["yaw_in"], inputs["pitch_in"], inputs["roll_in"]),
        "value_override": transform_keypoints(canonical, motion, **overrides),
    }
    assert torch.equal(translation, inputs["t"]), "transform_keypoints modified the caller's translation"
    outputs["t_after_call"] = translation * torch.tensor([0.0, 1.0, 0.0])
    return CaseResult(outputs=outputs)


# --- keypoint detector, head-pose estimator, discriminator ---

def check_kp_detector(case: GoldenCase) -> CaseResult:
    """KPDetector(image) with the loaded (recipe) ``down.weight`` kernel, then with the analytic kernel."""
    from tavce.convert.renderer import convert_kp_detector
    from tavce.models.base import load_state_dict_strict
    from tavce.models.renderer.keypoint_detector import KeypointDetector, gaussian_kernel

    detector = KeypointDetector()
    load_state_dict_strict(detector, convert_kp_detector(case.only_state_dict(), source=case.name), case.name)
    detector.eval()
    image = case.inputs["image"]
    with torch.inference_mode():
        loaded_kernel = detector(image)
        analytic = gaussian_kernel(detector.config.scale_factor)
        detector.downsample.kernel.copy_(analytic.expand_as(detector.downsample.kernel))
        analytic_kernel = detector(image)
    return CaseResult(outputs={"value": loaded_kernel, "value_analytic_kernel": analytic_kernel})


def check_he_estimator(case: GoldenCase) -> CaseResult:
    """HEEstimator(image): the converter maps fc_roll → heads.yaw and fc_yaw → heads.roll (quirk 12)."""
    from tavce.convert.renderer import convert_he_estimator
    from tavce.models.base import load_state_dict_strict
    from tavce.models.renderer.head_pose_estimator import HeadPoseEstimator

    estimator = HeadPoseEstimator()
    load_state_dict_strict(estimator, convert_he_estimator(case.only_state_dict(), source=case.name), case.name)
    with torch.inference_mode():
        motion = estimator.eval()(case.inputs["image"])
    return _head_motion_result(motion)


def check_discriminator(case: GoldenCase) -> CaseResult:
    """MultiScaleDiscriminator (scales [1]) in eval: spectral norm from the stored u, v, no power iteration."""
    from tavce.convert.renderer import convert_discriminator
    from tavce.models.base import load_state_dict_strict
    from tavce.models.renderer.discriminator import DiscriminatorConfig, MultiScaleDiscriminator

    kwargs = case.meta["modules"]["discriminator"]["constructor_kwargs"]
    config = DiscriminatorConfig(
        image_channels=kwargs["image_channel"],
        base_channels=kwargs["block_expansion"],
        max_channels=kwargs["max_features"],
        num_blocks=kwargs["num_blocks"],
        scales=tuple(float(scale) for scale in kwargs["scales"]),
        spectral_norm=kwargs["sn"],
    )
    discriminator = MultiScaleDiscriminator(config)
    load_state_dict_strict(discriminator, convert_discriminator(case.only_state_dict(), source=case.name), case.name)
    with torch.inference_mode():
        result = discriminator.eval()({1.0: case.inputs["image"]})[1.0]
    outputs = {f"feature_maps_1.{index}": feature_map for index, feature_map in enumerate(result.feature_maps)}
    outputs["prediction_map_1"] = result.prediction_map
    return CaseResult(outputs=outputs)
