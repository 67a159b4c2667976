"""Precision policy of the renderer networks: what runs in half precision and what stays float32.

The renderer modules run in whatever dtype they are cast to (``module.to(torch.bfloat16)``
on a CPU with bfloat16 kernels, float16 or bfloat16 on a GPU). The bulk of the work — the
convolutions of the SPADE decoder, the 3-D hourglass, the encoders — is well conditioned and
runs in that dtype. A few steps are not, and are computed in float32 whatever the module's
dtype (:func:`accurate_dtype`):

* the keypoint heat-map softmax (logits divided by the 0.1 temperature amplify rounding ×10)
  and the keypoint expectation over the coordinate grid;
* the MappingNet (tiny; its outputs are softmax logits over pose bins and keypoint deltas);
* coordinate grids, Gaussian heat-maps, sparse motions, the motion softmax and the
  deformation field (grid coordinates need more than bfloat16's 8 mantissa bits: one
  step of 2⁻⁸ in [-1, 1] is a third of a voxel at 64 samples);
* the occlusion sigmoid and its 7×7 conv, the trilinear warps (``grid_sample``).

Submodules whose weights must stay float32 mix in :class:`Float32Weights`: casting the
parent to a half type leaves their floating-point parameters and buffers in float32 (a
bfloat16 copy would already have lost the bits), while device moves still apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "is_half",
    "accurate_dtype",
    "cpu_supports_bfloat16",
    "preferred_memory_format",
    "memory_format_of",
    "hold_conv_weights_in",
    "contiguous_state_dict",
    "run_in_float32",
    "flush_subnormals_",
    "Float32Weights",
    "Float32Conv2d",
    "Float32Conv3d",
]

HALF_DTYPES = (torch.float16, torch.bfloat16)


def is_half(dtype: torch.dtype) -> bool:
    """Whether ``dtype`` is a 16-bit floating type (float16 or bfloat16)."""
    return dtype in HALF_DTYPES


def accurate_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype for numerically sensitive steps: float32 for half types, ``dtype`` otherwise (float64 stays)."""
    return torch.float32 if is_half(dtype) else dtype


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 convolution/matmul kernels (oneDNN avx512_bf16 / AMX).

    Without them PyTorch emulates bfloat16 on the CPU, which is slower than float32; callers
    should then render in float32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return False


CHANNELS_LAST_FLOAT32_CPU = True
"""Whether float32 CPU activations are kept channels-last too (measured faster with oneDNN: benchmarks/renderer.py)."""


def flush_subnormals_(tensor: torch.Tensor) -> torch.Tensor:
    """Set a floating-point ``tensor``'s subnormal entries (0 < |x| < ``finfo.tiny``, ~1.2e-38 in float32) to zero.

    In place, any shape; returns ``tensor``. NaN and infinities are kept.

    CPUs compute with subnormal operands through slow microcode assists, and oneDNN's worker
    threads do not flush them (``torch.set_flush_denormal`` sets only the calling thread). A
    Gaussian heat-map's far tail underflows into that range: 1 % subnormal inputs made the
    hourglass's float32 3-D convs 3-4× slower (4.60 → 4.08 s per float32 frame once flushed).
    The values flushed are below a float32 sum's resolution at any normal magnitude, so
    results do not change (the renderer's frames stay bit-identical).
    """
    return tensor.masked_fill_(tensor.abs() < torch.finfo(tensor.dtype).tiny, 0)


def preferred_memory_format(tensor: torch.Tensor) -> torch.memory_format:
    """The layout the convolution kernels prefer for a 4-D or 5-D activation of this dtype/device.

    Channels-last (``channels_last`` / ``channels_last_3d``) for half types (oneDNN's bfloat16
    kernels and cuDNN's tensor-core kernels read it without reorders; oneDNN's bfloat16 3-D
    convs run about 2× faster than on contiguous maps) and for float32 on the CPU
    (:data:`CHANNELS_LAST_FLOAT32_CPU`); float64 and other cases stay contiguous.
    """
    if tensor.ndim not in (4, 5):
        return torch.contiguous_format
    if is_half(tensor.dtype) or (tensor.dtype == torch.float32 and tensor.device.type == "cpu" and CHANNELS_LAST_FLOAT32_CPU):
        return torch.channels_last if tensor.ndim == 4 else torch.channels_last_3d
    return torch.contiguous_format


