"""Fixtures of the stage-2 tests; the tiny trainers and batches live in tiny.py."""

from __future__ import annotations

import pytest
import torch

from tests.training.renderer.tiny import tiny_batch


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return tiny_batch()
