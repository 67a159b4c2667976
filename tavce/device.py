"""The one device and precision rule of the library, its commands and its trainers.

* Device: ``None`` (or ``"auto"`` on the command line) means CUDA when torch sees a GPU,
  else the CPU; the automatic choice is logged (info) with its reason.
* Precision: ``None`` (or ``"auto"``) means float16 on CUDA and float32 elsewhere; dtypes
  are given as torch dtypes or their names (``"float32"``, ``"float16"``, ``"bfloat16"``).
  bfloat16 on a CPU without native bfloat16 kernels falls back to float32 with a warning
  (oneDNN's reference kernels are 100x+ slower than float32 there).
* Components: :func:`place_component` moves a component and casts it, except the parts it
  declares in ``keep_in_float32`` (as transformers' ``_keep_in_fp32_modules``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.precision import cpu_supports_bfloat16
from tavce.constants import DTYPE_NAMES

__all__ = ["AUTO", "place_component", "resolve_device", "resolve_dtype"]

logger = logging.getLogger(__name__)

AUTO = "auto"
"""The command-line spelling of "choose for me" (``None`` in Python; also accepted there)."""


def resolve_device(device: str | torch.device | None = None, local_rank: int | None = None) -> torch.device:
    """The device to compute on: CUDA when available for ``None`` / ``"auto"``, else as asked.

    Args:
        device: None / "auto", or anything ``torch.device`` accepts (cpu, cuda, cuda:1, mps).
        local_rank: in a multi-process job, the GPU of this process: ``cuda`` without an index
            becomes ``cuda:<local_rank>``.

    Raises:
        InvalidArgumentError: not a device, or a device this machine does not have.
    """
    if device is None or device == AUTO:
        if torch.cuda.is_available():
            resolved = torch.device("cuda", local_rank) if local_rank is not None else torch.device("cuda")
            logger.info("device %s (automatic: torch sees a CUDA GPU)", resolved)
        else:
            resolved = torch.device("cpu")
            logger.info("device cpu (automatic: torch sees no CUDA GPU)")
        return resolved
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InvalidArgumentError(f"device={device!r}: not a torch device; use cpu, cuda, cuda:N or mps") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("device=cuda: no CUDA GPU is visible to torch; use --device cpu")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError("device=mps: Metal is not available on this machine; use --device cpu")
    if resolved.type == "cuda" and resolved.index is None and local_rank is not None:
        resolved = torch.device("cuda", local_rank)
    logger.debug("device %s (as asked)", resolved)
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The precision to run in on ``device``: float16 on CUDA and float32 elsewhere for ``None`` / ``"auto"``.

    Raises:
        InvalidArgumentError: an unknown dtype, or float16 on the CPU.
    """
    if dtype is None or dtype == AUTO:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPE_NAMES:
            raise InvalidArgumentError(f"dtype={dtype!r}: use {', '.join(DTYPE_NAMES)}")
        dtype = getattr(torch, dtype)
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise InvalidArgumentError(f"dtype={dtype}: use torch.float32, torch.float16 or torch.bfloat16")
    if dtype == torch.float16 and device.type == "cpu":
        raise InvalidArgumentError("dtype=float16 is not supported on the CPU; use float32 or bfloat16")
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_supports_bfloat16():
        logger.warning("dtype=bfloat16: this CPU has no native bfloat16 support; rendering in float32 instead")
        return torch.float32
    return dtype


def place_component(component: Any, device: torch.device, dtype: torch.dtype) -> None:
    """Move an ``nn.Module`` component to ``device`` and cast it to ``dtype``, except its float32 parts.

    A component lists the submodules that must stay float32 in its ``keep_in_float32`` class
    attribute (submodule paths; ``""`` is the whole component, the default for a component that
    declares nothing, as :class:`~tavce.models.base.TavceModule` does). Kept parts are never cast to a
    half type on the way, so no precision is lost. Components that are not modules manage their
    own device and are left alone.
    """
    if not isinstance(component, torch.nn.Module):
        return
    kept = tuple(getattr(component, "keep_in_float32", ("",)))
    if "" in kept:
        component.to(device=device, dtype=torch.float32)
        return
    if not kept:
        component.to(device=device, dtype=dtype)
        return
    component.to(device=device)
    kept_modules = {id(component.get_submodule(path)) for path in kept}

    def cast(module: torch.nn.Module) -> None:
        if id(module) in kept_modules:
            module.to(dtype=torch.float32)
            return
        module._apply(lambda tensor: tensor.to(dtype) if tensor.is_floating_point() else tensor, recurse=False)
        for child in module.children():
            cast(child)

    cast(component)
