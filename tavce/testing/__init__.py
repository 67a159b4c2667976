"""Test helpers that ship with tavce, for our tests and for users' own.

One module per kind of helper, each usable on its own:

* :mod:`tavce.testing.recipe`: the deterministic weights recipe the golden cases were
  recorded with (``reference_tensor``, ``reference_state_dict``);
* :mod:`tavce.testing.official`: official-layout checkpoint files filled with it;
* :mod:`tavce.testing.tiny`: tiny components and weights folders for fast pipeline tests;
* :mod:`tavce.testing.portraits`: the standard face drawn with known landmarks (the
  drawing primitives) and prepared sources made from it;
* :mod:`tavce.testing.videos`: tiny talking-head videos whose mouth follows their audio;
* :mod:`tavce.testing.conformance`: one test suite per component interface (needs pytest,
  so it is not imported here; ``tavce.conformance`` is the same module).

Every helper except the conformance suites is importable from ``tavce.testing`` directly.
"""

from tavce.testing.official import (
    OFFICIAL_FILES,
    is_bare_file,
    make_official_checkpoint,
    official_golden_state,
    official_manifest,
    write_official_file,
)
from tavce.testing.portraits import face_landmarks, face_photo, synthetic_portrait, synthetic_source
from tavce.testing.recipe import reference_state_dict, reference_tensor
from tavce.testing.tiny import make_tiny_checkpoint, tiny_components
from tavce.testing.videos import make_synthetic_videos, synthetic_face_landmarks

__all__ = [
    "OFFICIAL_FILES",
    "face_landmarks",
    "face_photo",
    "is_bare_file",
    "make_official_checkpoint",
    "make_synthetic_videos",
    "make_tiny_checkpoint",
    "official_golden_state",
    "official_manifest",
    "reference_state_dict",
    "reference_tensor",
    "synthetic_face_landmarks",
    "synthetic_portrait",
    "synthetic_source",
    "tiny_components",
    "write_official_file",
]
