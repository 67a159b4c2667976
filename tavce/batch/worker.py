"""The generation runner: a pipeline loaded once per worker, one video per task."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tavce.pipeline import TalkingHeadPipeline

__all__ = ["GenerationRunner", "PipelineSettings"]


@dataclass(frozen=True)
class PipelineSettings:
    """What every worker loads: the arguments of ``TalkingHeadPipeline.from_pretrained`` and ``.to``.

    ``device`` None lets the executor place each worker (``cuda:i`` per local worker, the GPU Ray
    assigns to an actor, else the CPU); ``dtype`` None is the device's default.
    """

    weights: str | None = None
    revision: str | None = None
    cache_dir: str | None = None
    offline: bool = False
    size: int = 256
    tavce_correlation: str | None = None
    tavce_facerender: str | None = None
    device: str | None = None
    dtype: str | None = None

    def identity(self) -> str:
        """A hash of what decides the pixels: the weights (local files by name, size and modification
        time; a Hub repo by id and revision), the render size and the precision."""
        parts = {
            "weights": _location_identity(self.weights, self.revision),
            "tavce_correlation": _location_identity(self.tavce_correlation, None),
            "tavce_facerender": _location_identity(self.tavce_facerender, None),
            "size": self.size,
            "dtype": self.dtype,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _location_identity(location: str | None, revision: str | None) -> Any:
    if location is None:
        from tavce import DEFAULT_REPO

        location = DEFAULT_REPO
    path = Path(location).expanduser()
    if not path.exists():
        return f"hub:{location}@{revision or 'main'}"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [[str(p.relative_to(path)) if p != path else p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


class GenerationRunner:
    """Loads the pipeline in ``setup`` and renders one job per ``run`` (a :class:`~tavce.batch.executor.TaskRunner`).

    A task's payload is ``{"image", "audio", "output", "options"}``: input paths, the absolute output
    path and the row's option values; ``run`` returns ``{"frames": T}``.
    """

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self.pipe: TalkingHeadPipeline | None = None

    def setup(self, device: str | None) -> None:
        from tavce.pipeline import TalkingHeadPipeline

        settings = self.settings
        chosen = device if settings.device in (None, "cuda") and device is not None else settings.device
        self.pipe = TalkingHeadPipeline.from_pretrained(
            settings.weights,
            revision=settings.revision,
            cache_dir=settings.cache_dir,
            local_files_only=settings.offline,
            size=settings.size,
            tavce_correlation=settings.tavce_correlation,
            tavce_facerender=settings.tavce_facerender,
            device=chosen,
            dtype=settings.dtype,
        )

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        import torch

        if self.pipe is None:
            raise RuntimeError("GenerationRunner.run before setup: the executor sets each worker up first")
        output = Path(payload["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        result = self.pipe(payload["image"], payload["audio"], **{**payload["options"], "progress": False})
        with torch.inference_mode():
            result.save(output)
        return {"frames": result.num_frames}

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "pipe": None}  # the pipeline is loaded by each worker, never sent

