"""Evaluate a folder of generated videos against a folder of real ones (what ``tavce evaluate`` runs).

Videos are paired by file stem (``generated/id001.mp4`` ↔ ``reference/id001.mp4``), both cut
to the shorter one (and to ``max_frames``), and scored with whichever backbones are given:

* FID over all generated vs all real frames (the paper pools every test video);
* per video: CSIM (generated vs real, frame by frame), LSE-D / LSE-C and the TAVC similarity
  (generated video with its own audio track, or the reference's when it has none).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from tavce.batch.executor import Executor, Task
from tavce.errors import InvalidArgumentError, InvalidAudioError, TavceError
from tavce.evaluation.fid import FeatureExtractor, extract_features
from tavce.evaluation.frechet import frechet_distance
from tavce.evaluation.identity import CSIMConfig, IdentityEncoder, csim
from tavce.evaluation.landmarks import video_landmarks
from tavce.evaluation.report import EvaluationReport, VideoScores
from tavce.evaluation.sync import SyncConfig, SyncEncoder, lse
from tavce.evaluation.tavc import TAVCSimilarityConfig, tavc_similarity
from tavce.models.tavc.metric import TemporalCorrelationMetric
from tavce.preprocess.landmarks import FaceLandmarker
from tavce.video_reader import VIDEO_EXTENSIONS, read_video

__all__ = ["EvaluationConfig", "MetricBackbones", "VideoPair", "evaluate_videos", "pair_videos"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationConfig:
    """Settings of one evaluation run.

    Attributes:
        max_frames: compare at most this many leading frames per video (None: all; the paper's
            preprocessing keeps 200).
        batch_size: frames per FID feature-extractor call.
        csim: CSIM settings (alignment). sync: LSE settings (offsets searched). tavc: TAVC similarity settings.
    """

    max_frames: int | None = None
    batch_size: int = 32
    csim: CSIMConfig = field(default_factory=CSIMConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    tavc: TAVCSimilarityConfig = field(default_factory=TAVCSimilarityConfig)

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 2:
            raise InvalidArgumentError(f"max_frames={self.max_frames}: must be at least 2 (or None for all frames)")


@dataclass
class MetricBackbones:
    """The networks behind the metrics; a metric whose backbone is None is skipped.

    Attributes:
        feature_extractor: FID (:class:`~tavce.evaluation.fid.FeatureExtractor`).
        identity_encoder: CSIM (:class:`~tavce.evaluation.identity.IdentityEncoder`).
        sync_encoder: LSE-D / LSE-C (:class:`~tavce.evaluation.sync.SyncEncoder`).
        metric: TAVC similarity (:class:`~tavce.models.tavc.TemporalCorrelationMetric`).
        landmarker: face landmarks for the CSIM alignment and the TAVC mouth crops (or, with an
            executor, a class or function building them in each worker).
        names: where each backbone came from, recorded in the report.
    """

    feature_extractor: FeatureExtractor | None = None
    identity_encoder: IdentityEncoder | None = None
    sync_encoder: SyncEncoder | None = None
    metric: TemporalCorrelationMetric | None = None
    landmarker: FaceLandmarker | Callable[[], FaceLandmarker] | None = None
    names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoPair:
    """A generated video and the real video it reproduces, sharing ``name`` (the file stem)."""

    name: str
    generated: Path
    reference: Path


def videos_in_folder(folder: Path, role: str) -> dict[str, Path]:
    """The videos directly inside ``folder`` by file stem, sorted; ``role`` names the folder in messages."""
    if not folder.is_dir():
        raise InvalidArgumentError(f"{folder}: the {role} folder does not exist; give a folder of videos")
    videos = {path.stem: path for path in sorted(folder.iterdir()) if path.suffix.lower() in VIDEO_EXTENSIONS}
    if not videos:
        raise InvalidArgumentError(f"{folder}: no videos ({', '.join(VIDEO_EXTENSIONS)}) in the {role} folder")
    return videos


def pair_videos(generated: str | Path, reference: str | Path) -> list[VideoPair]:
    """Pairs of same-named videos of the two folders, sorted by name.

    Raises:
        InvalidArgumentError: a folder is missing or empty, or a generated video has no reference.
    """
    generated_videos = videos_in_folder(Path(generated), "generated")
    reference_videos = videos_in_folder(Path(reference), "reference")
    unmatched = sorted(set(generated_videos) - set(reference_videos))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f", ... ({len(unmatched)} in all)" if len(unmatched) > 5 else "")
        raise InvalidArgumentError(
            f"{generated}: no reference video named like {shown} in {reference}; name each generated video "
            "after the real video it reproduces (same file stem)"
        )
    ignored = len(reference_videos) - len(generated_videos)
    if ignored:
        logger.info("%d reference videos have no generated counterpart and are not evaluated", ignored)
    return [VideoPair(name, path, reference_videos[name]) for name, path in generated_videos.items()]


def evaluate_videos(
    pairs: Sequence[VideoPair],
    backbones: MetricBackbones,
    config: EvaluationConfig | None = None,
    *,
    executor: Executor | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Score every pair (see the module docstring); returns the report with per-video rows and FID.

    ``executor`` (e.g. a :class:`~tavce.batch.RayExecutor`) scores the videos on its workers, one task
    per video, with the backbones pickled to each worker; ``backbones.landmarker`` may then be a class
    or function building the landmarker in each worker. Without one, videos are scored here in turn.

    Raises:
        InvalidArgumentError: no pairs, or CSIM / TAVC requested without a landmarker to align faces
            and find mouths (use ``CSIMConfig(align=False)`` for pre-aligned crops).
        TavceError: a video failed on a worker (the message names it and the error).
    """
    from tqdm.auto import tqdm

    config = config or EvaluationConfig()
    if not pairs:
        raise InvalidArgumentError("evaluate_videos: no video pairs to evaluate")
    if _needs_landmarks(backbones, config) and backbones.landmarker is None:
        raise InvalidArgumentError(
            "evaluate_videos: CSIM face alignment and TAVC mouth crops need a landmarker; give one in "
            "MetricBackbones(landmarker=...), or skip those metrics"
        )
    runner = _ScoringRunner(backbones, config)
    scored: Iterator[tuple[VideoScores, np.ndarray | None, np.ndarray | None]]
    if executor is None:
        runner.setup(None)
        scored = (runner.run(pair) for pair in pairs)
    else:
        scored = _scored_on(executor, runner, pairs)
    by_name = {}
    for scores, generated, real in tqdm(scored, total=len(pairs), desc="evaluating", unit="video", disable=not progress):
        by_name[scores.name] = (scores, generated, real)
        logger.debug("%s: %s", scores.name, scores)
    # Rows and features in pair order whatever order the workers finished in.
    rows = [by_name[pair.name][0] for pair in pairs]
    generated_features = [by_name[pair.name][1] for pair in pairs if by_name[pair.name][1] is not None]
    real_features = [by_name[pair.name][2] for pair in pairs if by_name[pair.name][2] is not None]
    fid = None
    if generated_features:
        fid = frechet_distance(np.concatenate(real_features), np.concatenate(generated_features))
    settings = {"max_frames": config.max_frames, "max_offset": config.sync.max_offset, "csim_align": config.csim.align}
    return EvaluationReport(videos=tuple(rows), fid=fid, backbones=dict(backbones.names), settings=settings)


