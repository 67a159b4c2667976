"""Row bands: a large map's convolution computed a band of rows at a time.

The decoder's last up block works at the image size with its input's channel count (256
channels at 256² is 64 MiB in float32, 256 MiB at 512²), and its normalised, modulated and
activated maps were the render's memory peak. Each of them is only read by a convolution
whose output has fewer channels, so the block computes those convolutions band by band:
a 3×3 conv's output rows [a, b) need its input rows [a − 1, b + 1), which are made for that
band only (recursively, for a chain of 3×3 convs), and the wide map is never whole.

Each output pixel is the same sum of the same products as with the whole map (zero rows are
padded only at the image's top and bottom edges, as ``padding=1`` does); only the kernels'
internal summation order may differ. The cost is the halo: a band of r rows recomputes
2 rows per 3×3 stage it is made through (about 6 % of those convs at 32-row bands).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["BAND_BYTES", "RowSource", "band_bounds", "conv3x3_rows", "mul_nearest_rows_"]

BAND_BYTES = 8 * 2**20
"""Target size of one band of the widest map a banded block builds (bytes, all channels and batch)."""

RowSource = Callable[[int, int], torch.Tensor]
"""``rows(a, b)`` → rows [a, b) of a (B, C, H, W) map, 0 ≤ a < b ≤ H."""


def band_bounds(height: int, bytes_per_row: int, budget: int = BAND_BYTES) -> list[tuple[int, int]]:
    """[(a, b), …] covering rows 0 … height − 1 in bands of about ``budget`` bytes (at least 8 rows)."""
    rows = max(8, budget // max(bytes_per_row, 1))
    return [(start, min(start + rows, height)) for start in range(0, height, rows)]


def conv3x3_rows(
    rows: RowSource, weight: torch.Tensor, bias: torch.Tensor | None, start: int, stop: int, height: int
) -> torch.Tensor:
    """Rows [start, stop) of ``conv2d(M, weight, bias, padding=1)`` for the map M of height ``height`` that ``rows`` gives."""
    band = rows(max(start - 1, 0), min(stop + 1, height))
    top, bottom = int(start == 0), int(stop == height)
    if top or bottom:
        band = F.pad(band, (0, 0, top, bottom))
    return F.conv2d(band, weight.to(band.dtype), None if bias is None else bias.to(band.dtype), padding=(0, 1))


def mul_nearest_rows_(target: torch.Tensor, low: torch.Tensor, scale: int, start: int) -> torch.Tensor:
    """``target`` times rows [start, start + R) of ``interpolate(low, scale_factor=scale, mode='nearest')``, in place.

    ``target`` is (B, C, R, W·scale), ``low`` (B, C, h, W). Each run of ``target``'s rows that
    repeats one row of ``low``, and each run of whole ``scale``-row groups, is viewed with its
    rows and columns split into (row, repeat) and (column, repeat) and multiplied by ``low``
    broadcast over the repeats: the same products as with the upsampled rows, which are never
    made (one pass less over a map ``scale``² times the size of ``low``'s).
    """
    width = low.shape[3]
    row, stop = start, start + target.shape[2]
    while row < stop:
        first = row // scale
        groups = (stop - row) // scale if row % scale == 0 else 0
        end = row + groups * scale if groups else min((first + 1) * scale, stop)
        part = target[:, :, row - start : end - start].unflatten(3, (width, scale))
        if groups:
            part.unflatten(2, (groups, scale)).mul_(low[:, :, first : first + groups, None, :, None])
        else:
            part.mul_(low[:, :, first : first + 1, :, None])
        row = end
    return target
