"""The face enhancer component on small networks: alignment, batching, noise, masks, upscale, save/load, weights files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tavce.convert.official import load_enhancer, load_official_file
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, WeightsNotFoundError
from tavce.models.enhancer import (
    FaceEnhancer,
    FaceEnhancerConfig,
    GFPGAN,
    GFPGANConfig,
    ParseNetConfig,
    alignment_matrix,
    five_points,
    parsing_mask,
)
from tavce.models.enhancer.face_geometry import FFHQ_TEMPLATE_512
from tavce.models.enhancer.gfpgan import ModulatedConv2d
from tavce.testing import face_landmarks, face_photo, reference_state_dict

SMALL_RESTORER = GFPGANConfig(image_size=32, style_dim=16, channel_multiplier=1, narrow=0.125)
SMALL_PARSER = ParseNetConfig(image_size=32, min_feature_size=8, base_channels=4, body_blocks=1, max_channels=8, min_channels=4)


class Payload:
    """An object whose unpickling would need its class: refused by weights_only loading."""


def small_enhancer(upscale: int = 2, parser: bool = True) -> FaceEnhancer:
    """Small networks with the recipe weights (every tensor non-trivial, noise strengths near 1)."""
    enhancer = FaceEnhancer(FaceEnhancerConfig(upscale, SMALL_RESTORER, SMALL_PARSER if parser else None))
    shapes = {key: value.shape for key, value in enhancer.state_dict().items()}
    enhancer.load_state_dict(reference_state_dict(shapes))
    return enhancer.eval()


def _frame(seed: int = 0, centre=(70.0, 62.0), roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    landmarks = face_landmarks(centre, 28.0, roll)
    return face_photo(140, 120, landmarks, seed=seed), landmarks


def test_five_points_are_eye_centres_nose_tip_and_mouth_corners() -> None:
    _, landmarks = _frame()
    points = five_points(landmarks)
    np.testing.assert_allclose(points[0], landmarks[36:42].mean(0), rtol=1e-6)
    np.testing.assert_allclose(points[1], landmarks[42:48].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(points[2:], landmarks[[30, 48, 54]])
    assert five_points(np.stack([landmarks] * 3)).shape == (3, 5, 2)
    with pytest.raises(InvalidArgumentError, match="68, 2"):
        five_points(landmarks[:5])


def test_alignment_maps_the_points_onto_the_template() -> None:
    _, landmarks = _frame(roll=12.0)
    template = FFHQ_TEMPLATE_512 * (256 / 512)
    # exact template points moved by a known similarity are mapped back exactly
    angle, scale, shift = np.deg2rad(10), 0.4, np.array([30.0, 12.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = template @ rotation.T + shift
    matrix = alignment_matrix(points, 256)
    np.testing.assert_allclose(points @ matrix[:, :2].T + matrix[:, 2], template, atol=1e-3)
    assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == pytest.approx(-matrix[1, 0])


def test_parsing_mask_keeps_face_parts_and_clears_the_border() -> None:
    labels = np.full((128, 128), 1)  # skin everywhere
    mask = parsing_mask(labels, 64)
    assert mask.shape == (64, 64) and mask.dtype == np.float64
    assert mask[32, 32] == pytest.approx(1.0, abs=1e-3) and mask[:5].max() == 0 and mask[:, -5:].max() == 0
    assert parsing_mask(np.full((128, 128), 14), 64).max() == 0  # neck only: nothing of the face
    assert parsing_mask(np.full((128, 128), 17), 64).max() == 0  # hair


def test_enhance_restores_the_face_and_upscales_the_rest_with_lanczos() -> None:
    enhancer = small_enhancer(parser=False)
    frame, landmarks = _frame()
    (enhanced,) = enhancer.enhance([frame], five_points(landmarks)[None])
    assert enhanced.shape == (240, 280, 3) and enhanced.dtype == np.uint8
    upscaled = cv2.resize(frame, (280, 240), interpolation=cv2.INTER_LANCZOS4)
    difference = np.abs(enhanced.astype(int) - upscaled).max(axis=-1)
    face = (five_points(landmarks).mean(0) * 2).astype(int)
    assert difference[face[1] - 10 : face[1] + 10, face[0] - 10 : face[0] + 10].mean() > 5  # the face is replaced
    assert difference[:10, :10].max() == 0 and difference[-10:, -10:].max() == 0  # far from it: the upscaled frame


def test_batched_frames_equal_frames_enhanced_one_by_one() -> None:
    enhancer = small_enhancer()
    frames, points = zip(*[(frame, five_points(landmarks)) for frame, landmarks in (_frame(0), _frame(1, (66.0, 60.0), 8.0))])
    together = enhancer.enhance(list(frames), np.stack(points))
    for frame, face_points, batched in zip(frames, points, together):
        (alone,) = enhancer.enhance([frame], face_points[None])
        assert np.abs(alone.astype(int) - batched).max() <= 1


def test_noise_comes_from_the_buffers_or_a_seeded_generator() -> None:
    network = small_enhancer().restorer
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        buffers = network(faces).image
        first = network(faces, generator=torch.Generator().manual_seed(5)).image
        again = network(faces, generator=torch.Generator().manual_seed(5)).image
        other = network(faces, generator=torch.Generator().manual_seed(6)).image
        assert torch.equal(buffers, network(faces).image)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other) and not torch.allclose(first, buffers)


def test_upscale_one_keeps_the_size_and_the_parse_mask_changes_the_blend() -> None:
    frame, landmarks = _frame()
    points = five_points(landmarks)[None]
    (same_size,) = small_enhancer(upscale=1).enhance([frame], points)
    assert same_size.shape == frame.shape
    (parsed,) = small_enhancer(parser=True).enhance([frame], points)
    (square,) = small_enhancer(parser=False).enhance([frame], points)
    assert parsed.shape == square.shape and not np.array_equal(parsed, square)


def test_enhance_refuses_points_that_do_not_match_the_frames() -> None:
    frame, landmarks = _frame()
    with pytest.raises(InvalidArgumentError, match=r"\(2, 5, 2\)"):
        small_enhancer().enhance([frame, frame], five_points(landmarks)[None])
    with pytest.raises(InvalidArgumentError, match="upscale"):
        FaceEnhancerConfig(upscale=3)
    with pytest.raises(InvalidArgumentError, match="shape"):
        GFPGAN(SMALL_RESTORER)(torch.zeros(1, 3, 16, 16))


@pytest.mark.parametrize("parser", [True, False])
def test_save_and_load_keep_the_enhancer(tmp_path, parser: bool) -> None:
    enhancer = small_enhancer(parser=parser)
    enhancer.save_pretrained(tmp_path / "enhancer")
    loaded = load_enhancer(tmp_path / "enhancer", upscale=1)
    assert loaded.config == FaceEnhancerConfig(1, SMALL_RESTORER, SMALL_PARSER if parser else None)
    for key, value in enhancer.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_enhancer_files_holding_other_objects_are_refused(tmp_path) -> None:
    path = tmp_path / "GFPGANv1.4.pth"
    torch.save({"params_ema": {"conv_body_first.weight": torch.zeros(1), "step": 3}}, path)
    with pytest.raises(IncompatibleWeightsError, match=r"GFPGANv1.4.pth.*not tensors.*params_ema.step \(int\)"):
        load_official_file(path)
    torch.save({"params_ema": {"payload": Payload()}}, path)
    with pytest.raises(IncompatibleWeightsError, match="refused for safety"):
        load_official_file(path)
    torch.save({"conv": torch.zeros(1)}, tmp_path / "parsing_parsenet.pth")
    with pytest.raises(IncompatibleWeightsError, match="conv"):
        load_official_file(tmp_path / "parsing_parsenet.pth")


def test_missing_enhancer_files_name_where_they_are_published(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError, match="TencentARC/GFPGAN.*facexlib"):
        load_enhancer(tmp_path)


@pytest.mark.slow
def test_official_enhancer_files_convert_and_load_strictly(tmp_path) -> None:
    """Recipe weights in the official layout (GFPGAN 86 M, ParseNet 21 M parameters): no missing or unexpected key."""
    from tavce.convert.official import ENHANCER_FILES
    from tavce.testing import make_official_checkpoint

    make_official_checkpoint(tmp_path, files=ENHANCER_FILES)
    enhancer = load_enhancer(tmp_path)
    assert enhancer.config == FaceEnhancerConfig()
    style_mlp = 8 * (512 * 512 + 512)  # in the file, not loaded
    assert sum(p.numel() for p in enhancer.restorer.parameters()) == 86_444_252 - style_mlp
    assert sum(p.numel() for p in enhancer.parser.parameters()) == 21_303_254


def test_conv_weights_follow_the_maps_layout_and_are_saved_contiguous(tmp_path) -> None:
    enhancer = small_enhancer()
    kernels = [
        module.weight for module in enhancer.modules()
        if isinstance(module, (torch.nn.Conv2d, ModulatedConv2d)) and module.weight.shape[-1] > 1
    ]  # fmt: skip
    assert all(kernel.is_contiguous(memory_format=torch.channels_last) for kernel in kernels)  # float32 on a CPU
    plain = GFPGAN(SMALL_RESTORER)  # built alone: its weights stay contiguous
    plain.load_state_dict(enhancer.restorer.state_dict())
    assert all(kernel.is_contiguous() for kernel in plain.parameters())
    faces = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(enhancer.restorer(faces).image, plain.eval()(faces).image, atol=1e-5, rtol=1e-5)
    enhancer.to(torch.float64)  # kept contiguous: the kernels prefer it for float64
    assert all(kernel.is_contiguous() for kernel in enhancer.parameters())
    enhancer.to(torch.float32)
    assert all(
        module.weight.is_contiguous(memory_format=torch.channels_last)
        for module in enhancer.modules() if isinstance(module, ModulatedConv2d)
    )  # fmt: skip
    assert all(value.is_contiguous() for value in enhancer.state_dict().values())
    enhancer.save_pretrained(tmp_path / "laid-out")
    contiguous = small_enhancer()
    for parameter in contiguous.parameters():
        parameter.data = parameter.data.contiguous()
    contiguous.save_pretrained(tmp_path / "contiguous")
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "laid-out" / name).read_bytes() == (tmp_path / "contiguous" / name).read_bytes()
    loaded = FaceEnhancer.from_pretrained(tmp_path / "laid-out")  # read into channels-last kernels: same values
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in enhancer.state_dict().items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_upsampled_reflect_padding_is_nearest_upsampling_then_reflection_padding_exactly(dtype, layout) -> None:
    from tavce.models.enhancer.parsenet import _upsampled_reflect_padded

    x = torch.randn(2, 5, 3, 7, generator=torch.Generator().manual_seed(0)).to(dtype).contiguous(memory_format=layout)
    expected = torch.nn.functional.pad(torch.nn.functional.interpolate(x, scale_factor=2), (1, 1, 1, 1), mode="reflect")
    padded = _upsampled_reflect_padded(x)
    assert torch.equal(padded, expected)
    assert padded.is_contiguous(memory_format=layout)


def test_parser_labels_are_the_logits_argmax_without_the_image_head(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = small_enhancer().parser
    faces = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        expected = parser(faces)[0].argmax(dim=1)
        monkeypatch.setattr(parser.image_head, "forward", lambda x: pytest.fail("labels computed the image head"))
        assert torch.equal(parser.labels(faces), expected)


def test_the_restorer_changes_neither_its_inputs_nor_its_buffers_and_repeats_itself() -> None:
    # Its layers work in place on their own fresh outputs; nothing the caller or the module holds may change.
    restorer = small_enhancer().restorer
    faces = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    before = {name: value.clone() for name, value in restorer.state_dict().items()}
    given = faces.clone()
    with torch.inference_mode():
        first, second = restorer(faces).image, restorer(faces).image
    assert torch.equal(faces, given) and torch.equal(first, second)
    assert all(torch.equal(value, before[name]) for name, value in restorer.state_dict().items())


def test_a_style_conv_is_the_modulated_conv_times_root_two_plus_noise_and_bias_then_leaky_relu() -> None:
    restorer = small_enhancer().restorer
    layer = restorer.decoder.convs[0]
    generator = torch.Generator().manual_seed(3)
    x, latent = torch.randn(2, layer.conv.weight.shape[1], 4, 4, generator=generator), torch.randn(2, 16, generator=generator)
    noise = torch.randn(2, 1, 8, 8, generator=generator)
    with torch.inference_mode():
        plain = layer.conv(x, latent) * 2**0.5 + layer.noise_strength * noise + layer.bias
        torch.testing.assert_close(layer(x, latent, noise), torch.nn.functional.leaky_relu(plain, 0.2), atol=1e-6, rtol=1e-6)


def test_parser_layers_fold_the_running_statistics_in_eval_mode_only() -> None:
    from tavce.models.enhancer.parsenet import ConvLayer

    layer = ConvLayer(4, 6, norm=True, activation=True)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for tensor in (layer.norm.weight, layer.norm.bias, layer.norm.running_mean):
            tensor.copy_(torch.randn(tensor.shape, generator=generator))
        layer.norm.running_var.copy_(torch.rand(6, generator=generator) + 0.5)
    x = torch.randn(2, 4, 9, 9, generator=generator)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    with torch.inference_mode():
        unfolded = torch.nn.functional.leaky_relu(layer.norm.eval()(layer.conv(padded)), 0.2)
        torch.testing.assert_close(layer.eval()(x), unfolded, atol=1e-5, rtol=1e-5)
        batch_statistics = torch.nn.functional.leaky_relu(layer.norm.train()(layer.conv(padded)), 0.2)
        torch.testing.assert_close(layer.train()(x), batch_statistics, atol=1e-5, rtol=1e-5)


def test_an_upsampling_block_resizes_its_skip_after_the_one_by_one_conv() -> None:
    from tavce.models.enhancer.gfpgan import ResampleBlock

    block = ResampleBlock(8, 4, 2.0).eval()
    x = torch.randn(1, 8, 6, 6, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        resized = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        main = torch.nn.functional.interpolate(
            torch.nn.functional.leaky_relu(block.conv1(x), 0.2), scale_factor=2.0, mode="bilinear", align_corners=False
        )
        expected = torch.nn.functional.leaky_relu(block.conv2(main), 0.2) + block.skip(resized)
        torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)
