"""``train_renderer``: stage 2 (the renderer with CERL + CAR) on a prepared dataset, through the shared run loop.

:func:`train_renderer` runs as one process or, unchanged, as every rank of a ``torchrun``
job. Each step is :class:`~tavce.training.renderer.RendererTrainer`'s (generator step, then
discriminator step); the loop (:mod:`tavce.training.loop`) gives the data order, the
checkpoints (``OUT/checkpoints/step_<N>.pt``: after every epoch, every
``checkpoint_every`` steps and at the end), the figures log and an exact resume, and at
the end the trainer exports ``OUT/weights``, a tavce weights folder
``TalkingHeadPipeline.from_pretrained`` (and ``tavce generate --weights``) loads with CERL on.

:class:`RendererRunConfig` holds how a run is carried out (initial weights, metric, device,
length, logging), :class:`~tavce.training.renderer.RendererTrainingConfig` the method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch.utils.data import Dataset

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.renderer import CERLRendererConfig
from tavce.training.distributed import DistributedContext
from tavce.training.loop import LoopSettings, split_validation, train_stage
from tavce.training.renderer.config import RendererTrainingConfig, TrainingConfigError
from tavce.training.renderer.trainer import RendererStepRecord, RendererTrainer
from tavce.training.run_settings import RunSettings

if TYPE_CHECKING:
    from tavce.models.tavc import TemporalCorrelationMetric

__all__ = ["RendererRunConfig", "RendererTrainingResult", "build_trainer", "loop_settings", "train_renderer"]

LANDMARKERS = ("auto", "insightface", "dlib")


@dataclass(frozen=True)
class RendererRunConfig(RunSettings):
    """How one stage-2 run is carried out (what :class:`RendererTrainingConfig` leaves out: it holds the method).

    Attributes:
        init: initial weights, official files and/or tavce weights folders, in the order
            :func:`~tavce.training.renderer.read_renderer_parts` reads them (later sources fill
            what earlier ones lack); a tuple of two files is face-vid2vid's pair.
        metric: the frozen stage-1 metric: the metric folder ``tavce train tavc`` writes (``RUN/metric``),
            a tavce weights folder with a ``metric`` component, or TAVCE's correlation checkpoint.
            Needed by CERL and CAR.
        base: tavce weights folder whose preprocessor and Audio2Coeff are stored beside the trained
            renderer (default: the first folder in ``init``); without one the export holds only the
            renderer and metric.
        landmarker: finds the mouth on generated frames for CAR: ``auto`` (insightface when its model
            pack is present, else dlib), ``insightface`` or ``dlib``.
        max_steps: stop after this many steps (None: the schedule's epochs decide).
        export: write ``OUT/weights`` at the end.
        validation_items: held-out items per validation (8 here).

    Compute, logging, checkpoints, validation and watching: :class:`~tavce.training.run_settings.RunSettings`
    (here validation renders the held-out items: L1 and PSNR, a sample ``OUT/samples/step_<N>.png``
    of source | driving | generated; the best checkpoint is the one with the lowest L1).
    """

    init: tuple[str | tuple[str, str], ...] = ()
    metric: str | None = None
    base: str | None = None
    landmarker: str = "auto"
    max_steps: int | None = None
    export: bool = True
    validation_items: int = 8

    def __post_init__(self) -> None:
        problems = self.run_problems()
        if self.landmarker not in LANDMARKERS:
            problems.append(f"landmarker={self.landmarker!r}: choose one of {', '.join(LANDMARKERS)}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be at least 1 (or None for the schedule's epochs), got {self.max_steps}")
        if problems:
            raise TrainingConfigError("RendererRunConfig: " + "; ".join(problems))


@dataclass
class RendererTrainingResult:
    """What :func:`train_renderer` leaves.

    Attributes:
        trainer: the trainer after the last step (its modules on the training device).
        history: one record per step run by this call (empty on ranks other than 0).
        steps: steps done in total (including those before a resume).
        checkpoint: the last checkpoint written (None on ranks other than 0).
        weights_folder: ``OUT/weights`` if exported.
    """

    trainer: RendererTrainer
    history: list[RendererStepRecord] = field(default_factory=list)
    steps: int = 0
    checkpoint: Path | None = None
    weights_folder: Path | None = None


def _landmarker(choice: str):
    from tavce.preprocess.landmarks import DlibLandmarker, InsightFaceLandmarker, default_landmarker

    choices: dict[str, Callable[[], Any]] = {
        "auto": default_landmarker,
        "insightface": InsightFaceLandmarker,
        "dlib": DlibLandmarker,
    }
    return choices[choice]()


def build_trainer(config: RendererTrainingConfig, run: RendererRunConfig, device: torch.device) -> RendererTrainer:
    """A :class:`RendererTrainer` from ``run.init`` / ``run.metric`` (loaded non-strictly, fresh layers reported).

    Raises:
        TrainingConfigError: no initial weights, or no metric where CERL / CAR need one.
        WeightsNotFoundError, IncompatibleWeightsError: an unreadable or unfit weights source.
    """
    from tavce.training.renderer.weights import load_metric

    if not run.init:
        raise TrainingConfigError(
            "stage 2 needs initial weights: pass the official files (face-vid2vid checkpoint + MappingNet, or "
            "SadTalker_V0.0.2_256.safetensors + mapping_00229-model.pth.tar) or a tavce weights folder as --init"
        )
    needs_metric = config.cerl or bool(config.losses.car or config.losses.mouth)
    if needs_metric and run.metric is None:
        raise TrainingConfigError(
            f"variant {config.variant!r} needs the frozen stage-1 metric (CERL input / CAR): pass --metric, a folder "
            "written by `tavce train tavc` (RUN/metric), a tavce weights folder with a metric, or TAVCE's correlation file"
        )
    metric = load_metric(cast(str, run.metric)).to(device) if needs_metric else None
    landmarker = _landmarker(run.landmarker) if (config.losses.car or config.losses.mouth) else None
    return RendererTrainer.from_pretrained(
        list(run.init),
        cast("TemporalCorrelationMetric | None", metric),
        config,
        renderer_config=_renderer_config(run.init),
        landmarker=landmarker,
        device=device,
    )


def _renderer_config(sources: Sequence[str | tuple[str, str]]) -> CERLRendererConfig:
    """The architecture to build: the last tavce folder's renderer's, else the official sizes."""
    from tavce.components import read_pipeline_config
    from tavce.models.base import resolve_component_class

    folders = [Path(source) for source in sources if isinstance(source, str) and Path(source).is_dir()]
    if not folders:
        return CERLRendererConfig()
    folder = folders[-1]
    recorded = read_pipeline_config(folder).get("components", {})
    if "renderer" not in recorded:
        return CERLRendererConfig()
    return resolve_component_class(recorded["renderer"], folder).from_pretrained(folder / "renderer").config



def loop_settings(config: RendererTrainingConfig, run: RendererRunConfig) -> LoopSettings:
    """How the shared loop runs stage 2 (the method's batch, epochs and seed; the rest from ``run``)."""
    return LoopSettings.gather(config, run, epochs=config.schedule.epochs)


def train_renderer(
    config: RendererTrainingConfig,
    data: str | Path,
    output: str | Path,
    *,
    run: RendererRunConfig | None = None,
    resume: str | Path | None = None,
    trainer: RendererTrainer | None = None,
    dataset: Dataset | None = None,
    base: str | Path | dict[str, Any] | None = None,
) -> RendererTrainingResult:
    """Train the renderer with CERL + CAR (stage 2) on a folder written by ``tavce prepare-data``.

    Args:
        config: the method's settings (:func:`~tavce.training.renderer.ablation_config` for Table IV).
        data: the prepared dataset folder (frames, 3DMM coefficients, mel windows, mouth centres).
        output: run folder: ``training_config.json``, ``metrics.jsonl``, ``checkpoints/``, ``weights/``.
        run: how to run it (initial weights, metric, device, steps, logging; :class:`RendererRunConfig`).
        resume: a checkpoint file, or a run folder whose newest checkpoint to continue from.
        trainer: train this trainer (built with ``config``) instead of one from ``run.init`` / ``run.metric``.
        dataset: items as :class:`~tavce.training.data.RendererDataset` gives them (default: that dataset
            over ``data`` with ``config.data``).
        base: preprocessor and Audio2Coeff for the exported folder (a tavce folder or a mapping of
            components); default ``run.base``, then the first folder of ``run.init``.

    Under ``torchrun`` every rank calls this with the same arguments.

    Raises:
        InvalidArgumentError / TrainingConfigError: no prepared data, fewer items than one global batch,
            missing initial weights or metric.
        CheckpointError: ``resume`` names no usable checkpoint, or one of another batch size or stage.
        NonFiniteLossError: a loss term became NaN or infinite.
    """
    run = run or RendererRunConfig()
    if trainer is not None and trainer.config != config:
        raise InvalidArgumentError(
            "train_renderer: the trainer was built with another RendererTrainingConfig than `config`; pass the same one"
        )

    settings = loop_settings(config, run)

    def build(context: DistributedContext) -> tuple[RendererTrainer, Dataset, Dataset | None]:
        from tavce.training.data import RendererDataset

        items, held_out = split_validation(lambda folder: RendererDataset(folder, config.data), data, settings, dataset)
        built = trainer if trainer is not None else build_trainer(config, run, context.device)
        if base is not None:
            built.export_base = base
        elif built.export_base is None:
            built.export_base = run.base or next(
                (source for source in run.init if isinstance(source, str) and Path(source).is_dir()), None
            )
        return built, items, held_out

    outcome = train_stage(build, output, settings, config, resume=resume)
    trained = outcome.trainer
    assert isinstance(trained, RendererTrainer)
    return RendererTrainingResult(
        trainer=trained,
        history=outcome.history,
        steps=outcome.steps,
        checkpoint=outcome.checkpoint,
        weights_folder=outcome.exported,
    )
