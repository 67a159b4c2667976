"""``prepare_dataset``: a folder of talking-head videos -> the prepared layout of :mod:`~tavce.training.data.layout`.

Resumable by construction: each video is written into ``.<name>.partial/`` and
renamed to ``<name>/`` only when complete, so a rerun skips finished videos, a
crash loses nothing already finished, and a half-written folder is deleted and
redone. A video that fails (corrupt file, no audio, no face, too short) is
recorded in the manifest with its reason and the run goes on; a rerun tries it
again.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from tavce.batch.executor import Executor, Task
from tavce.errors import InvalidArgumentError, TavceError
from tavce.models.face_recon import FaceReconstructor
from tavce.preprocess.landmarks import FaceLandmarker, default_landmarker
from tavce.training.data.annotate import PrepareConfig, prepare_video
from tavce.training.data.layout import MANIFEST_NAME, META_NAME, PARTIAL_SUFFIX, read_manifest
from tavce.video_reader import VIDEO_EXTENSIONS

__all__ = ["PrepareReport", "list_videos", "prepare_dataset"]

logger = logging.getLogger(__name__)


@dataclass
class PrepareReport:
    """What one :func:`prepare_dataset` run did.

    Attributes:
        prepared: names of the videos finished in this run.
        skipped: names already finished before this run (not touched).
        failed: name -> reason, for the videos that failed in this run.
        manifest: path of ``manifest.jsonl``.
        seconds: wall time of the run.
    """

    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    manifest: Path | None = None
    seconds: float = 0.0


def list_videos(videos: str | Path | Iterable[str | Path]) -> dict[str, Path]:
    """Name -> path of every video to prepare, sorted by name.

    ``videos`` is a folder (searched recursively for :data:`~tavce.video_reader.VIDEO_EXTENSIONS`;
    names are relative paths with ``/`` -> ``#``), a single video file, a ``.txt`` file listing one
    path per line, or an iterable of video paths (names are the file stems).

    Raises:
        InvalidArgumentError: nothing found, a path that does not exist, or two videos with one name.
    """
    if isinstance(videos, (str, Path)):
        source = Path(videos).expanduser()
        if source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
            named = [("#".join(p.relative_to(source).with_suffix("").parts), p) for p in found]
            if not named:
                raise InvalidArgumentError(
                    f"{source}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in this folder or below it"
                )
            return dict(named)
        if source.suffix.lower() == ".txt" and source.is_file():
            lines = [line.strip() for line in source.read_text().splitlines() if line.strip()]
            return list_videos([source.parent / line for line in lines])
        videos = [source]
    named: dict[str, Path] = {}
    for path in (Path(p).expanduser() for p in videos):
        if not path.is_file():
            raise InvalidArgumentError(f"{path}: video not found; check the path")
        if path.stem in named:
            raise InvalidArgumentError(
                f"{path} and {named[path.stem]}: two videos named {path.stem!r}; give the parent folder instead, "
                "whose relative paths name them apart"
            )
        named[path.stem] = path
    if not named:
        raise InvalidArgumentError("no videos given")
    return dict(sorted(named.items()))


def prepare_dataset(
    videos: str | Path | Iterable[str | Path],
    output: str | Path,
    *,
    face_recon: FaceReconstructor | None = None,
    load_face_recon: Callable[[], FaceReconstructor] | None = None,
    landmarker: FaceLandmarker | Callable[[], FaceLandmarker] | None = None,
    config: PrepareConfig | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Prepare every video for training (see the module docstring and docs/training.md).

    Args:
        videos: what :func:`list_videos` accepts.
        output: the dataset folder (created); finished videos already in it are skipped.
        face_recon: the 3DMM network, (B, 3, 224, 224) in [0, 1] -> (B, 257); an ``nn.Module`` is
            switched to eval mode and used on its own device.
        load_face_recon: instead of ``face_recon``, a function returning it, called only when some
            video needs preparing (so a rerun over a finished dataset loads no weights).
        landmarker: face detector + 68 landmarks, or a zero-argument callable that builds one (a class such
            as ``DlibLandmarker``: each worker then builds its own, for backends that cannot be pickled);
            None = :func:`~tavce.preprocess.default_landmarker`.
        config: crop size, mode and limits (:class:`PrepareConfig`).
        workers: videos prepared in parallel on a :class:`~tavce.batch.LocalExecutor` of that many
            processes (1 = in this process). Workers get ``face_recon`` and ``landmarker`` pickled.
        executor: instead of ``workers``, where the videos are prepared, one task per video (e.g. a
            :class:`~tavce.batch.RayExecutor`; ``output`` must then be a folder every worker can write).
            A video whose worker dies is retried once, then recorded as failed.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`PrepareReport`; the manifest lists every finished and failed video.
    """
    started = time.perf_counter()
    config = config or PrepareConfig()
    if workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {workers}")
    if executor is None and workers > 1:
        from tavce.batch.local import LocalExecutor

        executor = LocalExecutor(workers)
    if (face_recon is None) == (load_face_recon is None):
        raise InvalidArgumentError("give the 3DMM network as exactly one of face_recon= or load_face_recon=")
    named = list_videos(videos)
    output = Path(output).expanduser()
    output.mkdir(parents=True, exist_ok=True)
    _remove_partial_folders(output)
    finished = _finished_entries(output)
    report = PrepareReport(manifest=output / MANIFEST_NAME)
    report.skipped = [name for name in named if name in finished]
    todo = {name: path for name, path in named.items() if name not in finished}
    # Failures of earlier runs are retried; those of videos not in this run stay listed.
    earlier_failures = [
        entry for entry in read_manifest(output) if entry.get("status") == "failed" and entry.get("name") not in named
    ]
    _write_manifest(output, [*finished.values(), *earlier_failures])
    if report.skipped:
        logger.info("%d of %d videos already prepared in %s; skipped", len(report.skipped), len(named), output)
    if todo and face_recon is None:
        face_recon = load_face_recon()
    if isinstance(face_recon, torch.nn.Module):
        face_recon.eval()

    bar = tqdm(total=len(todo), desc="prepare-data", unit="video", disable=not progress or not todo)
    # Log records go through tqdm.write while the bar is shown, so warnings do not break it.
    with logging_redirect_tqdm(), open(output / MANIFEST_NAME, "a") as manifest:
        for entry in _run(todo, _PrepareRunner(face_recon, landmarker, config, output), executor):
            manifest.write(json.dumps(entry) + "\n")
            manifest.flush()  # each finished video is on record even if the run is killed next
            if entry["status"] == "ok":
                report.prepared.append(entry["name"])
            else:
                report.failed[entry["name"]] = entry["error"]
                logger.warning("%s: failed: %s", entry["name"], entry["error"])
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))
    bar.close()
    report.seconds = time.perf_counter() - started
    logger.info(
        "prepared %d, skipped %d, failed %d videos in %.1f s -> %s",
        len(report.prepared), len(report.skipped), len(report.failed), report.seconds, report.manifest,
    )  # fmt: skip
    return report


