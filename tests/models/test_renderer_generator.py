"""Generator, CERL fusion, spectral folding and the renderer component on tiny configs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tavce.convert.generator import convert_generator, generator_config_from_original
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, InvalidImageError
from tavce.models.renderer.cerl import channel_weights
from tavce.models.renderer.generator import (
    GeneratorConfig,
    OcclusionAwareSPADEGenerator,
    has_cerl_weights,
    load_inference_generator,
)
from tavce.models.renderer.spectral import fold_spectral_norm
from tests.models.tiny_generator import TINY, inputs, recipe_weights, tiny_generator

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "golden"

def test_cerl_weights_from_differences_equal_the_matrix_form_including_tiny_and_zero_rows():
    differences = torch.randn(5, 4, dtype=torch.float64)
    differences[0] = 0  # frame 0
    differences[1] = torch.tensor([1e-7, -2e-7, 0.0, 3e-8])  # ½|d_c|·‖d‖ below the 1e-12 clamp
    differences[2, 1] = 0
    matrices = 0.5 * differences[:, :, None] * differences[:, None, :]
    from_vector = channel_weights(differences, 4)
    from_matrix = channel_weights(matrices, 4)
    torch.testing.assert_close(from_vector, from_matrix, rtol=1e-12, atol=0)
    assert from_vector[0].abs().max() == 0
    assert from_vector[2, 1] == 0
    # Above the clamp the closed form is |d_c| / ‖d‖; below it (tiny ‖d‖) the weights are ½·d_c²/1e-12.
    torch.testing.assert_close(from_vector[3], differences[3].abs() / differences[3].norm())
    torch.testing.assert_close(from_vector[1], 0.5 * differences[1] ** 2 / 1e-12)


def test_cerl_weights_of_a_half_precision_first_frame_are_zero_not_nan():
    weights = channel_weights(torch.zeros(2, 4, dtype=torch.float16), 4)
    assert weights.dtype == torch.float32 and torch.equal(weights, torch.zeros(2, 4))


def test_cerl_rejects_wrongly_shaped_relationships():
    with pytest.raises(InvalidArgumentError, match="relationship"):
        channel_weights(torch.zeros(2, 5), 4)


def test_generator_with_differences_equals_generator_with_matrices():
    generator = tiny_generator()
    image, kp_source, kp_driving = inputs(3)
    differences = torch.randn(3, 4)
    matrices = 0.5 * differences[:, :, None] * differences[:, None, :]
    with torch.inference_mode():
        by_vector = generator(image.expand(3, -1, -1, -1), kp_source.expand(3, -1, -1), kp_driving, differences)
        by_matrix = generator(image.expand(3, -1, -1, -1), kp_source.expand(3, -1, -1), kp_driving, matrices)
    torch.testing.assert_close(by_vector.prediction, by_matrix.prediction, rtol=0, atol=1e-6)


def test_zero_relationship_applies_the_fusion_convs_but_none_skips_them():
    generator = tiny_generator()
    fusion = generator.fusion
    with torch.inference_mode():
        features = generator.encode(inputs(1)[0])
        fused_zero = generator.fuse(features, torch.zeros(1, 4))
        expected = fusion.output(features + fusion.proj_up.bias[None, :, None, None])
        torch.testing.assert_close(fused_zero, expected, rtol=0, atol=1e-6)
        assert (fused_zero - features).abs().max() > 1e-3
        assert generator.fuse(features, None) is features


def test_no_relationship_is_exactly_the_generator_without_cerl():
    with_cerl = tiny_generator()
    weights = {k: v for k, v in with_cerl.state_dict().items() if not k.startswith("fusion.")}
    without_cerl = load_inference_generator(weights, TINY)
    assert with_cerl.has_cerl and not without_cerl.has_cerl
    image, kp_source, kp_driving = inputs(2)
    with torch.inference_mode():
        plain = without_cerl(image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving)
        skipped = with_cerl(image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving, None)
        zero = with_cerl(image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving, torch.zeros(2, 4))
    assert torch.equal(plain.prediction, skipped.prediction)
    assert (zero.prediction - plain.prediction).abs().max() > 1e-5
    with pytest.raises(InvalidArgumentError, match="no CERL"):
        without_cerl(image, kp_source, kp_driving[:1], torch.zeros(1, 4))


def test_partial_fusion_weights_are_refused():
    weights = tiny_generator().state_dict()
    del weights["fusion.output.bias"]
    with pytest.raises(IncompatibleWeightsError, match="incomplete CERL"):
        has_cerl_weights(weights)


def test_batched_frames_equal_frames_rendered_one_by_one():
    generator = tiny_generator()
    image, kp_source, kp_driving = inputs(3, seed=1)
    differences = torch.randn(3, 4)
    with torch.inference_mode():
        volume = generator.lift(generator.fuse(generator.encode(image), differences))
        batched = generator.animate(volume, generator.prepare_volume(volume), kp_source.expand(3, -1, -1), kp_driving)
        for frame in range(3):
            single = generator(image, kp_source, kp_driving[frame : frame + 1], differences[frame : frame + 1])
            torch.testing.assert_close(batched.prediction[frame : frame + 1], single.prediction, rtol=0, atol=2e-6)
            torch.testing.assert_close(batched.occlusion_map[frame : frame + 1], single.occlusion_map, rtol=0, atol=1e-6)


def test_folded_spectral_norm_equals_the_spectral_norm_forward():
    training = OcclusionAwareSPADEGenerator(dataclasses.replace(TINY, spectral_norm=True))
    weights = recipe_weights(training, salt=5)
    # Unsettled u, v: folding must use the stored vectors, not a converged σ.
    weights = {k: (v + 0.3 if k.endswith(("weight_u", "weight_v")) else v) for k, v in weights.items()}
    training.load_state_dict(weights)
    training.eval()
    folded = OcclusionAwareSPADEGenerator(TINY)
    folded.load_state_dict(fold_spectral_norm(weights))
    folded.eval()
    assert not any(k.endswith("weight_orig") for k in folded.state_dict())
    image, kp_source, kp_driving = inputs(1, seed=2)
    with torch.inference_mode():
        differences = torch.randn(1, 4, generator=torch.Generator().manual_seed(0))
        ours = folded(image, kp_source, kp_driving, differences)
        reference = training(image, kp_source, kp_driving, differences)
    torch.testing.assert_close(ours.prediction, reference.prediction, rtol=0, atol=1e-6)
    # eval mode ran no power iteration: the stored vectors are unchanged
    assert torch.equal(training.decoder.middle_blocks[0].conv_0.weight_u, weights["decoder.middle_blocks.0.conv_0.weight_u"])


def test_float64_and_dtype_moves_work():
    generator = tiny_generator()
    image, kp_source, kp_driving = inputs(2, seed=4)
    differences = torch.randn(2, 4)
    args = (image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving, differences)
    with torch.inference_mode():
        single = generator(*args).prediction
        double = generator.to(torch.float64)(*(a.double() for a in args)).prediction
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), single, rtol=0, atol=1e-5)


def test_image_sizes_must_be_multiples_of_the_hourglass_factor():
    generator = tiny_generator()
    image, kp_source, kp_driving = inputs(1)
    with pytest.raises(InvalidImageError, match="multiples of 16"):
        generator(torch.rand(1, 3, 24, 24), kp_source, kp_driving)


def test_converter_maps_every_official_generator_key_onto_the_model():
    manifest = GOLDEN_DIR / "generator_cerl.json"
    if not manifest.is_file():
        pytest.skip("golden fixtures not available")
    meta = json.loads(manifest.read_text())
    module = meta["modules"]["generator_cerl"]
    shapes = {key: tuple(shape) for key, shape in module["state_dict"].items()}
    renamed = convert_generator({f"module.{k}": v for k, v in shapes.items()})
    config = generator_config_from_original(module["constructor_kwargs"])
    assert config == dataclasses.replace(GeneratorConfig(), cerl=True)
    with torch.device("meta"):
        model = OcclusionAwareSPADEGenerator(dataclasses.replace(config, spectral_norm=True))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == renamed
    with pytest.raises(IncompatibleWeightsError, match="unexpected key"):
        convert_generator({"second.weight": torch.zeros(1), "attn.query.weight": torch.zeros(1)})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_on_cuda_matches_cpu():
    generator = tiny_generator()
    image, kp_source, kp_driving = inputs(2, seed=6)
    args = (image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving, torch.randn(2, 4))
    with torch.inference_mode():
        on_cpu = generator(*args).prediction
        on_cuda = generator.to("cuda")(*(a.to("cuda") for a in args)).prediction
    assert on_cuda.device.type == "cuda"
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, rtol=0, atol=1e-4)
