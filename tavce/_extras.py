"""Optional dependencies: import one, or fail with one line naming the extra that brings it."""

from __future__ import annotations

import importlib
from types import ModuleType

from tavce.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, str] = {
    "demo": "the web app (tavce demo)",
    "ray": "running jobs on a Ray cluster (--ray)",
    "train": "training plots and TensorBoard logs",
}
"""The optional extras of ``pip install 'tavce[NAME]'`` and what each is for (``all`` brings every one)."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, which the optional extra ``extra`` installs.

    Raises:
        MissingExtraError: the module is not installed; the message names the extra and the install command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but one of its own imports failed: show that, not our hint
        raise MissingExtraError(
            f"{EXTRAS.get(extra, extra)} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'tavce[{extra}]'"
        ) from None