def hold_conv_weights_in(
    module: nn.Module, memory_format: torch.memory_format, also: tuple[type[nn.Module], ...] = ()
) -> None:
    """Lay out ``module``'s conv weights in ``memory_format`` (their activations' layout), in place, once.

    ``channels_last`` applies to the 2-D convs, ``channels_last_3d`` to the 3-D ones,
    ``contiguous_format`` to both; ``also`` names further module types whose ``weight`` is a
    conv kernel (e.g. a modulated conv calling ``F.conv2d`` with it).

    A conv whose weight and input differ in layout copies the weight into the input's layout
    on every call (``aten::copy_``; in bfloat16 a few hundred ms per frame for the SPADE
    decoder). The parameter keeps its identity, values and shape, only its strides change
    (one resident copy: the old data is freed); :func:`contiguous_state_dict` keeps what is
    saved contiguous. Only under ``torch.inference_mode`` (rendering): trained modules, whose
    optimizers and gradient buckets expect the layout they were built with, are left as they
    are, and so is a forward under ``torch.compile``, which plans layouts itself.
    """
    if torch.compiler.is_compiling() or not torch.is_inference_mode_enabled():
        return
    dimensions = {torch.channels_last: (4,), torch.channels_last_3d: (5,)}.get(memory_format, (4, 5))
    kinds: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Conv3d, *also)
    for conv in module.modules():
        weight = conv._parameters.get("weight") if isinstance(conv, kinds) else None
        if weight is None or weight.ndim not in dimensions or weight.is_contiguous(memory_format=memory_format):
            continue
        # Outside inference mode: an inference tensor as parameter data could no longer be loaded into or trained.
        with torch.inference_mode(False), torch.no_grad():
            weight.data = weight.data.contiguous(memory_format=memory_format)


def contiguous_state_dict(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """State-dict post-hook: tensors re-laid out or merged while rendering are returned as plain copies.

    Re-laid out by :func:`hold_conv_weights_in` → contiguous; a slice of a merged tensor
    (:func:`~tavce.models.renderer.fast_conv.merged_parameters`) → a copy of its own, since
    safetensors refuses tensors that share memory and ``torch.save`` would write the whole
    merged storage for each. So checkpoints hold the same bytes whatever the module has run.
    Parameters requested with ``keep_vars=True`` are returned as they are.
    """
    for key, value in state_dict.items():
        if not key.startswith(prefix) or isinstance(value, nn.Parameter):
            continue
        if not value.is_contiguous():
            state_dict[key] = value.contiguous()
        elif value.untyped_storage().nbytes() != value.numel() * value.element_size():
            state_dict[key] = value.clone()


def run_in_float32(function: Callable[..., torch.Tensor], *tensors: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``function(*tensors)`` with half-precision tensors promoted to float32; the result is returned in float32."""
    promoted = [tensor.to(accurate_dtype(tensor.dtype)) if tensor.is_floating_point() else tensor for tensor in tensors]
    return function(*promoted, **kwargs)


class Float32Weights(nn.Module):
    """Mixin: casting the module to float16/bfloat16 keeps its float32 parameters and buffers in float32.

    ``Module.to``, ``.half()``, ``.bfloat16()`` all go through ``_apply``; this one lets a cast
    happen only when it does not lower float32 to a half type (device moves and float64 casts
    apply as usual). The module's forward must cast its inputs to its weights' dtype.
    """

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> nn.Module:
        def keep_float32(tensor: torch.Tensor) -> torch.Tensor:
            result = fn(tensor)
            if tensor.dtype == torch.float32 and is_half(result.dtype):
                return tensor.to(device=result.device)
            return result

        return super()._apply(keep_float32, recurse)


class Float32Conv2d(Float32Weights, nn.Conv2d):
    """A Conv2d that stays float32 when its parent is cast to a half type; inputs are promoted to float32.

    Same parameters and state-dict keys as ``nn.Conv2d``.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input.to(self.weight.dtype))


class Float32Conv3d(Float32Weights, nn.Conv3d):
    """A Conv3d that stays float32 when its parent is cast to a half type; inputs are promoted to float32."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input.to(self.weight.dtype))


def memory_format_of(tensor: torch.Tensor) -> torch.memory_format:
    """The layout ``tensor`` is dense in: channels-last (4-D) / channels-last-3d (5-D) when it is that and not
    also contiguous, else contiguous."""
    if tensor.ndim == 4 and tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous():
        return torch.channels_last
    if tensor.ndim == 5 and tensor.is_contiguous(memory_format=torch.channels_last_3d) and not tensor.is_contiguous():
        return torch.channels_last_3d
    return torch.contiguous_format