def _remove_partial_folders(output: Path) -> None:
    for partial in output.glob(f".*{PARTIAL_SUFFIX}"):
        if partial.is_dir():
            logger.info("removing %s (left by an interrupted run; the video is redone)", partial)
            shutil.rmtree(partial)


def _finished_entries(output: Path) -> dict[str, dict]:
    """Manifest entries of the complete video folders in ``output`` (those with a meta.json)."""
    entries = {}
    for meta_path in sorted(output.glob(f"*/{META_NAME}")):
        try:
            entries[meta_path.parent.name] = _ok_entry(json.loads(meta_path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError):
            logger.warning("%s: unreadable; the video will be prepared again", meta_path)
    return entries


def _ok_entry(meta: dict) -> dict:
    keys = ("name", "source", "num_frames", "audio_frames", "frames_without_face", "size", "seconds")
    return {"status": "ok", **{key: meta[key] for key in keys}}


def _write_manifest(output: Path, entries: Sequence[dict]) -> None:
    temporary = output / f".{MANIFEST_NAME}.tmp"
    temporary.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    os.replace(temporary, output / MANIFEST_NAME)


# --- running one video, here or on an executor's worker ----------------------------------------


class _PrepareRunner:
    """One video per task (a :class:`~tavce.batch.executor.TaskRunner`): payload ``(name, path)`` -> manifest entry."""

    def __init__(self, face_recon, landmarker, config: PrepareConfig, output: Path) -> None:
        self.face_recon, self.landmarker, self.config, self.output = face_recon, landmarker, config, output

    def setup(self, device: str | None) -> None:
        # A class or factory (or None: the default) is built here, once per worker, for backends that
        # cannot be pickled; the 3DMM network stays on the device it was given on.
        if self.landmarker is None or isinstance(self.landmarker, type) or not hasattr(self.landmarker, "detect"):
            self.landmarker = self.landmarker() if self.landmarker is not None else default_landmarker()

    def run(self, payload: tuple[str, Path]) -> dict:
        """Prepare one video into its partial folder and rename it into place; never raises for a bad video."""
        name, path = payload
        partial = self.output / f".{name}{PARTIAL_SUFFIX}"
        final = self.output / name
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            meta = prepare_video(
                path, partial, name=name, face_recon=self.face_recon, landmarker=self.landmarker, config=self.config
            )
        except Exception as error:  # one bad video must not stop the run; its reason goes to the manifest
            shutil.rmtree(partial, ignore_errors=True)
            if not isinstance(error, TavceError):
                logger.warning("%s: unexpected error", path, exc_info=True)
            reason = str(error) if isinstance(error, TavceError) else f"{type(error).__name__}: {error}"
            return {"status": "failed", "name": name, "source": str(path), "error": reason}
        if final.exists():  # an incomplete folder without meta.json (e.g. copied in by hand): replaced
            shutil.rmtree(final)
        os.replace(partial, final)
        return _ok_entry(meta)


def _run(todo: dict[str, Path], runner: _PrepareRunner, executor: Executor | None):
    """Yield one manifest entry per video as it finishes (any order on an executor)."""
    if executor is None:
        runner.setup(None)
        for name, path in todo.items():
            yield runner.run((name, path))
        return
    try:
        pickle.dumps(runner)
    except Exception as error:
        raise InvalidArgumentError(
            f"the face_recon / landmarker objects cannot be sent to worker processes ({error}); pass the "
            "landmarker's class or a function building it (each worker then builds its own) or use workers=1"
        ) from error
    for outcome in executor.map(runner, [Task(name, (name, path)) for name, path in todo.items()]):
        if outcome.ok:
            yield outcome.value
        else:  # the worker died twice on this video (out of memory?) or the runner itself failed
            reason = f"{outcome.error_type}: {outcome.error} ({outcome.worker})"
            yield {"status": "failed", "name": outcome.key, "source": str(todo[outcome.key]), "error": reason}
