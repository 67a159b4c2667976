"""Original -> tavce names for the TAVC encoders (TAVCE correlation checkpoint, ``epoch_<k>.pth`` / ``last.pth``).

The checkpoint is ``{'image_encoder', 'audio_encoder', 'generator1', 'generator2',
'optimizer', 'lr_scheduler'}``; under DDP every state-dict key carries ``module.``
(removed here). Deliberately unused: ``generator1`` / ``generator2`` (the
auxiliary reconstruction generators of stage 1, discarded after it),
``optimizer`` and ``lr_scheduler`` (training state).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tavce.convert.audio_encoder import WAV2LIP_ENCODER_RULES, prefixed
from tavce.convert.common import rename_state_dict, strip_module_prefix

StateDict = dict[str, torch.Tensor]

AUDIO_ENCODER_RULES = (
    *prefixed("audio_encoder.", "backbone.", WAV2LIP_ENCODER_RULES),
    (r"fc\.(weight|bias)", r"projection.\1"),
)
"""``correlation/models.py AudioEncoder`` -> :class:`~tavce.models.tavc.TAVCAudioEncoder`."""

_BLOCK_PARTS = (
    ("bn1", "input_norm"),
    ("conv1", "conv_in"),
    ("bn2", "middle_norm"),
    ("prelu", "activation"),
    ("conv2", "conv_out"),
    ("bn3", "output_norm"),
    ("downsample", "shortcut"),
)
_MOUTH_HEAD_RULES = (
    (r"fc\.(.+)", r"projection.\1"),
    (r"features\.(.+)", r"embedding_norm.\1"),
)
MOUTH_BACKBONE_RULES = (
    (r"conv1\.(.+)", r"stem.0.\1"),
    (r"bn1\.(.+)", r"stem.1.\1"),
    (r"prelu\.(.+)", r"stem.2.\1"),
    # layer1..layer4 are 1-based in the original, stages.0..3 here.
    *(
        (rf"layer{stage + 1}\.(\d+)\.{original}\.(.+)", rf"stages.{stage}.\1.{ours}.\2")
        for stage in range(4)
        for original, ours in _BLOCK_PARTS
    ),
    (r"bn2\.(.+)", r"final_norm.\1"),
)
MOUTH_ENCODER_RULES = (*MOUTH_BACKBONE_RULES, *_MOUTH_HEAD_RULES)
"""``correlation/models.py IResNet`` (IResNet18) -> :class:`~tavce.models.tavc.MouthEncoder`."""

def convert_audio_encoder(original_state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """``ckpt['audio_encoder']`` (``module.`` prefixes allowed) -> :class:`TAVCAudioEncoder` names."""
    return rename_state_dict(
        strip_module_prefix(original_state_dict), AUDIO_ENCODER_RULES, source="TAVC audio_encoder"
    )


def convert_mouth_encoder(
    original_state_dict: Mapping[str, torch.Tensor], *, backbone_only: bool = False
) -> StateDict:
    """``ckpt['image_encoder']`` (``module.`` allowed) -> :class:`MouthEncoder` names.

    Args:
        backbone_only: drop ``fc.*`` and ``features.*``, as TAVCE does when it initialises
            the encoder from the face-recognition ``iresnet18.pth`` (whose head has another size);
            load the result with ``strict=False`` and train the head from scratch.
    """
    return rename_state_dict(
        strip_module_prefix(original_state_dict),
        MOUTH_BACKBONE_RULES if backbone_only else MOUTH_ENCODER_RULES,
        source="TAVC image_encoder",
        ignore=(r"(fc|features)\..+",) if backbone_only else (),
    )
