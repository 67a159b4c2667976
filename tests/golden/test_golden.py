"""Runs every golden case found in $TAVCE_GOLDEN_DIR (default tests/fixtures/golden)."""

from __future__ import annotations

import pytest

from tests.golden import registry
from tests.golden.harness import GOLDEN_DIR, GOLDEN_REPORT, GoldenCase, compare_case

CASE_NAMES = sorted(path.stem for path in GOLDEN_DIR.glob("*.json"))


def test_golden_dir_has_cases():
    assert CASE_NAMES, f"no golden cases (*.json) found in {GOLDEN_DIR}"


@pytest.mark.golden
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_golden_case(case_name: str) -> None:
    check = registry.resolve(case_name)
    case = GoldenCase.load(GOLDEN_DIR, case_name)
    errors = compare_case(case, check(case))
    for error in errors:
        GOLDEN_REPORT.append((case_name, error.output, error.measure, error.error, error.tolerance))
    failed = [e for e in errors if not e.ok]
    assert not failed, "; ".join(
        f"{e.output}: {e.measure} {e.error:.3g} > {e.tolerance:.3g}" for e in failed
    )
