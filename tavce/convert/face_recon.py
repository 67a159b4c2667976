"""Original -> tavce names for the 3DMM coefficient network (``face_3drecon.`` in the SadTalker safetensors).

The backbone keeps torchvision's names; the seven ``final_layers`` get named heads.
The caller strips the file's prefix first (``select_prefix(sd, "face_3drecon.")``;
Deep3DFaceRecon's own ``epoch_20.pth`` holds the same dict under ``net_recon``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tavce.convert.common import rename_state_dict, strip_module_prefix
from tavce.models.face_recon.network import HEAD_NAMES

FACE_RECON_PREFIX = "face_3drecon."

FACE_RECON_RULES = (
    (r"backbone\.(.+)", r"backbone.\1"),
    *((rf"final_layers\.{index}\.(weight|bias)", rf"heads.{name}.\1") for index, name in enumerate(HEAD_NAMES)),
)


def convert_face_recon(original_state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ``face_3drecon`` tensors (prefix already removed) -> :class:`FaceReconNet` names."""
    return rename_state_dict(
        strip_module_prefix(original_state_dict),
        FACE_RECON_RULES,
        source="face_3drecon (3DMM network)",
    )
