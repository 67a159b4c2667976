"""The renderer's exact work reductions equal the plain computation; half-precision paths run.

Each reduction (fast_conv.py, spade.py, dense_motion.py) is compared in float64 with a
plain re-implementation written here from the module's own parameters, so a wrong fold,
a wrong merge order or a stale cached weight shows as a mismatch.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from tavce.models.renderer.dense_motion import UpBlock3d, coordinate_grid_3d, keypoint_gaussians
from tavce.models.renderer.fast_conv import (
    DerivedWeights,
    conv3x3_of_nearest_upsampled,
    polyphase_pays,
    polyphase_weights,
    single_output_conv2d,
)
from tavce.models.renderer.keypoint_detector import KeypointDetector, KeypointDetectorConfig
from tavce.models.renderer.mapping_net import MappingNet, MappingNetConfig
from tavce.models.renderer.precision import (
    Float32Conv2d,
    accurate_dtype,
    cpu_supports_bfloat16,
    flush_subnormals_,
    run_in_float32,
)
from tavce.models.renderer.spade import SPADE, LEAKY_SLOPE, SPADEDecoder, SPADEDecoderConfig, SPADEResBlock
from tests.models.tiny_generator import inputs, tiny_generator

TINY_DECODER = SPADEDecoderConfig(
    input_channels=6, hidden_channels=8, num_middle_blocks=2, up_channels=(8, 4), spade_hidden_channels=5
)


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``module`` in float64 with every parameter redrawn (non-zero biases, unit-scale weights)."""
    generator = torch.Generator().manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return module