def _needs_landmarks(backbones: MetricBackbones, config: EvaluationConfig) -> bool:
    """CSIM's face alignment and TAVC's mouth crops need landmarks of the generated frames."""
    return backbones.metric is not None or (backbones.identity_encoder is not None and config.csim.align)


def _generated_audio(pair: VideoPair, reference_audio):
    """The generated video's own audio track; the reference's when it has none (e.g. frames-only renders)."""
    from tavce.audio import load_audio

    try:
        return load_audio(pair.generated)
    except InvalidAudioError:
        logger.info("%s: no audio track; scoring lip sync against %s's audio", pair.generated, pair.reference.name)
        return reference_audio


class _ScoringRunner:
    """One video pair per task (a :class:`~tavce.batch.executor.TaskRunner`) -> (scores, generated, real features)."""

    def __init__(self, backbones: MetricBackbones, config: EvaluationConfig) -> None:
        self.backbones, self.config = backbones, config

    def setup(self, device: str | None) -> None:
        landmarker = self.backbones.landmarker
        if landmarker is not None and (isinstance(landmarker, type) or not hasattr(landmarker, "detect")):
            self.backbones = dataclasses.replace(self.backbones, landmarker=landmarker())

    def run(self, pair: VideoPair) -> tuple[VideoScores, np.ndarray | None, np.ndarray | None]:
        backbones, config = self.backbones, self.config
        landmarker = cast("FaceLandmarker | None", backbones.landmarker)  # built by setup
        generated = read_video(pair.generated, max_frames=config.max_frames, audio=False)
        reference = read_video(pair.reference, max_frames=config.max_frames)
        count = min(len(generated.frames), len(reference.frames))
        generated_frames, real_frames = generated.frames[:count], reference.frames[:count]
        audio = _generated_audio(pair, reference.audio)
        scores: dict[str, object] = {}
        generated_features = real_features = None
        if backbones.feature_extractor is not None:
            generated_features = extract_features(generated_frames, backbones.feature_extractor, batch_size=config.batch_size)
            real_features = extract_features(real_frames, backbones.feature_extractor, batch_size=config.batch_size)
        landmarks = (
            video_landmarks(generated_frames, landmarker, name=str(pair.generated))
            if landmarker is not None and _needs_landmarks(backbones, config)
            else None
        )
        if backbones.identity_encoder is not None:
            scores["csim"] = csim(generated_frames, real_frames, backbones.identity_encoder,
                                  generated_landmarks=landmarks, landmarker=landmarker, config=config.csim)  # fmt: skip
        if backbones.sync_encoder is not None:
            sync = lse(generated_frames, audio, backbones.sync_encoder, config.sync)
            scores |= {"lse_d": sync.distance, "lse_c": sync.confidence, "sync_offset": sync.offset}
        if backbones.metric is not None:
            scores["tavc"] = tavc_similarity(generated_frames, audio, backbones.metric, landmarks=landmarks,
                                             config=config.tavc).mean  # fmt: skip
        return VideoScores(name=pair.name, frames=count, **scores), generated_features, real_features


def _scored_on(
    executor: Executor, runner: _ScoringRunner, pairs: Sequence[VideoPair]
) -> Iterator[tuple[VideoScores, np.ndarray | None, np.ndarray | None]]:
    for outcome in executor.map(runner, [Task(pair.name, pair) for pair in pairs]):
        if not outcome.ok:
            raise TavceError(f"{outcome.key}: {outcome.error_type}: {outcome.error} (on {outcome.worker})")
        yield outcome.value
