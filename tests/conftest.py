"""Shared fixtures; prints the golden errors reached at the end of a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_media() -> Path:
    """../shared/media when present (optional tests skip without it)."""
    media = SHARED_DIR / "media"
    if not media.is_dir():
        pytest.skip("../shared/media is not available")
    return media


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    try:
        from tests.golden.test_golden import GOLDEN_REPORT
    except ImportError:
        return
    if not GOLDEN_REPORT:
        return
    terminalreporter.section("golden errors reached")
    for case, output, measure, error, tolerance in GOLDEN_REPORT:
        terminalreporter.write_line(f"{case:28s} {output:32s} {measure:16s} {error:10.3g} (<= {tolerance:.3g})")
