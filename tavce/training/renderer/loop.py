"""The stage-2 training loop: :class:`RendererTrainer` steps on the shared training infrastructure.

:func:`train_renderer` runs as one process or, unchanged, as every rank of a ``torchrun``
job (DDP; NCCL on GPUs, gloo on CPUs). Each step: this rank's slice of the global batch
(:class:`~tavce.training.sampler.GlobalBatchSampler` over a
:class:`~tavce.training.data.RendererDataset`), a generator step (renderer, MappingNet:
perceptual, GAN, feature matching, L1, expression, CAR) then a discriminator step;
every MultiStepLR advances at each epoch's end. Rank 0 logs the loss terms and CAR's
skipped batches every ``log_every`` steps, shows the progress bar and writes the
checkpoints (``OUT/checkpoints/step_<N>.pt``: after every epoch, every
``checkpoint_every`` steps and at the end) and the trained weights (``OUT/weights``, a
tavce weights folder ``TalkingHeadPipeline.from_pretrained`` loads with CERL on).

Under DDP the generator side (keypoint detector, MappingNet, generator) and the
discriminator are wrapped separately, because each has its own backward pass; BatchNorm
statistics (the dense-motion network's) are per process, rank 0's are kept.

A resumed run continues exactly: networks, the per-module optimisers, schedulers and
gradient scalers, the trainer's warp generator, the data position and every global RNG
are restored, and batches depend only on (seed, epoch, step).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from tavce.errors import CheckpointError, InvalidArgumentError
from tavce.models.base import config_to_dict
from tavce.models.renderer.renderer import CERLRendererConfig
from tavce.training.distributed import DistributedContext
from tavce.training.loop import (
    CONFIG_NAME,
    METRICS_LOG,
    LoopPosition,
    append_metrics,
    autocast_dtype,
    build_loader,
    load_resumable,
    restore_position,
    planned_steps,
    run_steps,
    seed_everything,
    write_checkpoint,
)
from tavce.training.renderer.config import RendererTrainingConfig, TrainingConfigError, save_training_config
from tavce.training.renderer.trainer import RendererTrainer

__all__ = ["LOSS_TERMS", "RendererRunConfig", "RendererStepRecord", "RendererTrainingResult", "train_renderer"]

logger = logging.getLogger(__name__)

WEIGHTS_DIR = "weights"
LANDMARKERS = ("auto", "insightface", "dlib")

LOSS_TERMS = (
    "perceptual",
    "generator_gan",
    "feature_matching",
    "l1",
    "expression",
    "keypoint_prior",
    "head_pose",
    "equivariance",
    "car",
    "mouth",
    "generator_total",
    "discriminator_gan",
)
"""Every loss term a step can report (weighted), in log order; a term switched off is absent."""


@dataclass(frozen=True)
class RendererRunConfig:
    """How one stage-2 run is carried out (what :class:`RendererTrainingConfig` leaves out: it holds the method).

    Attributes:
        init: initial weights, official files and/or tavce weights folders, in the order
            :func:`~tavce.training.renderer.read_renderer_parts` reads them (later sources fill
            what earlier ones lack); a tuple of two files is face-vid2vid's pair.
        metric: the frozen stage-1 metric: a tavce folder with a ``metric`` component (what
            ``tavce train tavc`` writes) or TAVCE's correlation checkpoint. Needed by CERL and CAR.
        base: tavce weights folder whose preprocessor and Audio2Coeff are stored beside the trained
            renderer (default: the first folder in ``init``); without one the export holds only the
            renderer and metric.
        landmarker: finds the mouth on generated frames for CAR: ``auto`` (insightface when its model
            pack is present, else dlib), ``insightface`` or ``dlib``.
        max_steps: stop after this many steps (None: the schedule's epochs decide).
        device: ``auto`` (this process's GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:1``.
        mixed_precision: ``auto`` (float16 autocast + gradient scaling on CUDA, off on CPU), ``off``,
            ``fp16``, ``bf16``.
        num_workers: data-loading processes per training process.
        sync_batch_norm: under DDP on CUDA, BatchNorm statistics over the global batch for the
            layers in training mode (the dense-motion network's, the keypoint detector's when it is
            trained); off, or on CPUs (gloo), each process keeps its own.
        log_every: log and record the loss terms every N steps.
        checkpoint_every: also checkpoint every N steps (None: after each epoch and at the end only).
        progress: show the progress bar (rank 0).
        export: write ``OUT/weights`` at the end.
    """

    init: tuple[str | tuple[str, str], ...] = ()
    metric: str | None = None
    base: str | None = None
    landmarker: str = "auto"
    max_steps: int | None = None
    device: str = "auto"
    mixed_precision: str = "auto"
    num_workers: int = 4
    sync_batch_norm: bool = True
    log_every: int = 10
    checkpoint_every: int | None = None
    progress: bool = True
    export: bool = True

    def __post_init__(self) -> None:
        if self.landmarker not in LANDMARKERS:
            raise TrainingConfigError(f"landmarker={self.landmarker!r}: choose one of {', '.join(LANDMARKERS)}")
        if self.mixed_precision not in ("auto", "off", "fp16", "bf16"):
            raise TrainingConfigError(f"mixed_precision={self.mixed_precision!r}: choose auto, off, fp16 or bf16")
        if self.max_steps is not None and self.max_steps < 1:
            raise TrainingConfigError(f"max_steps={self.max_steps}: at least 1 (or None for the schedule's epochs)")
        if self.log_every < 1 or self.num_workers < 0 or (self.checkpoint_every is not None and self.checkpoint_every < 1):
            raise TrainingConfigError(
                f"log_every={self.log_every}, num_workers={self.num_workers}, checkpoint_every={self.checkpoint_every}: "
                "log_every and checkpoint_every at least 1, num_workers at least 0"
            )


@dataclass(frozen=True)
class RendererStepRecord:
    """Figures of one step over the global batch (all ranks), as logged to ``OUT/metrics.jsonl``.

    Attributes:
        losses: weighted loss terms of :data:`LOSS_TERMS` that were computed (mean over the ranks
            that computed them: CAR over the ranks that did not skip it).
        car_skipped: ranks whose CAR was skipped this step (no face found on a generated frame).
        car_skipped_total: such skips since the run began (all ranks).
        learning_rates: per optimised module.
        seconds: wall time of the step on rank 0.
    """

    step: int
    epoch: int
    losses: dict[str, float]
    car_skipped: int
    car_skipped_total: int
    learning_rates: dict[str, float]
    seconds: float


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

    return {"auto": default_landmarker, "insightface": InsightFaceLandmarker, "dlib": DlibLandmarker}[choice]()


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
            "written by `tavce train tavc` (OUT/metric's parent with a metric component) or TAVCE's correlation file"
        )
    metric = load_metric(run.metric).to(device) if needs_metric else None
    landmarker = _landmarker(run.landmarker) if (config.losses.car or config.losses.mouth) else None
    return RendererTrainer.from_pretrained(
        list(run.init),
        metric,
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


def _move_trainer(trainer: RendererTrainer, device: torch.device) -> None:
    """Put every network of the trainer on ``device`` (parameters move in place: the optimisers stay valid)."""
    trainer.modules.to(device)
    if trainer.perceptual is not None:
        trainer.perceptual.to(device)


def _wrap_for_data_parallel(trainer: RendererTrainer, context: DistributedContext, sync_batch_norm: bool) -> None:
    """DDP-wrap the generator side and the discriminator separately (each has its own backward pass).

    With ``sync_batch_norm`` on CUDA the BatchNorm layers become SyncBatchNorm first, in
    place (same parameters and buffers, so optimisers, checkpoints and exports are unchanged).

    The generator-side wrapper ignores the discriminator (trained by its own wrapper) and the
    head-pose estimator (used outside the forward pass, by the equivariance term);
    ``find_unused_parameters`` because whether CAR reaches the generator changes per batch
    (skipped when no face is found) and frozen groups vary with ``config.trainable``.
    """
    modules = trainer.modules
    if trainer.config.trainable.head_pose_estimator and modules.head_pose_estimator is not None:
        raise TrainingConfigError(
            "trainable.head_pose_estimator under torchrun: its gradients come from outside the DDP forward pass and "
            "would not be averaged; keep it frozen (the default) or train on one process"
        )
    ignored = [
        f"{name}.{key}"
        for name in ("discriminator", "head_pose_estimator")
        if getattr(modules, name) is not None
        for key in [*dict(getattr(modules, name).named_parameters()), *dict(getattr(modules, name).named_buffers())]
    ]
    if sync_batch_norm and context.device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(modules)
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(modules, ignored)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    trainer.forward_module = DistributedDataParallel(modules, device_ids=device_ids, find_unused_parameters=True)
    if modules.discriminator is not None and trainer.config.losses.discriminator_gan:
        trainer.discriminator_forward = DistributedDataParallel(modules.discriminator, device_ids=device_ids)


class _Run:
    """State of one :func:`train_renderer` call; one method per concern."""

    def __init__(
        self,
        config: RendererTrainingConfig,
        data: str | Path,
        output: str | Path,
        run: RendererRunConfig,
        trainer: RendererTrainer | None,
        dataset: Dataset | None,
        context: DistributedContext,
    ) -> None:
        from tavce.training.data import RendererDataset

        self.config, self.run, self.context, self.output = config, run, context, Path(output)
        self.device = context.device
        seed_everything(config.seed)  # fresh layers (CERL fusion, discriminator) start alike on every rank
        self.dataset = dataset if dataset is not None else RendererDataset(data, config.data)
        if trainer is None:
            trainer = build_trainer(config, run, self.device)
        elif trainer.config != config:
            raise InvalidArgumentError(
                "train_renderer: the trainer was built with another RendererTrainingConfig than `config`; pass the same one"
            )
        _move_trainer(trainer, self.device)
        self.trainer = trainer
        self.autocast_dtype = autocast_dtype(run.mixed_precision, self.device)
        if self.autocast_dtype == torch.bfloat16 and self.device.type == "cpu":
            # Measured with torch 2.13: the process aborts (SIGABRT) inside the generator step's backward pass.
            raise TrainingConfigError(
                "mixed_precision='bf16' on the CPU: torch's CPU kernels abort in the renderer's backward pass; "
                "use fp16 or off on the CPU (bf16 is for GPUs)"
            )
        trainer.use_mixed_precision(self.autocast_dtype)
        if context.distributed:
            _wrap_for_data_parallel(trainer, context, run.sync_batch_norm)
        self.sampler, self.loader = build_loader(
            self.dataset, config.batch_size, context, seed=config.seed, num_workers=run.num_workers
        )
        self.position = LoopPosition()
        self.car_skipped_total = 0
        self.history: list[RendererStepRecord] = []
        self.last_checkpoint: Path | None = None

    # --- resume -----------------------------------------------------------------------------

    def resume(self, location: str | Path) -> None:
        path, state = load_resumable(
            location, stage="renderer", global_batch_size=self.config.batch_size * self.context.world_size
        )
        saved, current = json.loads(state["config"]), config_to_dict(self.config)
        changed = sorted(name for name in set(saved) | set(current) if saved.get(name) != current.get(name))
        if changed:
            logger.warning("%s: resuming with changed settings: %s", path, ", ".join(changed))
        try:
            self.trainer.load_state_dict(state["trainer"])
        except (InvalidArgumentError, RuntimeError, KeyError) as error:
            raise CheckpointError(f"{path}: {error}; resume with the settings the checkpoint was written with") from None
        self.car_skipped_total = int(state["car_skipped_total"])
        self.position = restore_position(path, state, self.context, self.output)

    # --- checkpoints --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "stage": "renderer",
            "config": json.dumps(config_to_dict(self.config)),
            "global_batch_size": self.config.batch_size * self.context.world_size,
            "trainer": self.trainer.state_dict(),
            "car_skipped_total": self.car_skipped_total,
        }

    def save(self) -> None:
        self.last_checkpoint = write_checkpoint(self.context, self.output, self.position, self._state)

    # --- training -----------------------------------------------------------------------------

    def _global_figures(self, losses: dict[str, float]) -> tuple[dict[str, float], int]:
        """The step's terms averaged over the ranks that computed them, and how many ranks skipped CAR.

        A collective under DDP (every rank calls it): a term can be missing on some ranks (CAR skipped).
        """
        sums = torch.tensor([losses.get(name, 0.0) for name in LOSS_TERMS], dtype=torch.float64)
        present = torch.tensor([float(name in losses) for name in LOSS_TERMS], dtype=torch.float64)
        figures = torch.cat([sums, present, torch.tensor([losses.get("car_skipped", 0.0)], dtype=torch.float64)])
        if self.context.distributed:
            figures = figures.to(self.device)
            torch.distributed.all_reduce(figures)
            figures = figures.cpu()
        count = len(LOSS_TERMS)
        totals, counts, skipped = figures[:count], figures[count : 2 * count], int(figures[-1].item())
        means = {name: float(totals[i] / counts[i]) for i, name in enumerate(LOSS_TERMS) if counts[i] > 0}
        return means, skipped

    def _train_step(self, batch: dict[str, torch.Tensor]) -> None:
        learning_rates = self.trainer.learning_rates()
        started = time.perf_counter()
        losses = self.trainer.train_step(batch)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - started
        means, skipped = self._global_figures(losses)
        self.car_skipped_total += skipped
        if not self.context.is_main:
            return
        record = RendererStepRecord(
            step=self.position.global_step,
            epoch=self.position.epoch,
            losses=means,
            car_skipped=skipped,
            car_skipped_total=self.car_skipped_total,
            learning_rates=learning_rates,
            seconds=seconds,
        )
        self.history.append(record)
        if record.step % self.run.log_every == 0:
            logger.info(
                "step %d epoch %d (%.2f s) | %s | CAR skipped %d (total %d)",
                record.step, record.epoch, record.seconds,
                ", ".join(f"{name} {value:.4f}" for name, value in record.losses.items()),
                record.car_skipped, record.car_skipped_total,
            )  # fmt: skip
            append_metrics(self.output / METRICS_LOG, {**record.__dict__})

    def train(self) -> None:
        config, run = self.config, self.run
        if self.context.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            save_training_config(config, self.output / CONFIG_NAME)
        logger.info(
            "stage 2 (%s): %d items, %d steps per epoch of %d × %d process(es), %d steps planned, on %s%s",
            config.variant, len(self.dataset), self.sampler.steps_per_epoch, config.batch_size,
            self.context.world_size,
            planned_steps(config.schedule.epochs, run.max_steps, self.sampler.steps_per_epoch), self.device,
            "" if self.autocast_dtype is None else f" with {self.autocast_dtype} autocast",
        )  # fmt: skip
        run_steps(
            loader=self.loader,
            sampler=self.sampler,
            position=self.position,
            epochs=config.schedule.epochs,
            max_steps=run.max_steps,
            step=self._train_step,
            end_epoch=self.trainer.end_epoch,  # MultiStepLR counts epochs
            save=self.save,
            checkpoint_every=run.checkpoint_every,
            progress=self.context.is_main and run.progress,
            description="stage 2",
        )

    def export(self, base: str | Path | dict[str, Any] | None) -> Path | None:
        if not (self.run.export and self.context.is_main):
            return None
        if base is None:
            base = self.run.base or next(
                (source for source in self.run.init if isinstance(source, str) and Path(source).is_dir()), None
            )
        if base is None:
            logger.warning(
                "no base weights folder: %s holds the renderer and metric only; load it with "
                "TalkingHeadPipeline.from_pretrained(folder, preprocessor=..., audio2coeff=...) or pass --base",
                self.output / WEIGHTS_DIR,
            )
        folder = self.trainer.save_pretrained(self.output / WEIGHTS_DIR, base=base)
        logger.info("trained renderer written to %s (TalkingHeadPipeline.from_pretrained loads it)", folder)
        return folder


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
    context = DistributedContext.from_environment(run.device)
    try:
        state = _Run(config, data, output, run, trainer, dataset, context)
        if resume is not None:
            state.resume(resume)
        state.train()
        folder = state.export(base)
        return RendererTrainingResult(
            trainer=state.trainer,
            history=state.history,
            steps=state.position.global_step,
            checkpoint=state.last_checkpoint,
            weights_folder=folder,
        )
    finally:
        context.close()

