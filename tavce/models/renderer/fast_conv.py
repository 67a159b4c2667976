"""Exact reductions of convolution work used inside the renderer modules.

Each helper computes exactly what the plain computation does (up to floating-point
summation order), with fewer or larger kernel calls:

* :func:`concatenated_conv` — several convs reading the same input become one conv whose
  output channels are the concatenation (a SPADE layer's γ and β convs; the shared-MLP
  convs of all SPADE layers reading the same segmentation map at one resolution).
* :func:`polyphase_weights` / :func:`conv3x3_of_nearest_upsampled` — a 3×3 (or 3×3×3)
  conv with padding 1 of a nearest-upsampled map, computed on the low-resolution map:
  every output phase (position modulo the scale) sees at most two distinct input pixels
  per upsampled axis, so the 3 taps of that axis fold into 2 (weights summed) and all
  phases come out of one conv with 2 taps per upsampled axis. 2×2 instead of 3×3 taps on
  a quarter of the pixels per phase: 4·4 = 16 instead of 9·4 = 36 multiply-adds per input
  pixel and output channel at scale 2 (2.25× less), the same ratio at scale 4.
* :func:`single_output_conv2d` — a k×k conv with one output channel and many input
  channels (the occlusion conv: 1792 channels, 7×7) as one matrix product giving each
  tap's map, then a sum of the k² shifted maps. oneDNN runs the direct form at a few
  GFLOP/s (one output channel leaves its kernels idle); the product runs near peak.
* :class:`DerivedWeights` — the merged / folded weights are *derived* from the module's
  own parameters and cached (never stored in the state dict), rebuilt when a source
  parameter is replaced, modified in place (``load_state_dict``), moved or cast.

Weights keep their original names and shapes, so converters and checkpoints are unaffected.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F

from tavce.models.renderer.precision import memory_format_of

__all__ = [
    "reductions_enabled",
    "exact_reductions",
    "clear_derived",
    "DerivedWeights",
    "concatenate_parameters",
    "merged_parameters",
    "concatenated_conv",
    "polyphase_weights",
    "polyphase_pays",
    "conv3x3_of_nearest_upsampled",
    "single_output_conv2d",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

MIN_POLYPHASE_SAVING = 0.4
"""Fraction of the multiply-adds the polyphase form must save for its folded weights to be kept (:func:`polyphase_pays`)."""

_FOLD_CHUNK_BYTES = 4 * 2**20
"""Float64 working memory of :func:`polyphase_weights` per step (the fold runs over slices of output channels)."""

_state = threading.local()


def reductions_enabled() -> bool:
    """Whether the modules use the reduced computations (the default) or the plain ones."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def exact_reductions(enabled: bool) -> Iterator[None]:
    """Switch the reduced computations off (``False``) or on in this thread, e.g. to time or check the plain path.

    The plain path is the textbook computation (separate γ/β and shared convs, convs on
    upsampled copies, contiguous layouts); both paths compute the same function.
    """
    previous = reductions_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def _signature(tensors: Sequence[torch.Tensor | None]) -> tuple:
    # Inference tensors (parameters created under torch.inference_mode) have no version
    # counter; for them in-place loads are caught by the load_state_dict hook (clear_derived).
    return tuple(
        None if t is None else (t.data_ptr(), None if t.is_inference() else t._version, t.dtype, t.device, tuple(t.shape))
        for t in tensors
    )


def clear_derived(module: torch.nn.Module, incompatible_keys: object = None) -> None:
    """Drop every cached derived weight of ``module`` and its submodules.

    Registered as a ``load_state_dict`` post-hook by the modules that own a
    :class:`DerivedWeights`, so weights loaded in place are never served stale.
    """
    for submodule in module.modules():
        derived = getattr(submodule, "_derived", None)
        if isinstance(derived, DerivedWeights):
            derived.clear()


