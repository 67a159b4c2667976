"""Runs every golden case found in $TAVCE_GOLDEN_DIR (default tests/fixtures/golden)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.golden import registry
from tests.golden.harness import GoldenCase, compare_case

GOLDEN_DIR = Path(os.environ.get("TAVCE_GOLDEN_DIR", Path(__file__).parents[1] / "fixtures" / "golden"))
CASE_NAMES = sorted(path.stem for path in GOLDEN_DIR.glob("*.json"))

# Filled by the tests and printed by conftest.py at the end of the run.
GOLDEN_REPORT: list[tuple[str, str, str, float, float]] = []


def test_golden_dir_has_cases():
    assert CASE_NAMES, f"no golden cases (*.json) found in {GOLDEN_DIR}"


@pytest.mark.golden
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_golden_case(case_name: str) -> None:
    try:
        check = registry.resolve(case_name)
    except registry.CheckNotBuilt as reason:
        pytest.skip(f"component not built yet: {reason}")
    case = GoldenCase.load(GOLDEN_DIR, case_name)
    errors = compare_case(case, check(case))
    for error in errors:
        GOLDEN_REPORT.append((case_name, error.output, error.measure, error.error, error.tolerance))
    failed = [e for e in errors if not e.ok]
    assert not failed, "; ".join(
        f"{e.output}: {e.measure} {e.error:.3g} > {e.tolerance:.3g}" for e in failed
    )
