"""Original → tavce names for the renderer's motion networks.

MappingNet: ``mapping_00229`` / ``mapping_00109`` ``checkpoint['mapping']`` and the
TAVCE face-render checkpoint's ``mapping`` entry (appendix A).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tavce.convert.common import rename_state_dict

__all__ = ["MAPPING_RULES", "convert_mapping"]

MAPPING_RULES = (
    (r"first\.0\.(weight|bias)", r"input_conv.\1"),
    (r"encoder(\d+)\.1\.(weight|bias)", r"layers.\1.\2"),
    (r"fc_(yaw|pitch|roll)\.(weight|bias)", r"\1_head.\2"),
    (r"fc_t\.(weight|bias)", r"translation_head.\1"),
    (r"fc_exp\.(weight|bias)", r"expression_head.\1"),
)


def convert_mapping(original: Mapping[str, torch.Tensor], source: str = "mapping") -> dict[str, torch.Tensor]:
    """MappingNet tensors under our names (input size 70 or 73 kept as stored)."""
    return rename_state_dict(original, MAPPING_RULES, source=source)
