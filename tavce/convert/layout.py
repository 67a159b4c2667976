"""Which weights layout a location holds: a tavce folder, or the official SadTalker files.

``TalkingHeadPipeline.from_pretrained(location)`` accepts both; :func:`locate_weights`
tells them apart for local folders and Hub repositories alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from tavce.components import PIPELINE_CONFIG_NAME
from tavce.errors import WeightsNotFoundError
from tavce.hub import resolve_weights

__all__ = ["Layout", "is_tavce_folder", "detect_layout", "locate_weights", "TAVCE_FOLDER_PATTERNS"]

Layout = Literal["tavce", "official"]

TAVCE_FOLDER_PATTERNS = (PIPELINE_CONFIG_NAME, "*/config.json", "*/model.safetensors", "README.md")
"""The files of a tavce folder fetched from a Hub repository."""


def is_tavce_folder(path: str | Path) -> bool:
    """True when ``path`` is a local tavce weights folder (has ``pipeline_config.json``)."""
    return (Path(path).expanduser() / PIPELINE_CONFIG_NAME).is_file()


def detect_layout(path: str | Path) -> Layout | None:
    """The layout of a local folder: ``"tavce"`` (pipeline_config.json), ``"official"``
    (SadTalker_V0.0.2_*.safetensors) or None (neither, or not a local folder)."""
    folder = Path(path).expanduser()
    if is_tavce_folder(folder):
        return "tavce"
    if folder.is_dir() and any(folder.glob("SadTalker_V0.0.2_*.safetensors")):
        return "official"
    return None


def locate_weights(
    location: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> tuple[Layout, str | Path]:
    """The layout at ``location`` and what to load it from.

    Returns:
        ``("tavce", local folder)`` for a tavce folder, or a Hub repository holding
        ``pipeline_config.json`` (its tavce files are fetched into the cache); otherwise
        ``("official", location)``, to pass on to
        :func:`~tavce.convert.official.load_official_components`, which fetches only the
        official files it needs and reports what is missing.
    """
    local = Path(str(location)).expanduser()
    if local.is_dir():
        return ("tavce", local) if is_tavce_folder(local) else ("official", local)
    try:
        resolve_weights(
            location, PIPELINE_CONFIG_NAME, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
    except WeightsNotFoundError:
        return "official", location
    folder = resolve_weights(
        location,
        allow_patterns=TAVCE_FOLDER_PATTERNS,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    return "tavce", folder
