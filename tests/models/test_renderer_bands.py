"""Up blocks computed in row bands (bands.py) give the whole-map frames; the helpers are exact."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tavce.models.renderer.bands import BAND_BYTES, band_bounds, conv3x3_rows, mul_nearest_rows_
from tavce.models.renderer.precision import hold_conv_weights_in, preferred_memory_format
from tavce.models.renderer.spade import SPADEResBlock


def test_bands_cover_every_row_once_in_pieces_of_the_budget() -> None:
    bounds = band_bounds(256, 256 * 256 * 4)
    assert bounds[0][0] == 0 and bounds[-1][1] == 256
    assert all(previous[1] == following[0] for previous, following in zip(bounds, bounds[1:]))
    assert {stop - start for start, stop in bounds} == {BAND_BYTES // (256 * 256 * 4)}
    assert band_bounds(20, 1) == [(0, 20)]
    assert band_bounds(20, 10**9) == [(0, 8), (8, 16), (16, 20)]  # never fewer than 8 rows


@pytest.mark.parametrize("bounds", [[(0, 5), (5, 11), (11, 17)], [(0, 17)], [(0, 1), (1, 16), (16, 17)]])
def test_conv3x3_rows_equals_the_whole_conv_band_by_band(bounds: list[tuple[int, int]]) -> None:
    generator = torch.Generator().manual_seed(0)
    source = torch.randn(2, 3, 17, 9, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(4, generator=generator, dtype=torch.float64)
    whole = F.conv2d(source, weight, bias, padding=1)
    banded = torch.cat([conv3x3_rows(lambda a, b: source[:, :, a:b], weight, bias, a, b, 17) for a, b in bounds], dim=2)
    torch.testing.assert_close(banded, whole, rtol=1e-12, atol=1e-12)


def test_two_stacked_3x3_convs_in_bands_equal_the_whole_chain() -> None:
    generator = torch.Generator().manual_seed(1)
    source = torch.randn(1, 2, 12, 7, generator=generator, dtype=torch.float64)
    first, second = (torch.randn(2, 2, 3, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    whole = F.conv2d(F.conv2d(source, first, padding=1).relu(), second, padding=1)

    def hidden(a: int, b: int) -> torch.Tensor:
        return conv3x3_rows(lambda i, j: source[:, :, i:j], first, None, a, b, 12).relu()

    banded = torch.cat([conv3x3_rows(hidden, second, None, a, b, 12) for a, b in [(0, 5), (5, 12)]], dim=2)
    torch.testing.assert_close(banded, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("scale", [2, 4])
def test_mul_nearest_rows_multiplies_by_rows_of_the_upsampled_map(scale: int, layout: torch.memory_format) -> None:
    generator = torch.Generator().manual_seed(scale)
    low = torch.randn(2, 3, 5, 4, generator=generator).contiguous(memory_format=layout)
    upsampled = F.interpolate(low, scale_factor=scale, mode="nearest")
    for start, stop in [(0, 1), (1, 7), (3, 5 * scale), (scale, 2 * scale + 1), (0, 5 * scale)]:
        target = torch.randn(2, 3, stop - start, 4 * scale, generator=generator).contiguous(memory_format=layout)
        expected = target * upsampled[:, :, start:stop]
        assert mul_nearest_rows_(target, low, scale, start) is target
        assert torch.equal(target, expected)


def _up_block(dtype: torch.dtype) -> tuple[SPADEResBlock, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    block = SPADEResBlock(64, 16, 8, spectral_norm=False, spade_hidden=16).eval().to(dtype)
    features = torch.randn(2, 64, 128, 128, dtype=dtype)  # 2 x 64 channels at 256² after x2: 16 MiB in bfloat16
    condition = torch.randn(2, 8, 64, 64, dtype=dtype)
    layout = preferred_memory_format(features)
    return block, features.contiguous(memory_format=layout), condition.contiguous(memory_format=layout)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_wide_up_block_renders_in_bands_what_it_renders_whole(dtype: torch.dtype) -> None:
    block, features, condition = _up_block(dtype)
    with torch.inference_mode():
        hold_conv_weights_in(block, preferred_memory_format(features))
        bounds = block._up_bands(features, 2)
        banded = block(features, condition, upsample=2)
    assert bounds is not None and len(bounds) >= 2
    with torch.enable_grad():  # autograd on: the block is computed whole
        assert block._up_bands(features, 2) is None
        whole = block(features, condition, upsample=2)
    assert banded.dtype == dtype and banded.is_contiguous(memory_format=preferred_memory_format(features))
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(banded.float(), whole.float(), rtol=tolerance, atol=tolerance)


def test_small_maps_and_blocks_without_upsampling_are_not_banded() -> None:
    block, features, _ = _up_block(torch.float32)
    with torch.inference_mode():
        assert block._up_bands(features, 1) is None
        assert block._up_bands(features[:, :, :8, :8], 2) is None
