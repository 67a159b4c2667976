"""A tavce weights folder at the official 256 sizes holding the deterministic recipe weights (no download).

The TAVCE release files are included, so the renderer has CERL (the configuration the speed
figures of docs/performance.md are given for).
"""

from __future__ import annotations

from pathlib import Path

OFFICIAL_256_FILES = (
    "SadTalker_V0.0.2_256.safetensors",
    "mapping_00229-model.pth.tar",
    "mapping_00109-model.pth.tar",
    "tavce_correlation_epoch_N.pth",
    "tavce_facerender_latest.pth",
)


def official_256_folder(workdir: Path) -> Path:
    """A tavce folder at the official 256 sizes with recipe weights (CERL on), written once into ``workdir``."""
    folder = workdir / "recipe-256"
    if (folder / "pipeline_config.json").is_file():
        return folder
    from tavce import TalkingHeadPipeline
    from tavce.testing import make_official_checkpoint

    official = workdir / "official-256"
    make_official_checkpoint(official, files=OFFICIAL_256_FILES)
    pipe = TalkingHeadPipeline.from_pretrained(
        official,
        local_files_only=True,
        tavce_correlation=official / "tavce_correlation_epoch_N.pth",
        tavce_facerender=official / "tavce_facerender_latest.pth",
    )
    pipe.save_pretrained(folder)
    return folder
