"""The one table of official checkpoint entries tavce deliberately does not load.

Every key of every official file is either consumed by a converter or matched by
exactly one row here (the coverage test in ``tests/convert`` checks both
directions against the bundled manifests). ``docs/weights.md`` shows the same
table; :func:`unused_table_markdown` renders it.

Keys are written the way the manifests write them: flat tensor names for
``.safetensors`` files, ``<top-level key>.<state-dict key>`` for pickled files
(the first dot separates the top-level key).

Top-level entries of a pickled file that the original readers never open
(optimiser states, a discriminator saved beside a MappingNet, ...) are skipped
without being listed: the manifests do not know whether the released files
hold them. Inside every sub-dict tavce does read, loading is strict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["UnusedEntry", "UNUSED_KEYS", "unused_entry", "split_unused", "unused_table_markdown"]


@dataclass(frozen=True)
class UnusedEntry:
    """Official keys (a regex over the whole key) that tavce skips, and why."""

    pattern: str
    reason: str

    def matches(self, key: str) -> bool:
        return re.fullmatch(self.pattern, key) is not None


_SADTALKER = (
    UnusedEntry(r"audio2pose\.netD_motion\..*", "PoseVAE motion discriminator: training only"),
    UnusedEntry(
        r"audio2pose\.netG\.encoder\..*", "PoseVAE (CVAE) encoder: training only; inference samples the latent"
    ),
)
_HEAD_POSE_ESTIMATOR = UnusedEntry(
    r"he_estimator\..*", "HEEstimator: built but never run at inference (MappingNet gives pose and expression)"
)
_DISCRIMINATOR = UnusedEntry(r"discriminator\..*", "face-vid2vid discriminator: training only (optional entry)")
_EPOCH = UnusedEntry(r"epoch", "training bookkeeping (epoch counter)")

UNUSED_KEYS: Mapping[str, tuple[UnusedEntry, ...]] = {
    "SadTalker_V0.0.2_256.safetensors": _SADTALKER,
    "SadTalker_V0.0.2_512.safetensors": _SADTALKER,
    "mapping_00229-model.pth.tar": (_EPOCH,),
    "mapping_00109-model.pth.tar": (_EPOCH,),
    "facevid2vid_00189-model.pth.tar": (_HEAD_POSE_ESTIMATOR, _DISCRIMINATOR, _EPOCH),
    "wav2lip.pth": (
        UnusedEntry(
            r"state_dict\.(?!(module\.)?audio_encoder\.).*",
            "Wav2Lip face encoder/decoder and output block: only the audio encoder initialises TAVCE models",
        ),
    ),
    "tavce_correlation_epoch_N.pth": (
        UnusedEntry(r"generator[12]\..*", "correlation pre-training generators: training only"),
        UnusedEntry(r"optimizer", "optimiser state: training only"),
        UnusedEntry(r"lr_scheduler", "learning-rate scheduler state: training only"),
    ),
    "tavce_facerender_latest.pth": (_HEAD_POSE_ESTIMATOR, _DISCRIMINATOR),
    "GFPGANv1.4.pth": (
        UnusedEntry(
            r"params(_ema)?\.stylegan_decoder\.style_mlp\..*",
            "StyleGAN2 style MLP: never run, the encoder gives the decoder its latents directly",
        ),
    ),
    "parsing_parsenet.pth": (),
}
"""Official file name -> entries deliberately not loaded."""


def unused_entry(filename: str, key: str) -> UnusedEntry | None:
    """The row of :data:`UNUSED_KEYS` covering ``key`` of ``filename``, or None when the key is consumed."""
    return next((entry for entry in UNUSED_KEYS.get(filename, ()) if entry.matches(key)), None)


def split_unused(filename: str, keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """(keys a converter must consume, keys deliberately unused) of ``filename``."""
    used: list[str] = []
    unused: list[str] = []
    for key in keys:
        (unused if unused_entry(filename, key) else used).append(key)
    return used, unused


def unused_table_markdown() -> str:
    """The table as Markdown, one row per (file, pattern) -- the version shown in docs/weights.md."""
    rows = ["| official file | keys (regex) | why they are not loaded |", "|---|---|---|"]
    for filename, entries in UNUSED_KEYS.items():
        for entry in entries:
            rows.append(f"| `{filename}` | `{entry.pattern}` | {entry.reason} |")
    return "\n".join(rows)