class DerivedWeights:
    """A cache of tensors derived from parameters, keyed by the parameters' identity and version.

    Not an ``nn.Module`` attribute of tensor type, so nothing derived lands in ``state_dict``.
    While autograd records (training with parameters that require grad), the derived tensors
    are rebuilt on every call so gradients flow to the original parameters.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple, tuple[torch.Tensor | None, ...]]] = {}
        # Threads rendering with one shared renderer: the first callers would each build
        # (and hold) the derived tensors; with the lock they are built once.
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        sources: Sequence[torch.Tensor | None],
        build: Callable[[], tuple[torch.Tensor | None, ...]],
    ) -> tuple[Any, ...]:
        """``build()``, or its cached result while ``sources`` are the same unmodified tensors (None: no bias)."""
        if torch.compiler.is_compiling() or (
            torch.is_grad_enabled() and any(source is not None and source.requires_grad for source in sources)
        ):
            # Under torch.compile the derivation is traced into the graph (a cache lookup would split it).
            return build()
        signature = _signature(sources)
        entry = self._entries.get(name)
        if entry is None or entry[0] != signature:
            with self._lock:
                entry = self._entries.get(name)
                if entry is None or entry[0] != signature:
                    with torch.no_grad():
                        layout = None if not sources or sources[0] is None else memory_format_of(sources[0])
                        entry = (signature, tuple(_derived_tensor(t, layout) for t in build()))
                    self._entries[name] = entry
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()

    def __deepcopy__(self, memo: dict) -> DerivedWeights:
        return DerivedWeights()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._entries = {}
        self._lock = threading.Lock()


def _derived_tensor(tensor: torch.Tensor | None, layout: torch.memory_format | None) -> torch.Tensor | None:
    """A derived weight, detached, channels-last when its source weight is.

    A conv weight held channels-last (:func:`~tavce.models.renderer.precision.hold_conv_weights_in`)
    gives channels-last derived weights, so their convs do not re-lay them out on every call.
    """
    if tensor is None:
        return None
    tensor = tensor.detach()
    if layout is not None and (layout, tensor.ndim) in ((torch.channels_last, 4), (torch.channels_last_3d, 5)):
        return tensor.contiguous(memory_format=layout)
    return tensor


def concatenate_parameters(
    convs: Sequence[torch.nn.Conv2d | torch.nn.Conv3d],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of one conv equal to ``convs`` stacked along output channels (bias None if none have one)."""
    weight = torch.cat([conv.weight for conv in convs])
    if all(conv.bias is None for conv in convs):
        return weight, None
    bias = torch.cat(
        [conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.weight.shape[0]) for conv in convs]
    )
    return weight, bias