def plain_spade(layer: SPADE, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    conv = layer.shared[0]
    resized = F.interpolate(condition, size=features.shape[2:], mode="nearest")
    hidden = F.relu(F.conv2d(resized, conv.weight, conv.bias, padding=1))
    gamma = F.conv2d(hidden, layer.gamma.weight, layer.gamma.bias, padding=1)
    beta = F.conv2d(hidden, layer.beta.weight, layer.beta.bias, padding=1)
    return F.instance_norm(features) * (1 + gamma) + beta


def plain_block(block: SPADEResBlock, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    shortcut = features
    if block.learned_shortcut:
        shortcut = block.conv_shortcut(plain_spade(block.norm_shortcut, features, condition))
    hidden = block.conv_0(F.leaky_relu(plain_spade(block.norm_0, features, condition), LEAKY_SLOPE))
    hidden = block.conv_1(F.leaky_relu(plain_spade(block.norm_1, hidden, condition), LEAKY_SLOPE))
    return shortcut + hidden


def plain_decoder(decoder: SPADEDecoder, condition: torch.Tensor) -> torch.Tensor:
    features = decoder.input_conv(condition)
    for block in decoder.middle_blocks:
        features = plain_block(block, features, condition)
    for block in decoder.up_blocks:
        features = plain_block(block, F.interpolate(features, scale_factor=2, mode="nearest"), condition)
    conv = decoder.output_conv
    return torch.sigmoid(F.conv2d(F.leaky_relu(features, LEAKY_SLOPE), conv.weight, conv.bias, padding=1))


@pytest.mark.parametrize("scales", [(2, 2), (4, 4), (3, 2), (8, 1), (1, 2, 2), (2, 1, 2), (4, 1, 4), (1, 1)])
def test_polyphase_conv_equals_the_conv_of_the_nearest_upsampled_map(scales):
    generator = torch.Generator().manual_seed(1)
    low = (3, 4, 5)[: len(scales)]
    x = torch.randn(2, 5, *low, generator=generator, dtype=torch.float64)
    weight = torch.randn(7, 5, *(3,) * len(scales), generator=generator, dtype=torch.float64)
    bias = torch.randn(7, generator=generator, dtype=torch.float64)
    conv = F.conv2d if len(scales) == 2 else F.conv3d
    expected = conv(F.interpolate(x, scale_factor=scales, mode="nearest"), weight, bias, padding=1)
    folded = polyphase_weights(weight, bias, scales)
    # Per upsampled axis two taps for phases 0 and 1 and one for phases 2 … s−1 (s + 2 in all); 3 elsewhere.
    taps_per_axis = [3 if scale == 1 else scale + 2 for scale in scales]
    assert sum(weight.numel() for weight in folded[0::2]) == 7 * 5 * math.prod(taps_per_axis)
    torch.testing.assert_close(conv3x3_of_nearest_upsampled(x, folded, scales), expected)
    without_bias = conv(F.interpolate(x, scale_factor=scales, mode="nearest"), weight, None, padding=1)
    torch.testing.assert_close(conv3x3_of_nearest_upsampled(x, polyphase_weights(weight, None, scales), scales), without_bias)


@pytest.mark.parametrize("kernel_size, batch, channels_last", [(7, 2, False), (3, 1, True), (1, 1, False)])
def test_single_output_conv_equals_the_direct_conv(kernel_size, batch, channels_last):
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 6, 5, 7, generator=generator, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(1, 6, kernel_size, kernel_size, generator=generator, dtype=torch.float64)
    bias = torch.randn(1, generator=generator, dtype=torch.float64)
    padding = kernel_size // 2
    expected = F.conv2d(x, weight, bias, padding=padding)
    torch.testing.assert_close(single_output_conv2d(x, weight, bias, padding), expected)


@pytest.mark.parametrize("scale", [2, 4])
def test_polyphase_conv_returns_a_dense_map_in_the_input_s_layout(scale):
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(3, 4, 3, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    out = conv3x3_of_nearest_upsampled(x, polyphase_weights(weight, bias, (scale, scale)), (scale, scale))
    # Dense (the next conv reads it without a copy), channels innermost.
    assert out.is_contiguous(memory_format=torch.channels_last) and out.stride(1) == 1
    assert conv3x3_of_nearest_upsampled(x.contiguous(), polyphase_weights(weight, bias, (scale, scale)), (scale, scale)).is_contiguous()
    expected = F.conv2d(F.interpolate(x, scale_factor=scale, mode="nearest"), weight, bias, padding=1)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("condition_size", [8, 4, 2])
def test_spade_with_merged_gamma_beta_equals_the_plain_layer(condition_size):
    layer = randomized(SPADE(channels=6, condition_channels=3, hidden_channels=5))
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2, 6, 8, 8, generator=generator, dtype=torch.float64)
    condition = torch.randn(2, 3, condition_size, condition_size, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(layer(features, condition), plain_spade(layer, features, condition))


def test_resblock_with_caller_computed_hidden_maps_equals_the_plain_block():
    block = randomized(SPADEResBlock(6, 4, condition_channels=3, spectral_norm=False, spade_hidden=5))
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(1, 6, 8, 8, generator=generator, dtype=torch.float64)
    condition = torch.randn(1, 3, 4, 4, generator=generator, dtype=torch.float64)
    hidden = {name: layer.hidden(condition, (8, 8)) for name, layer in block.spade_layers().items()}
    expected = plain_block(block, features, condition)
    torch.testing.assert_close(block(features, condition), expected)
    torch.testing.assert_close(block(features, condition, hidden), expected)


def test_decoder_with_merged_shared_convs_equals_the_plain_decoder():
    decoder = randomized(SPADEDecoder(TINY_DECODER)).eval()
    condition = torch.randn(2, 6, 4, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.inference_mode():
        torch.testing.assert_close(decoder(condition), plain_decoder(decoder, condition))


def test_merged_weights_are_derived_not_stored_and_follow_loaded_weights():
    decoder = randomized(SPADEDecoder(TINY_DECODER), seed=5).eval()
    plain_keys = set(decoder.state_dict())
    condition = torch.randn(1, 6, 4, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.inference_mode():
        decoder(condition)  # fills the caches
    assert set(decoder.state_dict()) == plain_keys
    assert not any("derived" in key or "merged" in key for key in plain_keys)
    # new weights loaded in place: the cached merged weights must not be reused
    other = randomized(SPADEDecoder(TINY_DECODER), seed=7)
    decoder.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(decoder(condition), plain_decoder(other.eval(), condition))
    # a dtype cast replaces the parameters: the caches follow
    with torch.inference_mode():
        single = decoder.float()(condition.float())
    torch.testing.assert_close(single.double(), plain_decoder(other, condition), rtol=0, atol=1e-5)


def test_derived_weights_are_rebuilt_while_autograd_records():
    cache = DerivedWeights()
    weight = torch.ones(2, requires_grad=True)
    (doubled,) = cache.get("doubled", [weight], lambda: (2 * weight,))
    doubled.sum().backward()
    assert torch.equal(weight.grad, torch.full((2,), 2.0))


def test_decoder_gradients_equal_the_plain_decoder_gradients():
    decoder = randomized(SPADEDecoder(TINY_DECODER), seed=8).train()
    condition = torch.randn(1, 6, 4, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    (fast,) = torch.autograd.grad(decoder(condition).square().sum(), [decoder.up_blocks[1].norm_1.gamma.weight])
    (plain,) = torch.autograd.grad(plain_decoder(decoder, condition).square().sum(), [decoder.up_blocks[1].norm_1.gamma.weight])
    torch.testing.assert_close(fast, plain)


@pytest.mark.parametrize("low, folds", [((3, 8, 9), True), ((3, 4, 5), False)])
def test_up_block_equals_upsample_then_conv_folding_only_where_it_pays(low, folds):
    block = randomized(UpBlock3d(3, 4)).eval()
    with torch.no_grad():
        block.norm.running_var.uniform_(0.5, 2.0)
        block.norm.running_mean.normal_()
    volume = torch.randn(2, 3, *low, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    upsampled = F.interpolate(volume, scale_factor=(1, 2, 2), mode="nearest")
    expected = F.relu(block.norm(F.conv3d(upsampled, block.conv.weight, block.conv.bias, padding=1)))
    with torch.no_grad():
        torch.testing.assert_close(block(volume), expected)
    # Folded weights are kept only for maps where the polyphase form saves >= 40 % of the work.
    assert bool(block._derived._entries) == folds == polyphase_pays(low, UpBlock3d.SCALES)


def test_polyphase_pays_from_8x8_maps_at_scale_2():
    assert [polyphase_pays((16, side, side), (1, 2, 2)) for side in (2, 4, 8, 64)] == [False, False, True, True]
    assert polyphase_pays((64, 64), (4, 4)) and not polyphase_pays((4, 4), (2, 2))


def test_precision_helpers():
    assert accurate_dtype(torch.bfloat16) == torch.float32
    assert accurate_dtype(torch.float16) == torch.float32
    assert accurate_dtype(torch.float64) == torch.float64
    assert isinstance(cpu_supports_bfloat16(), bool)
    result = run_in_float32(torch.add, torch.ones(2, dtype=torch.bfloat16), torch.ones(2, dtype=torch.bfloat16))
    assert result.dtype == torch.float32


def test_float32_weights_survive_a_half_cast_but_follow_other_casts():
    mapping = MappingNet(MappingNetConfig(coeff_dim=4, hidden_channels=8, num_layers=1, num_keypoints=2, window=13))
    original = mapping.input_conv.weight.detach().clone()
    mapping.to(torch.bfloat16)
    assert mapping.input_conv.weight.dtype == torch.float32 and torch.equal(mapping.input_conv.weight, original)
    assert mapping(torch.randn(2, 4, 13, dtype=torch.bfloat16)).yaw.dtype == torch.float32
    assert mapping.to(torch.float64).input_conv.weight.dtype == torch.float64
    conv = Float32Conv2d(2, 1, 3).bfloat16()
    assert conv.weight.dtype == torch.float32 and conv(torch.randn(1, 2, 5, 5, dtype=torch.bfloat16)).dtype == torch.float32


def test_keypoint_detector_in_bfloat16_returns_float32_keypoints_close_to_float32():
    config = KeypointDetectorConfig(base_channels=4, max_channels=8, num_blocks=2, reshape_channels=32, reshape_depth=4, num_keypoints=3)
    detector = randomized(KeypointDetector(config), seed=11).float().eval()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(12))
    with torch.inference_mode():
        single = detector(image)
        half = detector.to(torch.bfloat16)(image.bfloat16())
    assert detector.keypoint_head.weight.dtype == torch.float32 and half.dtype == torch.float32
    torch.testing.assert_close(half, single, rtol=0, atol=0.05)


def test_generator_in_bfloat16_runs_and_stays_close_to_float32():
    generator = tiny_generator().eval()
    image, kp_source, kp_driving = inputs(2, seed=13)
    args = (image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving, torch.randn(2, 4))
    with torch.inference_mode():
        single = generator(*args)
        generator.to(torch.bfloat16)
        half = generator(args[0].bfloat16(), *args[1:])
    assert half.prediction.dtype == torch.bfloat16
    assert half.mask.dtype == torch.float32 and half.occlusion_map.dtype == torch.float32
    assert torch.isfinite(half.prediction).all()
    torch.testing.assert_close(half.prediction.float(), single.prediction, rtol=0, atol=0.05)
    torch.testing.assert_close(half.occlusion_map, single.occlusion_map, rtol=0, atol=0.05)


def test_switching_the_reductions_off_gives_the_same_generator_output():
    from tavce.models.renderer.fast_conv import exact_reductions

    generator = tiny_generator().double().eval()
    image, kp_source, kp_driving = (tensor.double() for tensor in inputs(2, seed=16))
    args = (image.expand(2, -1, -1, -1), kp_source.expand(2, -1, -1), kp_driving, torch.randn(2, 4).double())
    with torch.inference_mode():
        fast = generator(*args)
        with exact_reductions(False):
            plain = generator(*args)
    for name in ("prediction", "mask", "occlusion_map"):
        torch.testing.assert_close(getattr(fast, name), getattr(plain, name))


def test_switching_the_reductions_off_gives_the_same_decoder_output():
    from tavce.models.renderer.fast_conv import exact_reductions

    decoder = randomized(SPADEDecoder(TINY_DECODER), seed=14).eval()
    condition = torch.randn(1, 6, 4, 4, generator=torch.Generator().manual_seed(15), dtype=torch.float64)
    with torch.inference_mode():
        fast = decoder(condition)
        with exact_reductions(False):
            plain = decoder(condition)
    torch.testing.assert_close(fast, plain)
    torch.testing.assert_close(plain, plain_decoder(decoder, condition))


def test_weights_loaded_in_place_under_inference_mode_are_not_served_stale():
    # Parameters created under inference_mode have no version counter; the load hook clears the caches.
    condition = torch.randn(1, 6, 4, 4, generator=torch.Generator().manual_seed(16), dtype=torch.float64)
    other = randomized(SPADEDecoder(TINY_DECODER), seed=17).eval()
    with torch.inference_mode():
        decoder = randomized(SPADEDecoder(TINY_DECODER), seed=18).eval().float().double()
        decoder(condition)
        decoder.load_state_dict(other.state_dict())
        torch.testing.assert_close(decoder(condition), plain_decoder(other, condition))


def test_half_precision_generator_keeps_its_volume_path_in_float32():
    generator = tiny_generator().to(torch.bfloat16)
    float32_parts = [generator.fusion, generator.volume_blocks, generator.bottleneck, generator.bottleneck_projection]
    assert all(p.dtype == torch.float32 for part in float32_parts for p in part.parameters())
    assert generator.decoder.input_conv.weight.dtype == torch.bfloat16
    assert generator.dense_motion.hourglass.out_conv.weight.dtype == torch.bfloat16
    assert set(generator.state_dict()) == set(tiny_generator().state_dict())


def test_batch_size_from_free_memory_keeps_a_reserve_and_clamps():
    from tavce.models.renderer.acceleration import batch_size_from_free_memory

    assert batch_size_from_free_memory(10 * 2**30, 2**30) == 8  # 80 % of 10 GiB at 1 GiB per frame
    assert batch_size_from_free_memory(2**30, 4 * 2**30) == 1
    assert batch_size_from_free_memory(2**40, 2**20, max_batch=16) == 16


def test_choose_batch_size_on_the_cpu_is_the_default_without_rendering():
    from tavce.models.renderer.acceleration import choose_batch_size

    calls = []
    assert choose_batch_size(lambda: calls.append(1), torch.device("cpu"), default=3) == 3
    assert calls == []


def test_compiled_step_falls_back_to_eager_once_when_compilation_fails():
    from tavce.models.renderer.acceleration import CompiledStep

    def failing_compiler(function, **options):
        def compiled(*args):
            raise RuntimeError("no compiler here")

        return compiled

    step = CompiledStep(lambda x: x + 1, torch.device("cpu"), enabled=True, compiler=failing_compiler)
    assert step(torch.ones(1)).item() == 2 and step.fell_back
    assert step(torch.ones(1)).item() == 2
    # default on the CPU: eager, the compiler is never called
    never = CompiledStep(lambda x: x * 2, torch.device("cpu"), compiler=failing_compiler)
    assert not never.enabled and never(torch.ones(1)).item() == 2 and not never.fell_back


def test_compiled_step_uses_the_compiled_function_when_it_works():
    from tavce.models.renderer.acceleration import CompiledStep

    seen = {}

    def recording_compiler(function, **options):
        seen.update(options)
        return lambda *args: function(*args) * 10

    step = CompiledStep(lambda x: x + 1, torch.device("cpu"), enabled=True, compiler=recording_compiler)
    assert step(torch.ones(1)).item() == 20 and not step.fell_back
    assert seen == {"options": {"freezing": True}, "dynamic": False}  # CPU: weights frozen and prepacked
    seen.clear()
    CompiledStep(lambda x: x + 1, torch.device("cuda"), compiler=recording_compiler)(torch.ones(1))
    assert seen == {"mode": "reduce-overhead", "dynamic": False}  # CUDA graphs



def _rendered_once(generator, seed: int) -> torch.Tensor:
    image, kp_source, kp_driving = inputs(1, seed=seed)
    with torch.inference_mode():
        return generator(image, kp_source, kp_driving, torch.randn(1, 4, generator=torch.Generator().manual_seed(seed))).prediction


def test_rendering_holds_conv_weights_in_their_activations_layout_and_saves_the_same_bytes(tmp_path):
    rendered = tiny_generator().eval()
    untouched = copy.deepcopy(rendered)
    frames = _rendered_once(rendered, seed=20)  # float32 on the CPU: channels-last activations
    decoder_weight = rendered.decoder.middle_blocks[0].norm_0.gamma.weight
    hourglass_weight = rendered.dense_motion.hourglass.out_conv.weight
    volume_weight = rendered.volume_blocks[0].conv1.weight
    assert decoder_weight.is_contiguous(memory_format=torch.channels_last) and not decoder_weight.is_contiguous()
    assert volume_weight.is_contiguous(memory_format=torch.channels_last_3d) and not volume_weight.is_contiguous()
    # The hourglass's float32 maps stay contiguous on the CPU (dense_motion._hourglass_memory_format).
    assert hourglass_weight.is_contiguous()
    assert isinstance(decoder_weight, torch.nn.Parameter) and not decoder_weight.is_inference()

    state = rendered.state_dict()
    assert all(tensor.is_contiguous() for tensor in state.values())
    assert all(torch.equal(state[key], value) for key, value in untouched.state_dict().items())
    assert rendered.state_dict(keep_vars=True)["dense_motion.hourglass.out_conv.weight"] is hourglass_weight
    rendered.save_pretrained(tmp_path / "rendered")
    untouched.save_pretrained(tmp_path / "untouched")
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "rendered" / name).read_bytes() == (tmp_path / "untouched" / name).read_bytes()

    # Strict in-place loads keep working and keep the layout; frames do not depend on it.
    rendered.load_state_dict(untouched.state_dict(), strict=True)
    assert volume_weight.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(_rendered_once(rendered, seed=20), frames, rtol=0, atol=0)
    torch.testing.assert_close(_rendered_once(untouched, seed=20), frames, rtol=0, atol=0)


def _middle_shared_convs(decoder: SPADEDecoder) -> list[torch.nn.Conv2d]:
    return [layer.shared_conv for block in decoder.middle_blocks for layer in block.spade_layers().values()]


def _storages(tensors) -> set[int]:
    return {tensor.untyped_storage().data_ptr() for tensor in tensors}


def test_middle_shared_convs_are_held_once_while_rendering_and_saved_apart(tmp_path):
    from safetensors.torch import save_file

    decoder = randomized(SPADEDecoder(TINY_DECODER), seed=21).eval()  # float64: contiguous weights
    untouched = copy.deepcopy(decoder)
    condition = torch.randn(1, 6, 4, 4, generator=torch.Generator().manual_seed(22), dtype=torch.float64)
    convs = _middle_shared_convs(decoder)
    assert len(_storages(conv.weight for conv in convs)) == len(convs)
    with torch.inference_mode():
        torch.testing.assert_close(decoder(condition), plain_decoder(untouched, condition))
    # One merged weight and bias; the parameters stay trainable, loadable parameters.
    assert len(_storages(conv.weight for conv in convs)) == 1 and len(_storages(conv.bias for conv in convs)) == 1
    assert all(isinstance(conv.weight, torch.nn.Parameter) and not conv.weight.is_inference() for conv in convs)

    # Saved as separate tensors with the bytes of a decoder that never rendered.
    save_file(decoder.state_dict(), str(tmp_path / "rendered.safetensors"))
    save_file(untouched.state_dict(), str(tmp_path / "untouched.safetensors"))
    assert (tmp_path / "rendered.safetensors").read_bytes() == (tmp_path / "untouched.safetensors").read_bytes()

    # Loading writes through the slices; a cast separates them, and the next render merges them again.
    other = randomized(SPADEDecoder(TINY_DECODER), seed=23).eval()
    decoder.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(decoder(condition), plain_decoder(other, condition))
        single = decoder.float()(condition.float())
    assert len(_storages(conv.weight for conv in convs)) == 1
    torch.testing.assert_close(single.double(), plain_decoder(other, condition), rtol=0, atol=1e-5)


def test_flush_subnormals_zeroes_only_the_subnormal_range():
    tiny = torch.finfo(torch.float32).tiny
    values = torch.tensor([1e-39, -3e-41, tiny, -tiny, 0.0, 2.5, -1e-30, float("nan"), -float("inf")])
    flushed = flush_subnormals_(values.clone())
    expected = torch.tensor([0.0, 0.0, tiny, -tiny, 0.0, 2.5, -1e-30, float("nan"), -float("inf")])
    torch.testing.assert_close(flushed, expected, rtol=0, atol=0, equal_nan=True)


def test_the_hourglass_sees_no_subnormal_heatmap_tails():
    # Keypoints at opposite corners: most voxels lie far in each Gaussian's tail, where
    # exp(-‖d‖²/0.02) underflows to subnormals that slow the 3-D convs' kernels down.
    generator = tiny_generator().eval()
    motion = generator.dense_motion
    seen = {}
    motion.hourglass.register_forward_hook(lambda module, args, output: seen.update(maps=args[0]))
    compressed = torch.rand(1, motion.config.compressed_channels, 4, 16, 16)
    kp_source = torch.full((1, motion.config.num_keypoints, 3), -0.9)
    kp_driving = torch.full((1, motion.config.num_keypoints, 3), 0.9)
    with torch.inference_mode():
        motion(compressed, kp_source, kp_driving)
    maps = seen["maps"]
    unflushed = keypoint_gaussians(kp_driving, coordinate_grid_3d(4, 16, 16, maps))
    assert ((unflushed > 0) & (unflushed < torch.finfo(torch.float32).tiny)).any()  # the case has tails
    assert not ((maps != 0) & (maps.abs() < torch.finfo(maps.dtype).tiny)).any()
