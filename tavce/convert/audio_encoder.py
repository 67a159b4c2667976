"""Original -> tavce names for the Wav2Lip audio encoder (ExpNet, PoseVAE, TAVC metric)."""

from __future__ import annotations

# "<n>.conv_block.0.*" is block n's conv, "<n>.conv_block.1.*" its BatchNorm.
WAV2LIP_ENCODER_RULES = (
    (r"(\d+)\.conv_block\.0\.(.+)", r"blocks.\1.conv.\2"),
    (r"(\d+)\.conv_block\.1\.(.+)", r"blocks.\1.norm.\2"),
)


def prefixed(
    prefix_original: str, prefix_ours: str, rules: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The same rules applied under a prefix on both sides (e.g. ``audio_encoder.`` -> ``audio_encoder.``)."""
    import re

    return tuple(
        (re.escape(prefix_original) + pattern, prefix_ours + replacement) for pattern, replacement in rules
    )
