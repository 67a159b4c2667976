"""Official files -> a tavce weights folder (what ``tavce convert`` does).

The folder holds every component (:func:`tavce.components.save_components`), the
preprocessing constants the weights were trained with, the provenance of the
weights and a model card naming their sources and licences.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tavce.audio.mel import (
    HOP_LENGTH,
    MAX_ABS_VALUE,
    MEL_FMAX,
    MEL_FMIN,
    MIN_LEVEL_DB,
    N_FFT,
    PREEMPHASIS,
    REF_LEVEL_DB,
)
from tavce.components import save_components
from tavce import DEFAULT_REPO
from tavce.convert.official import OfficialComponents, load_enhancer, load_official_components
from tavce.types import FPS, MEL_BINS, MEL_STEPS_PER_WINDOW, SAMPLE_RATE

__all__ = ["preprocessing_constants", "save_official_components", "convert_official"]

logger = logging.getLogger(__name__)


def preprocessing_constants(size: int) -> dict[str, Any]:
    """The input conventions the official weights were trained with (stored in ``pipeline_config.json``)."""
    return {
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "mel": {
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "win_length": N_FFT,
            "n_mels": MEL_BINS,
            "fmin": MEL_FMIN,
            "fmax": MEL_FMAX,
            "preemphasis": PREEMPHASIS,
            "min_level_db": MIN_LEVEL_DB,
            "ref_level_db": REF_LEVEL_DB,
            "max_abs_value": MAX_ABS_VALUE,
            "window_steps": MEL_STEPS_PER_WINDOW,
        },
        "crop_size": size,
    }


def save_official_components(
    official: OfficialComponents, output: str | Path, *, size: int, provenance: dict[str, Any] | None = None
) -> Path:
    """Write converted components as a tavce folder, with its model card."""
    from tavce.push import write_model_card

    output = Path(output)
    record = {"size": size, "cerl": official.cerl, "files": list(official.sources)} | dict(provenance or {})
    save_components(output, official.components, preprocessing_constants(size), provenance=record)
    write_model_card(output, overwrite=True)
    written = [name for name, component in official.components.items() if component is not None]
    logger.info("wrote %s (%s)", output, ", ".join(written))
    return output


def convert_official(
    output: str | Path,
    location: str | Path = DEFAULT_REPO,
    *,
    size: int = 256,
    full_mode: bool = True,
    tavce_correlation: str | Path | None = None,
    tavce_facerender: str | Path | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    enhancer_weights: str | Path | None = None,
) -> Path:
    """Convert the official files at ``location`` into the tavce folder ``output``.

    Arguments as :func:`~tavce.convert.official.load_official_components`; ``full_mode``
    defaults to True here so that the folder serves every crop mode. ``enhancer_weights``
    (GFPGAN v1.4 + ParseNet, see :func:`~tavce.convert.official.load_enhancer`) adds the
    face enhancer; a pipeline loaded from the folder then enhances by default.
    """
    official = load_official_components(
        location,
        size=size,
        full_mode=full_mode,
        tavce_correlation=tavce_correlation,
        tavce_facerender=tavce_facerender,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    if enhancer_weights is not None:
        official.enhancer = load_enhancer(enhancer_weights, cache_dir=cache_dir, local_files_only=local_files_only)
        official.sources += (str(enhancer_weights),)
    provenance = {"source": str(location)} | ({"revision": revision} if revision else {})
    return save_official_components(official, output, size=size, provenance=provenance)
