"""tavce: audio-driven one-shot talking-head animation (TAVCE on top of SadTalker).

Typical use::

    from tavce import TalkingHeadPipeline
    pipe = TalkingHeadPipeline.from_pretrained()
    pipe("portrait.png", "speech.wav").save("out.mp4")
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0.dev0"

DEFAULT_REPO = "vinthony/SadTalker-V002rc"
"""Where ``from_pretrained()`` and ``tavce convert`` take the official SadTalker weights by default."""

from tavce.errors import (  # noqa: E402
    CheckpointError,
    FaceNotDetectedError,
    IncompatibleWeightsError,
    InvalidArgumentError,
    InvalidAudioError,
    InvalidImageError,
    InvalidVideoError,
    OutputError,
    ComponentNotSerializableError,
    RenderError,
    TavceError,
    WeightsNotFoundError,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Heavy objects are imported on first access so `import tavce` stays fast.
_LAZY = {
    "TalkingHeadPipeline": "tavce.pipeline",
    "TalkingHeadResult": "tavce.pipeline",
    "GenerationOptions": "tavce.options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tavce' has no attribute {name!r}")


__all__ = [
    "__version__",
    "DEFAULT_REPO",
    "TavceError",
    "InvalidArgumentError",
    "InvalidAudioError",
    "InvalidImageError",
    "InvalidVideoError",
    "FaceNotDetectedError",
    "WeightsNotFoundError",
    "IncompatibleWeightsError",
    "OutputError",
    "RenderError",
    "ComponentNotSerializableError",
    "CheckpointError",
    *_LAZY,
]