def merged_parameters(convs: Sequence[torch.nn.Conv2d | torch.nn.Conv3d]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of one conv equal to ``convs`` stacked along output channels, held once while rendering.

    Under ``torch.inference_mode`` the convs' parameters are re-pointed, once, at consecutive
    slices of the stacked tensors (identity, values, shapes and layout kept; the separate copies
    freed), and later calls return views over those slices: the merged conv and the separate
    convs read the same memory, one resident copy of the weights. Elsewhere (autograd,
    ``torch.compile``), for convs without biases and for parameters created under inference mode
    (inference tensors, which cannot be viewed this way) it is :func:`concatenate_parameters`, a copy.
    Parameters that a cast or move replaces are merged again on the next call.

    Returns:
        weight (Σ O_i, I, *kernel) in the first weight's layout, bias (Σ O_i,) or None.

    The first call re-points parameters: callers serialise first calls as for
    :func:`~tavce.models.renderer.precision.hold_conv_weights_in` (the renderer's first-use lock).
    """
    if (
        torch.compiler.is_compiling()
        or not torch.is_inference_mode_enabled()
        or any(conv.bias is None or conv.weight.is_inference() for conv in convs)
    ):
        return concatenate_parameters(convs)
    weights = [conv.weight for conv in convs]
    biases = [cast(torch.Tensor, conv.bias) for conv in convs]
    stacked_weight, stacked_bias = _stacked(weights), _stacked(biases)
    if stacked_weight is None or stacked_bias is None:
        layout = memory_format_of(weights[0])
        # Outside inference mode: an inference tensor as parameter data could no longer be loaded into or trained.
        with torch.inference_mode(False), torch.no_grad():
            merged_weight = torch.cat([weight.detach() for weight in weights]).contiguous(memory_format=layout)
            merged_bias = torch.cat([bias.detach() for bias in biases])
            start = 0
            for weight, bias in zip(weights, biases):
                stop = start + weight.shape[0]
                weight.data, bias.data = merged_weight[start:stop], merged_bias[start:stop]
                start = stop
        stacked_weight, stacked_bias = _stacked(weights), _stacked(biases)
    return cast(torch.Tensor, stacked_weight), stacked_bias


def _stacked(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """A view of ``tensors`` stacked along dim 0 when they are consecutive slices of one storage, else None."""
    first = tensors[0]
    storage, offset = first.untyped_storage().data_ptr(), first.storage_offset()
    for tensor in tensors:
        if (
            tensor.untyped_storage().data_ptr() != storage
            or tensor.storage_offset() != offset
            or tensor.stride() != first.stride()
            or tensor.shape[1:] != first.shape[1:]
            or tensor.dtype != first.dtype
        ):
            return None
        offset += tensor.shape[0] * tensor.stride(0)
    return first.detach().as_strided((sum(tensor.shape[0] for tensor in tensors), *first.shape[1:]), first.stride())


def concatenated_conv(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """Stride-1 conv of ``input`` (B, C, *spatial) with merged weights; split the result with ``torch.split``."""
    return _CONV[weight.ndim - 2](input, weight.to(input.dtype), None if bias is None else bias.to(input.dtype), padding=padding)


def _axis_folds(scale: int) -> list[torch.Tensor]:
    """Per phase t of one upsampled axis: the fold matrix (taps, 3) from the 3 kernel taps to the input taps.

    With scale 1 the axis is not upsampled and its 3 taps stay (identity). With scale s ≥ 2,
    index the output as Y = q·s + t − 1 (phase t, shifted by one so that every phase reads
    the same two low-resolution pixels): a 3-tap conv (padding 1) at Y reads upsampled pixels
    Y−1, Y, Y+1, i.e. low-resolution pixels q + ⌊(t−1+d)/s⌋ for d = −1, 0, 1, which are
    always among q−1 and q. The fold matrix adds the kernel taps landing on the same pixel.
    """
    if scale == 1:
        return [torch.eye(3, dtype=torch.float64)]
    folds = []
    for phase in range(scale):
        fold = torch.zeros(2, 3, dtype=torch.float64)
        for tap, delta in enumerate((-1, 0, 1)):
            fold[(phase - 1 + delta) // scale + 1, tap] = 1
        folds.append(fold)
    return folds


@functools.cache
def _axis_groups(scale: int) -> tuple[tuple[range, int, int], ...]:
    """Phases of one axis grouped by the input taps they read: (phases, first tap, tap count).

    Tap 0 is pixel q−1, tap 1 pixel q (see :func:`_axis_folds`). At scale 2 both phases read
    both; from scale 3 on, phases 2 … s−1 read q alone, so they need one tap, not two: at
    scale 4 that is (2·2 + 2·1)² / (4·2)² = 56 % of the multiply-adds of the two-tap form in 2-D.
    Plain integers (no tensors): the grouping runs in every forward.
    """
    if scale == 1:
        return ((range(1), 0, 3),)
    groups: list[tuple[range, int, int]] = []
    for phase in range(scale):
        taps = sorted({(phase - 1 + delta) // scale + 1 for delta in (-1, 0, 1)})
        first, count = taps[0], len(taps)
        if groups and (groups[-1][1], groups[-1][2]) == (first, count):
            groups[-1] = (range(groups[-1][0].start, phase + 1), first, count)
        else:
            groups.append((range(phase, phase + 1), first, count))
    return tuple(groups)


@functools.cache
def _phase_groups(scales: tuple[int, ...]) -> tuple[tuple[tuple[tuple[range, int, int], ...], tuple[tuple[int, ...], ...]], ...]:
    """The phase groups of all axes: per group its per-axis (phases, first tap, count) and its phases in product order."""
    return tuple(
        (axes, tuple(itertools.product(*(phases for phases, _, _ in axes))))
        for axes in itertools.product(*(_axis_groups(scale) for scale in scales))
    )


def polyphase_weights(
    weight: torch.Tensor, bias: torch.Tensor | None, scales: Sequence[int]
) -> tuple[torch.Tensor, ...]:
    """Fold a 3-tap conv weight (O, I, 3, …) for an input upsampled by ``scales`` (one per spatial axis).

    Returns ``(weight₀, bias₀, weight₁, bias₁, …)``, one pair per group of phases that read
    the same input taps (:func:`_axis_groups`; one group at scale 2): the group's phases
    stacked along output channels (``itertools.product`` order, output channel fastest),
    with as many taps per axis as the group reads (2 or 1 on upsampled axes, 3 elsewhere),
    summed in float64 and returned in the weight's dtype; the bias repeated per phase (zeros
    when ``bias`` is None). :func:`conv3x3_of_nearest_upsampled` takes the tuple as it is.
    The float64 sums run over slices of output channels, so the working memory beyond the
    result stays a few MiB whatever the weight's size.
    """
    if any(size != 3 for size in weight.shape[2:]) or len(scales) != weight.ndim - 2:
        raise ValueError(f"polyphase_weights: need a 3-tap kernel with one scale per axis, got {tuple(weight.shape)}, {scales}")
    per_axis = [[fold.to(weight.device) for fold in _axis_folds(scale)] for scale in scales]
    letters = "abc"[: len(scales)]
    kernel = "".join(letters)
    folded_axes = "".join(letter.upper() for letter in letters)
    equation = f"oi{kernel}," + ",".join(f"{upper}{lower}" for upper, lower in zip(folded_axes, letters)) + f"->oi{folded_axes}"
    out_channels = weight.shape[0]
    chunk = max(1, _FOLD_CHUNK_BYTES // (8 * weight[0].numel()))
    bias = weight.new_zeros(out_channels) if bias is None else bias
    parameters: list[torch.Tensor] = []
    for axes, phases in _phase_groups(tuple(scales)):
        taps = tuple(slice(first, first + count) for _, first, count in axes)
        folded = weight.new_empty((len(phases) * out_channels, weight.shape[1], *(count for _, _, count in axes)))
        for start in range(0, out_channels, chunk):
            weight64 = weight[start : start + chunk].to(torch.float64)
            for index, phase in enumerate(phases):
                fold = torch.einsum(equation, weight64, *(per_axis[axis][t] for axis, t in enumerate(phase)))
                offset = index * out_channels + start
                folded[offset : offset + weight64.shape[0]] = fold[(...,) + taps]
        parameters += [folded, bias.repeat(len(phases))]
    return tuple(parameters)


def polyphase_pays(low: Sequence[int], scales: Sequence[int]) -> bool:
    """Whether the polyphase form saves at least :data:`MIN_POLYPHASE_SAVING` of the multiply-adds on a ``low`` map.

    The polyphase conv runs on the padded low-resolution map (low + 1 outputs per upsampled
    axis), so on small maps the extra row and column eat the saving: at scale 2 in two axes a
    2×2 map saves nothing, 4×4 saves 31 %, 8×8 44 %, large maps 56 %. Where it does not pay,
    computing on the upsampled copy instead also avoids keeping the folded weights (1.78× the
    conv weight at scale 2), which on such maps are typically the widest ones.
    """
    # Lists, not generators, inside math.prod: torch.compile traces it only on lists.
    plain = 3 ** len(scales) * math.prod([size * scale for size, scale in zip(low, scales)])
    sizes = [size + 1 if scale > 1 else size for size, scale in zip(low, scales)]
    polyphase = sum(
        [
            len(phases) * math.prod([count for _, _, count in axes]) * math.prod(sizes)
            for axes, phases in _phase_groups(tuple(scales))
        ]
    )
    return polyphase <= (1 - MIN_POLYPHASE_SAVING) * plain


def conv3x3_of_nearest_upsampled(
    input: torch.Tensor, folded: Sequence[torch.Tensor], scales: Sequence[int], relu: bool = False
) -> torch.Tensor:
    """``conv(interpolate(input, scale_factor=scales, mode='nearest'), w, b, padding=1)`` on the low-resolution input.

    Args:
        input: (B, I, *low) 4-D or 5-D, low-resolution map.
        folded: :func:`polyphase_weights` of the original (O, I, 3, …) weight and bias for ``scales``.
        scales: integer upsampling factor per spatial axis (1 = not upsampled).
        relu: apply ReLU (on the phase outputs, before interleaving them: one pass less).

    Returns:
        (B, O, *(low·scales)), dense in ``input``'s memory format (channels-last stays channels-last).
    """
    spatial = input.ndim - 2
    batch, low = input.shape[0], input.shape[2:]
    # Padding 1 everywhere: upsampled axes get low+1 outputs q = 0 … low (pixels q−1, q),
    # the others low outputs (3 taps).
    padded = F.pad(input, (1, 1) * spatial)
    sizes = [size + 1 if scale > 1 else size for size, scale in zip(low, scales)]
    groups = _phase_groups(tuple(scales))
    out_channels = folded[0].shape[0] // len(groups[0][1])
    output = torch.empty(
        (batch, out_channels, *(size * scale for size, scale in zip(low, scales))),
        dtype=input.dtype,
        device=input.device,
        memory_format=memory_format_of(input),
    )
    # Output Y = q·s + t − 1 = a·s + b: phase t ≥ 1 of q = 0 … low−1 lands on (a, b) = (q, t − 1),
    # phase 0 of q = 1 … low on (q − 1, s − 1); the other outputs fall outside the image.
    interleaved = output.view(batch, out_channels, *itertools.chain.from_iterable(zip(low, scales)))
    # A group's maps (B, t₀, t₁, …, O, q₀, q₁, …) → (B, O, q₀, t₀, q₁, t₁, …).
    order = [0, spatial + 1] + [axis for k in range(spatial) for axis in (spatial + 2 + k, 1 + k)]
    for (axes, _), weight, bias in zip(groups, folded[0::2], folded[1::2]):
        window = tuple(slice(first, first + size + count - 1) for (_, first, count), size in zip(axes, sizes))
        stacked = _CONV[spatial](padded[(...,) + window], weight.to(input.dtype), bias.to(input.dtype))
        if relu:
            stacked = stacked.relu_()
        counts = [len(group_phases) for group_phases, _, _ in axes]
        phase_maps = stacked.view(batch, *counts, out_channels, *sizes).permute(order)
        pieces = [_phase_pieces(group_phases, size, scale) for (group_phases, _, _), size, scale in zip(axes, low, scales)]
        for combination in itertools.product(*pieces):
            source = (slice(None), slice(None)) + tuple(part for q, t, _, _ in combination for part in (q, t))
            target = (slice(None), slice(None)) + tuple(part for _, _, a, b in combination for part in (a, b))
            interleaved[target].copy_(phase_maps[source])
    return output


def _phase_pieces(phases: range, size: int, scale: int) -> list[tuple[slice, slice, slice, slice]]:
    """Along one axis, (q, phase within the group) of the phase maps → (a, b) of the output, as slices."""
    everything = slice(None)
    if scale == 1:
        return [(everything, everything, everything, everything)]
    pieces = []
    first = phases.start
    if first == 0:
        pieces.append((slice(1, size + 1), slice(0, 1), everything, slice(scale - 1, scale)))
        first = 1
    if first < phases.stop:
        local = slice(first - phases.start, phases.stop - phases.start)
        pieces.append((slice(0, size), local, everything, slice(first - 1, phases.stop - 1)))
    return pieces


def _tap_selector(kernel_size: int, like: torch.Tensor) -> torch.Tensor:
    """(1, k², k, k) weight whose conv sums channel a·k+b shifted by (a, b): 0/1 entries, so the sum is exact."""
    taps = kernel_size * kernel_size
    selector = like.new_zeros(taps, taps)
    selector.fill_diagonal_(1)
    return selector.view(1, taps, kernel_size, kernel_size)


def single_output_conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """``F.conv2d(input, weight, bias, padding=padding)`` for a (1, C, k, k) weight, stride 1.

    Each of the k² taps' maps comes out of one (k², C) × (C, H·W) product; the conv of those
    maps with a 0/1 tap selector adds them shifted into place (same result up to summation order).

    Args:
        input: (B, C, H, W), any memory format; weight (1, C, k, k) with k odd; bias (1,) or None.
        padding: zero padding on every side, k // 2 for a same-size output.

    Returns:
        (B, 1, H + 2·padding − k + 1, W + 2·padding − k + 1) in ``input``'s dtype.
    """
    batch, channels, height, width = input.shape
    kernel_size = weight.shape[-1]
    per_tap = torch.matmul(weight.reshape(channels, -1).t(), input.reshape(batch, channels, height * width))
    per_tap = per_tap.view(batch, -1, height, width)
    return F.conv2d(per_tap, _tap_selector(kernel_size, per_tap), bias, padding=padding)
