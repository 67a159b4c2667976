"""Golden-case harness: loads a recorded case and compares every recorded output.

A case is ``<name>.json`` (metadata) + ``<name>.safetensors`` (``input.*`` and
``output.*`` tensors) recorded from the original implementation. A check (see
``registry.py``) runs our code on the inputs and returns a :class:`CaseResult`
holding one tensor per recorded output; :func:`compare_case` then measures
max|ours - golden| / max|golden| (or the absolute difference where the case
suggests an absolute tolerance) for each of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tavce.testing import reference_state_dict

GOLDEN_DIR = Path(os.environ.get("TAVCE_GOLDEN_DIR", Path(__file__).parents[1] / "fixtures" / "golden"))
"""Where the golden cases are read: $TAVCE_GOLDEN_DIR (another recorded set) or tests/fixtures/golden."""

GOLDEN_REPORT: list[tuple[str, str, str, float, float]] = []
"""(case, output, measure, error, tolerance) of every comparison, printed by conftest.py at the end of a run."""

DEFAULT_RELATIVE_TOLERANCE = 1e-4


@dataclass
class GoldenCase:
    """One recorded case: metadata, inputs, golden outputs and the weights recipe."""

    name: str
    meta: dict[str, Any]
    inputs: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]

    @classmethod
    def load(cls, folder: Path, name: str) -> GoldenCase:
        meta = json.loads((folder / f"{name}.json").read_text())
        tensors = load_file(str(folder / f"{name}.safetensors"))
        inputs = {k[len("input."):]: v for k, v in tensors.items() if k.startswith("input.")}
        outputs = {k[len("output."):]: v for k, v in tensors.items() if k.startswith("output.")}
        return cls(name=name, meta=meta, inputs=inputs, outputs=outputs)

    @property
    def salt(self) -> int:
        return int(self.meta.get("salt", 0))

    def state_dict(self, module_label: str) -> dict[str, torch.Tensor]:
        """Recipe weights under the ORIGINAL key names of ``module_label`` (see the json's state_dicts)."""
        return reference_state_dict(self.meta["state_dicts"][module_label], self.salt)

    def only_state_dict(self) -> dict[str, torch.Tensor]:
        """Recipe weights of the case's single module, whatever its label."""
        (label,) = self.meta["state_dicts"]
        return self.state_dict(label)

    def suggested_atol(self, output: str) -> float | None:
        suggested = self.meta.get("self_consistency", {}).get("suggested_tolerance", {})
        value = suggested.get("atol_per_output", {}).get(output)
        return float(value) if value is not None else None


@dataclass
class CaseResult:
    """What a check produced.

    Attributes:
        outputs: our tensor for every recorded output name.
        relative_tolerance: per-output override of the default 1e-4 relative bound
            (used only where the case gives no absolute suggestion).
        expected: per-output replacement of the golden tensor, with the reason, for
            behaviours reference-pipeline.md §9 marks "Fix".
        compared_where: per-output boolean mask (same shape) of the elements that are
            compared, with the reason (e.g. argmax labels only where the recorded logits
            are not tied).
    """

    outputs: dict[str, torch.Tensor]
    relative_tolerance: dict[str, float] = field(default_factory=dict)
    expected: dict[str, tuple[torch.Tensor, str]] = field(default_factory=dict)
    compared_where: dict[str, tuple[torch.Tensor, str]] = field(default_factory=dict)


@dataclass
class OutputError:
    output: str
    measure: str
    error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


def measure_output(case: GoldenCase, name: str, ours: torch.Tensor, golden: torch.Tensor, rtol: float) -> OutputError:
    """Compare one output. Integer/bool exactly, uint8 within 1, floats by the relative or absolute measure."""
    ours = torch.as_tensor(ours).detach().cpu()
    if tuple(ours.shape) != tuple(golden.shape):
        return OutputError(name, f"shape {tuple(ours.shape)} vs {tuple(golden.shape)}", float("inf"), 0.0)
    if golden.dtype == torch.uint8:
        diff = (ours.to(torch.int64) - golden.to(torch.int64)).abs().max().item() if golden.numel() else 0
        return OutputError(name, "uint8 max abs", float(diff), 1.0)
    if not golden.is_floating_point():
        diff = (ours.to(torch.int64) - golden.to(torch.int64)).abs().max().item() if golden.numel() else 0
        return OutputError(name, "exact", float(diff), 0.0)
    difference = (ours.to(torch.float64) - golden.to(torch.float64)).abs().max().item() if golden.numel() else 0.0
    atol = case.suggested_atol(name)
    if atol is not None:
        return OutputError(name, "abs (suggested)", difference, atol)
    scale = golden.to(torch.float64).abs().max().item() if golden.numel() else 0.0
    relative = difference / scale if scale > 0 else difference
    return OutputError(name, "rel max", relative, rtol)


def compare_case(case: GoldenCase, result: CaseResult) -> list[OutputError]:
    """Measure every recorded output; a recorded output the check did not return is an error."""
    missing = sorted(set(case.outputs) - set(result.outputs))
    if missing:
        raise AssertionError(f"{case.name}: the check returned no value for recorded outputs {missing}")
    errors = []
    for name, golden in case.outputs.items():
        expected = result.expected.get(name, (golden, ""))[0]
        rtol = result.relative_tolerance.get(name, DEFAULT_RELATIVE_TOLERANCE)
        ours = result.outputs[name]
        if name in result.compared_where:
            where = result.compared_where[name][0]
            ours = torch.as_tensor(ours)
            if tuple(ours.shape) == tuple(expected.shape) == tuple(where.shape):
                ours, expected = ours[where], expected[where]
        errors.append(measure_output(case, name, ours, expected, rtol))
    return errors
