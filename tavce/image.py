"""Images in and out: a source portrait read into (H, W, 3) uint8 RGB, rendered frames turned into uint8.

Accepted sources:

* a path to any image Pillow decodes (PNG, JPEG, WebP, TIFF, BMP, ...);
* a ``PIL.Image.Image``;
* a numpy array, uint8, (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA;
* a torch tensor, CHW (torchvision layout) or HWC, uint8 or float in [0, 1];
  CHW is assumed when the first dimension is 1, 3 or 4 and the last is not.

Files and PIL images are turned upright from their EXIF orientation tag. Alpha is
dropped (the colour channels are kept as they are, like the original's
``cv2.imread``), palette and CMYK images are converted to RGB, grey is repeated
over three channels, and 16/32-bit integer images (``I;16``, ``I``) are scaled to
8 bits by /257 (the 16-bit range). Images over ``MAX_IMAGE_PIXELS`` (Pillow's
default limit, 89.5 MP) are refused before they are decoded, as decompression
bombs could exhaust memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from tavce.errors import InvalidImageError, RenderError

__all__ = ["MAX_IMAGE_PIXELS", "frames_to_uint8", "load_image"]

MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default: 1024 * 1024 * 1024 // 4 // 3

ImageSource = str | Path | Image.Image | np.ndarray | torch.Tensor

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def load_image(source: ImageSource, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Load ``source`` as an (H, W, 3) uint8 RGB array (see the module docstring for the rules).

    Raises:
        InvalidImageError: missing, empty, corrupt, truncated, too large or mis-shaped input.
    """
    if isinstance(source, torch.Tensor):
        return _from_array(_tensor_to_hwc(source), "<tensor>")
    if isinstance(source, np.ndarray):
        return _from_array(source, "<array>")
    if isinstance(source, Image.Image):
        label = str(getattr(source, "filename", "") or "<PIL image>")
        _check_size(source.size, label, max_pixels)
        return _pil_to_rgb(ImageOps.exif_transpose(source), label)
    if isinstance(source, (str, Path)):
        return _from_file(Path(source), max_pixels)
    raise InvalidImageError(
        f"source image: unsupported type {type(source).__name__}; pass a path, a PIL image, a uint8 array or a tensor"
    )


def _from_file(path: Path, max_pixels: int) -> np.ndarray:
    if not path.exists():
        raise InvalidImageError(f"{path}: image file not found; check the path")
    if path.is_dir():
        raise InvalidImageError(f"{path}: is a folder, not an image; give the path of an image file")
    if path.stat().st_size == 0:
        raise InvalidImageError(f"{path}: image file is empty (0 bytes); re-export or re-download it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_size(image.size, str(path), max_pixels)
                image.load()
                upright = ImageOps.exif_transpose(image)
                return _pil_to_rgb(upright, str(path))
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(str(path), max_pixels) from error
    except UnidentifiedImageError as error:
        raise InvalidImageError(
            f"{path}: not an image Pillow can read; give a PNG, JPEG, WebP, BMP or TIFF file"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImageError(
            f"{path}: image data is corrupt or truncated ({error}); re-export or re-download the file"
        ) from error


def _too_large(label: str, max_pixels: int) -> InvalidImageError:
    return InvalidImageError(
        f"{label}: image has more than {max_pixels:,} pixels and is refused (possible decompression bomb); "
        "downscale it, or pass a larger max_pixels if you trust the file"
    )


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise _too_large(label, max_pixels)
    if width == 0 or height == 0:
        raise InvalidImageError(f"{label}: image is empty ({width}x{height} pixels)")


def _pil_to_rgb(image: Image.Image, label: str) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.int64)
        return _grey_to_rgb(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0  # floats in [0, 1] or already 0-255
        return _grey_to_rgb(np.clip(np.round(values * scale), 0, 255).astype(np.uint8))
    try:
        rgb = image.convert("RGB")
    except ValueError as error:
        raise InvalidImageError(
            f"{label}: image mode {image.mode} cannot be converted to RGB; save it as RGB"
        ) from error
    return np.array(rgb, dtype=np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def _tensor_to_hwc(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().cpu()
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = array.permute(1, 2, 0)
    if array.is_floating_point():
        if array.numel() and (not torch.isfinite(array).all() or array.min() < 0 or array.max() > 1):
            raise InvalidImageError("<tensor>: float image tensors must hold finite values in [0, 1]")
        array = torch.round(array * 255).to(torch.uint8)
    return array.numpy()


def _from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InvalidImageError(
            f"{label}: image arrays must be uint8 (0-255), got {array.dtype}; "
            "convert with (x * 255).round().astype(np.uint8)"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = _grey_to_rgb(array)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidImageError(f"{label}: image must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) frames in [0, 1] (any float dtype, any device) -> (N, S, S, 3) uint8 RGB.

    Values are rounded to the nearest level (SadTalker rounds; the TAVCE code truncated).

    Raises:
        RenderError: a NaN or infinite value (e.g. float16 overflow in the renderer).
    """
    if not torch.isfinite(frames).all():
        raise RenderError(
            "the renderer produced NaN or infinite values; with float16/bfloat16 try dtype=torch.float32, "
            "otherwise check that the weights are complete"
        )
    scaled = (frames.float() * 255).round().clamp(0, 255).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()
