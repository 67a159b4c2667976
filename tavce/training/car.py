"""Deprecated location of :class:`~tavce.training.renderer.car.CARLoss` (stage 2 is its only user); import it from there."""

import warnings

from tavce.training.renderer.car import DEFAULT_CAR_WEIGHT, CARLoss

__all__ = ["DEFAULT_CAR_WEIGHT", "CARLoss"]

warnings.warn(
    "tavce.training.car is deprecated, import CARLoss from tavce.training.renderer.car (removed in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
