"""The conformance suites; their home is :mod:`tavce.testing.conformance` (this name keeps working)."""

from tavce.testing.conformance import *  # noqa: F403
from tavce.testing.conformance import __all__  # noqa: F401
