"""load_image: every source kind and mode becomes (H, W, 3) uint8 RGB; bad files raise InvalidImageError."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tavce.errors import InvalidImageError
from tavce.image import load_image

RED = (200, 30, 10)


def rgb_image(width: int = 6, height: int = 4) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.arange(width) * 40
    pixels[..., 1] = np.arange(height)[:, np.newaxis] * 60
    pixels[..., 2] = 90
    return Image.fromarray(pixels)


def test_rgb_png_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "face.png"
    rgb_image().save(path)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (4, 6, 3)
    np.testing.assert_array_equal(loaded, np.asarray(rgb_image()))
    np.testing.assert_array_equal(load_image(str(path)), loaded)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.new("RGB", (40, 20), RED).save(path, exif=exif, quality=95)
    assert load_image(path).shape == (40, 20, 3)


@pytest.mark.parametrize(
    ("mode", "make", "expected_pixel"),
    [
        ("L", lambda: Image.new("L", (5, 3), 77), (77, 77, 77)),
        ("LA", lambda: Image.new("LA", (5, 3), (77, 0)), (77, 77, 77)),
        ("RGBA", lambda: Image.new("RGBA", (5, 3), (*RED, 0)), RED),
        ("P", lambda: Image.new("RGB", (5, 3), RED).convert("P", palette=Image.Palette.ADAPTIVE), RED),
        ("CMYK", lambda: Image.new("CMYK", (5, 3), (0, 255, 255, 0)), (255, 0, 0)),
        ("I;16", lambda: Image.fromarray(np.full((3, 5), 65535, dtype=np.uint16)), (255, 255, 255)),
        ("I;16-mid", lambda: Image.fromarray(np.full((3, 5), 257 * 100, dtype=np.uint16)), (100, 100, 100)),
        ("I", lambda: Image.fromarray(np.full((3, 5), 257 * 30, dtype=np.int32)), (30, 30, 30)),
        ("F", lambda: Image.fromarray(np.full((3, 5), 0.5, dtype=np.float32)), (128, 128, 128)),
        ("1", lambda: Image.new("1", (5, 3), 1), (255, 255, 255)),
    ],
)
def test_modes_convert_to_rgb(tmp_path: Path, mode: str, make, expected_pixel: tuple[int, int, int]) -> None:
    image = make()
    for source in (image, _saved(image, tmp_path)):
        loaded = load_image(source)
        assert loaded.shape == (3, 5, 3) and loaded.dtype == np.uint8, mode
        assert tuple(loaded[1, 2]) == expected_pixel, mode


def _saved(image: Image.Image, folder: Path) -> Path | Image.Image:
    path = folder / f"image.{'tiff' if image.mode in ('CMYK', 'F', 'I') else 'png'}"
    image.save(path)
    return path


def test_arrays_and_tensors() -> None:
    pixels = np.array(rgb_image())
    np.testing.assert_array_equal(load_image(pixels), pixels)
    np.testing.assert_array_equal(load_image(pixels[:, :, 0]), np.repeat(pixels[:, :, :1], 3, axis=2))
    rgba = np.concatenate([pixels, np.zeros_like(pixels[:, :, :1])], axis=2)
    np.testing.assert_array_equal(load_image(rgba), pixels)
    chw = torch.from_numpy(pixels).permute(2, 0, 1)
    np.testing.assert_array_equal(load_image(chw), pixels)
    np.testing.assert_array_equal(load_image(chw.float() / 255), pixels)
    np.testing.assert_array_equal(load_image(torch.from_numpy(pixels)), pixels)  # HWC
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        load_image(chw.float())
    with pytest.raises(InvalidImageError, match="uint8"):
        load_image(pixels.astype(np.float32))
    with pytest.raises(InvalidImageError, match="shape"):
        load_image(np.zeros((4, 5, 2), dtype=np.uint8))
    with pytest.raises(InvalidImageError, match="unsupported type"):
        load_image(b"bytes")  # type: ignore[arg-type]


def _png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header announces width x height pixels (a decompression bomb's signature)."""
    rgb_image(1, 1).save(path)
    data = bytearray(path.read_bytes())
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(data))
    return path


def _truncated(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make_path", "problem"),
    [
        (lambda tmp: tmp / "absent.png", "not found"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: _write(tmp / "empty.png", b""), "empty"),
        (lambda tmp: _write(tmp / "text.png", b"not an image at all" * 10), "not an image"),
        (lambda tmp: _truncated(tmp / "cut.jpg"), "corrupt or truncated"),
        (lambda tmp: _truncated(tmp / "cut.png"), "corrupt or truncated"),
        (lambda tmp: _png_claiming_size(tmp / "bomb.png", 100_000, 100_000), "decompression bomb"),
        (lambda tmp: _png_claiming_size(tmp / "big.png", 10_000, 10_000), "decompression bomb"),
    ],
    ids=["missing", "folder", "empty", "not-image", "truncated-jpeg", "truncated-png", "bomb", "over-limit"],
)
def test_bad_files_raise_invalid_image(tmp_path: Path, make_path, problem: str) -> None:
    path = make_path(tmp_path)
    with pytest.raises(InvalidImageError, match=problem) as caught:
        load_image(path)
    assert str(path) in str(caught.value)


def test_max_pixels_is_adjustable(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    rgb_image(20, 10).save(path)
    with pytest.raises(InvalidImageError, match="more than 100 pixels") as caught:
        load_image(path, max_pixels=100)
    assert "corrupt" not in str(caught.value)
    assert load_image(path, max_pixels=200).shape == (10, 20, 3)


@pytest.mark.parametrize(("name", "shape"), [("art_1.png", (512, 512, 3)), ("art_6.png", (640, 512, 3))])
def test_sample_media(shared_media: Path, name: str, shape: tuple[int, int, int]) -> None:
    image = load_image(shared_media / name)
    assert image.shape == shape and image.dtype == np.uint8 and image.std() > 10
