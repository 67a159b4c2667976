"""Shared machinery of the converters: renaming tables and strict sub-dict extraction.

Each official file family has its own module in ``tavce.convert`` holding a
rename table (original name pattern -> ours). The tables are applied with
:func:`rename_state_dict`, which refuses any key no rule covers, so a layout
change in an official file is reported instead of silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import torch

from tavce.errors import IncompatibleWeightsError

RenameRule = tuple[str, str]
"""(regex matched against the whole original key, replacement template with \\1 groups)."""


def select_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Entries whose key starts with ``prefix``, with the prefix removed."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` segments DataParallel / DDP add to key names."""
    return {key.replace("module.", ""): value for key, value in state_dict.items()}


def rename_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[RenameRule],
    *,
    source: str,
    ignore: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Rename every key with the first matching rule.

    Args:
        state_dict: tensors under the original names.
        rules: ordered (pattern, replacement) pairs; a pattern must match the whole key.
        source: file or component name used in error messages.
        ignore: regexes of original keys that are deliberately not used (documented in the caller).

    Raises:
        IncompatibleWeightsError: a key matches neither a rule nor an ``ignore`` pattern.
    """
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    ignored = [re.compile(pattern) for pattern in ignore]
    renamed: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        for pattern, replacement in compiled:
            match = pattern.fullmatch(key)
            if match:
                renamed[match.expand(replacement)] = value
                break
        else:
            if not any(pattern.fullmatch(key) for pattern in ignored):
                unknown.append(key)
    if unknown:
        shown = ", ".join(sorted(unknown)[:8])
        raise IncompatibleWeightsError(
            f"{source}: {len(unknown)} unexpected key(s) that tavce does not know ({shown}); "
            "the file is not a supported checkpoint layout."
        )
    return renamed
