"""The stage-1 trainer: the TAVC metric's two encoders on a prepared dataset.

:func:`train_tavc` runs as one process or, unchanged, as every rank of a ``torchrun``
job (DDP; NCCL on GPUs, gloo on CPUs). Each step: a batch of (i, i+1, j) items per
process, both encoders in train mode, the stage-1 objective (+ λ·L_rec when the
auxiliary reconstruction is on), Adam; StepLR at each epoch's end. Rank 0 logs every
``log_every`` steps, shows the progress bar and writes the checkpoints
(``OUT/checkpoints/step_<N>.pt``, after every epoch, every ``checkpoint_every`` steps
and at the end) and the trained metric (``OUT/metric``, a tavce component folder).

A run resumed from a checkpoint continues exactly: model, optimiser, scheduler,
gradient scaler, the smoothed similarities, the position in the data and every
RNG are restored, and batches depend only on (seed, epoch, step).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from tavce.errors import CheckpointError, IncompatibleWeightsError
from tavce.models.base import load_state_dict_strict
from tavce.models.tavc import MouthEncoder, TAVCAudioEncoder, TAVCAudioEncoderConfig, TAVCMetric, TAVCMetricConfig
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
from tavce.training.tavc.config import TAVCTrainingConfig
from tavce.training.tavc.losses import SimilarityAverage, StageOneLosses, embed_stage_one_batch, stage_one_objective
from tavce.training.tavc.reconstruction import ReconstructionLoss

__all__ = ["StageOneModel", "StepRecord", "TAVCTrainingResult", "build_metric", "train_tavc"]

logger = logging.getLogger(__name__)

METRIC_DIR = "metric"
# Settings a resumed run may change without changing what it computes (extending a run is the usual resume).
RUN_LENGTH_AND_OUTPUT_FIELDS = frozenset(
    {"epochs", "max_steps", "progress", "log_every", "checkpoint_every", "num_workers", "device", "export_metric"}
)


def build_metric(config: TAVCTrainingConfig) -> TAVCMetric:
    """A fresh :class:`TAVCMetric` of the configured sizes, initialised from the official files if given.

    ``wav2lip_checkpoint`` fills the audio encoder's Wav2Lip stack (the projection stays
    random); ``iresnet_checkpoint`` fills the mouth encoder's backbone (its ``fc`` /
    ``features`` head is not read; the projection and embedding norm stay random).

    Raises:
        WeightsNotFoundError, IncompatibleWeightsError: a missing or unfit initialisation file.
    """
    from tavce.convert.files import convert_wav2lip_checkpoint
    from tavce.convert.tavc import convert_mouth_encoder
    from tavce.hub import load_legacy_checkpoint

    metric = TAVCMetric(
        TAVCMetricConfig(alpha=config.alpha),
        audio_encoder=TAVCAudioEncoder(TAVCAudioEncoderConfig(embedding_dim=config.embedding_dim)),
        mouth_encoder=MouthEncoder(config.mouth_encoder),
    )
    if config.wav2lip_checkpoint:
        converted = convert_wav2lip_checkpoint(
            load_legacy_checkpoint(config.wav2lip_checkpoint), Path(config.wav2lip_checkpoint).name
        )
        load_state_dict_strict(
            metric.audio_encoder.backbone, converted["audio_encoder"], source=config.wav2lip_checkpoint
        )
        logger.info("audio encoder initialised from %s", config.wav2lip_checkpoint)
    if config.iresnet_checkpoint:
        checkpoint = load_legacy_checkpoint(config.iresnet_checkpoint)
        backbone = convert_mouth_encoder(checkpoint, backbone_only=True)
        head = {key for key in metric.mouth_encoder.state_dict() if key.startswith(("projection.", "embedding_norm."))}
        expected = set(metric.mouth_encoder.state_dict()) - head
        missing, unexpected = sorted(expected - set(backbone)), sorted(set(backbone) - expected)
        if missing or unexpected:
            raise IncompatibleWeightsError(
                f"{config.iresnet_checkpoint}: not an IResNet18 of the configured sizes (missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}); use insightface's iresnet18.pth with the default mouth encoder"
            )
        load_state_dict_strict(
            metric.mouth_encoder, {**metric.mouth_encoder.state_dict(), **backbone}, source=config.iresnet_checkpoint
        )
        logger.info("mouth encoder backbone initialised from %s", config.iresnet_checkpoint)
    return metric


class StageOneModel(nn.Module):
    """The trained modules behind one forward call (what DDP wraps): the metric, and the
    auxiliary reconstruction generators when enabled.

    ``forward(mels (B, 3, 1, 80, 16), mouths (B, 3, 3, S, S))`` returns a dict with
    ``total`` (the scalar to minimise), ``losses`` (:class:`StageOneLosses`) and
    ``reconstruction`` (scalar L_rec, or None).
    """

    def __init__(
        self,
        metric: TAVCMetric,
        reconstruction: ReconstructionLoss | None,
        *,
        alpha: float,
        reconstruction_weight: float,
        encode_negative_window: bool,
    ) -> None:
        super().__init__()
        self.metric = metric
        self.reconstruction = reconstruction
        self.alpha = alpha
        self.reconstruction_weight = reconstruction_weight
        self.encode_negative_window = encode_negative_window

    def forward(self, mels: torch.Tensor, mouths: torch.Tensor) -> dict[str, Any]:
        windows = mels if self.encode_negative_window else mels[:, :2]
        embeddings = embed_stage_one_batch(self.metric, windows, mouths)
        # The cosines are taken in float32 whatever the autocast dtype (norms of squared values).
        audio, positive, negative = (factor.float() for factor in embeddings.relationships())
        losses = stage_one_objective(audio, positive, negative, self.alpha)
        total, reconstruction = losses.total, None
        if self.reconstruction is not None:
            reconstruction, _ = self.reconstruction(audio, mouths[:, 0], mouths[:, 1])
            total = total + self.reconstruction_weight * reconstruction.float()
        return {"total": total, "losses": losses, "reconstruction": reconstruction}


@dataclass(frozen=True)
class StepRecord:
    """Figures of one optimiser step over the global batch (all ranks), as logged.

    ``smoothed_*`` are the row-wise similarities after the original's moving average
    (the paper's 0.507 / 0.158 are most likely these); ``cos_*`` the batch means of
    the flattened cosines the loss uses.
    """

    step: int
    epoch: int
    learning_rate: float
    loss: float
    positive_loss: float
    negative_loss: float
    reconstruction_loss: float | None
    cos_positive: float
    cos_negative: float
    logged_positive: float
    logged_negative: float
    smoothed_positive: float
    smoothed_negative: float


@dataclass
class TAVCTrainingResult:
    """What :func:`train_tavc` leaves.

    Attributes:
        metric: the trained metric (eval mode, on the training device).
        history: one record per step run by this call (global-batch figures; empty on ranks other than 0).
        steps: optimiser steps done in total (including those before a resume).
        checkpoint: the last checkpoint written (None on ranks other than 0).
        metric_folder: ``OUT/metric`` if exported.
    """

    metric: TAVCMetric
    history: list[StepRecord]
    steps: int
    checkpoint: Path | None
    metric_folder: Path | None


class _Run:
    """State of one training call; split into methods so that each concern reads on its own."""

    def __init__(
        self,
        data: str | Path,
        output: str | Path,
        config: TAVCTrainingConfig,
        metric: TAVCMetric | None,
        dataset: Dataset | None,
        context: DistributedContext,
    ) -> None:
        from tavce.training.data import TAVCDataset, TAVCDatasetConfig

        self.config, self.context, self.output = config, context, Path(output)
        self.device = context.device
        seed_everything(config.seed)
        self.dataset = (
            dataset
            if dataset is not None
            else TAVCDataset(
                data,
                TAVCDatasetConfig(
                    negative_distance=config.negative_distance,
                    repeats=config.repeats,
                    identity_sampling=config.identity_sampling,
                ),
            )
        )
        self.metric = metric if metric is not None else build_metric(config)
        if config.export_metric:
            self.metric.describe()  # fail now, not after training, if the metric cannot be saved
        reconstruction = None
        if config.reconstruction:
            from tavce.training.perceptual import load_perceptual_distance

            reconstruction = ReconstructionLoss(
                config.embedding_dim,
                load_perceptual_distance(config.lpips_weights, config.perceptual),
                config.generator,
            )
        model = StageOneModel(
            self.metric,
            reconstruction,
            alpha=config.alpha,
            reconstruction_weight=config.reconstruction_weight,
            encode_negative_window=config.encode_negative_window,
        ).to(self.device)
        if context.distributed and self.device.type == "cuda" and config.sync_batch_norm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.metric = model.metric
        self.model = model
        self.wrapped: nn.Module = model
        if context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(model, device_ids=device_ids)
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable,
            lr=config.learning_rate,
            betas=config.adam_betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step_epochs, config.lr_gamma)
        self.autocast_dtype = autocast_dtype(config.mixed_precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.sampler, self.loader = build_loader(
            self.dataset, config.batch_size, context, seed=config.seed, num_workers=config.num_workers
        )
        self.averages = {"positive": SimilarityAverage(), "negative": SimilarityAverage()}
        self.position = LoopPosition()
        self.history: list[StepRecord] = []
        self.last_checkpoint: Path | None = None

    # --- resume -----------------------------------------------------------------------------

    def resume(self, location: str | Path) -> None:
        path, state = load_resumable(
            location, stage="tavc", global_batch_size=self.config.batch_size * self.context.world_size
        )
        saved = TAVCTrainingConfig.from_dict(json.loads(state["config"]), source=str(path))
        changed = [
            field.name
            for field in dataclasses.fields(saved)
            if field.name not in RUN_LENGTH_AND_OUTPUT_FIELDS
            and getattr(saved, field.name) != getattr(self.config, field.name)
        ]
        if changed:
            logger.warning("%s: resuming with changed settings: %s", path, ", ".join(changed))
        try:
            load_state_dict_strict(self.model, state["model"], source=str(path))
        except IncompatibleWeightsError as error:
            raise CheckpointError(f"{error}; resume with the settings the checkpoint was written with") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        for name, average in self.averages.items():
            average.value, average.updates = state["averages"][name]
        self.position = restore_position(path, state, self.context, self.output)

    # --- checkpoints --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "stage": "tavc",
            "config": json.dumps(self.config.to_dict()),
            "global_batch_size": self.config.batch_size * self.context.world_size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "averages": {name: (average.value, average.updates) for name, average in self.averages.items()},
        }

    def save(self) -> None:
        self.last_checkpoint = write_checkpoint(self.context, self.output, self.position, self._state)

    # --- training -----------------------------------------------------------------------------

    def _step(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        mels = batch["mels"].to(self.device, non_blocking=True)
        mouths = batch["mouths"].to(self.device, non_blocking=True)
        self.wrapped.train()
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            output = self.wrapped(mels, mouths)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(output["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return output

    def _global_figures(self, output: dict[str, Any]) -> list[float]:
        """The step's figures over the whole global batch (the mean of the ranks' equal-sized batches).

        Called on every rank (it is a collective under DDP): total, positive, negative, mean flattened
        cosines (positive, negative), row-wise similarities (positive, negative), reconstruction (0 if off).
        """
        losses: StageOneLosses = output["losses"]
        reconstruction = output["reconstruction"]
        figures = torch.stack(
            [
                output["total"].detach().float(),
                losses.positive.detach(),
                losses.negative.detach(),
                losses.cos_positive.detach().mean(),
                losses.cos_negative.detach().mean(),
                losses.logged_positive.detach(),
                losses.logged_negative.detach(),
                torch.zeros_like(losses.positive) if reconstruction is None else reconstruction.detach().float(),
            ]
        )
        if self.context.distributed:
            torch.distributed.all_reduce(figures)
            figures = figures / self.context.world_size
        return figures.tolist()

    def _record(self, output: dict[str, Any], figures: list[float], learning_rate: float) -> None:
        total, positive, negative, cos_positive, cos_negative, logged_positive, logged_negative, reconstruction = (
            figures
        )
        record = StepRecord(
            step=self.position.global_step,
            epoch=self.position.epoch,
            learning_rate=learning_rate,
            loss=total,
            positive_loss=positive,
            negative_loss=negative,
            reconstruction_loss=None if output["reconstruction"] is None else reconstruction,
            cos_positive=cos_positive,
            cos_negative=cos_negative,
            logged_positive=logged_positive,
            logged_negative=logged_negative,
            smoothed_positive=self.averages["positive"].update(logged_positive),
            smoothed_negative=self.averages["negative"].update(logged_negative),
        )
        self.history.append(record)
        if self.position.global_step % self.config.log_every == 0:
            logger.info(
                "step %d epoch %d lr %.2e | loss %.4f (positive %.4f, negative %.4f%s) | similarity positive %.3f "
                "negative %.3f (flattened cosine %.3f / %.3f)",
                record.step, record.epoch, record.learning_rate, record.loss, record.positive_loss,
                record.negative_loss,
                "" if record.reconstruction_loss is None else f", reconstruction {record.reconstruction_loss:.4f}",
                record.smoothed_positive, record.smoothed_negative, record.cos_positive, record.cos_negative,
            )  # fmt: skip
            append_metrics(self.output / METRICS_LOG, dataclasses.asdict(record))

    def _train_step(self, batch: dict[str, torch.Tensor]) -> None:
        learning_rate = self.optimizer.param_groups[0]["lr"]
        output = self._step(batch)
        figures = self._global_figures(output)
        if self.context.is_main:
            self._record(output, figures, learning_rate)

    def train(self) -> None:
        if self.context.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            self.config.save(self.output / CONFIG_NAME)
        config = self.config
        logger.info(
            "stage 1: %d items, %d steps per epoch of %d × %d process(es), %d steps planned, on %s%s",
            len(self.dataset), self.sampler.steps_per_epoch, config.batch_size, self.context.world_size,
            planned_steps(config.epochs, config.max_steps, self.sampler.steps_per_epoch), self.device,
            "" if self.autocast_dtype is None else f" with {self.autocast_dtype} autocast",
        )  # fmt: skip
        run_steps(
            loader=self.loader,
            sampler=self.sampler,
            position=self.position,
            epochs=config.epochs,
            max_steps=config.max_steps,
            step=self._train_step,
            end_epoch=self.scheduler.step,  # stepped per epoch, as the original
            save=self.save,
            checkpoint_every=config.checkpoint_every,
            progress=self.context.is_main and config.progress,
            description="stage 1",
        )

    def export(self) -> Path | None:
        self.metric.eval()
        if not (self.config.export_metric and self.context.is_main):
            return None
        if isinstance(self.metric.config, TAVCMetricConfig):
            self.metric.config = dataclasses.replace(self.metric.config, alpha=self.config.alpha)
        folder = self.output / METRIC_DIR
        self.metric.save_pretrained(folder)
        logger.info("trained metric written to %s (install it with tavce.training.tavc.install_metric)", folder)
        return folder


def train_tavc(
    data: str | Path,
    output: str | Path,
    config: TAVCTrainingConfig | None = None,
    *,
    resume: str | Path | None = None,
    metric: TAVCMetric | None = None,
    dataset: Dataset | None = None,
) -> TAVCTrainingResult:
    """Train the TAVC metric (stage 1) on a folder written by ``tavce prepare-data``.

    Args:
        data: the prepared dataset folder (its ``manifest.jsonl`` lists the videos).
        output: run folder: ``training_config.json``, ``metrics.jsonl``, ``checkpoints/``, ``metric/``.
        config: settings (default :class:`TAVCTrainingConfig`: the original code's).
        resume: a checkpoint file, or a run folder whose newest checkpoint to continue from.
        metric: train this metric instead of building one from ``config`` (its embedding size
            must be ``config.embedding_dim`` when the reconstruction term is on).
        dataset: items as :class:`~tavce.training.data.TAVCDataset` gives them (default: that
            dataset over ``data``).

    Under ``torchrun`` every rank calls this with the same arguments.

    Raises:
        InvalidArgumentError: no prepared data (missing folder or manifest, no usable video), or
            fewer items than one global batch.
        CheckpointError: ``resume`` names no usable checkpoint, or one written with another batch size.
        WeightsNotFoundError, IncompatibleWeightsError: an initialisation or LPIPS weights file.
    """
    config = config or TAVCTrainingConfig()
    context = DistributedContext.from_environment(config.device)
    try:
        run = _Run(data, output, config, metric, dataset, context)
        if resume is not None:
            run.resume(resume)
        run.train()
        folder = run.export()
        return TAVCTrainingResult(
            metric=run.metric,
            history=run.history,
            steps=run.position.global_step,
            checkpoint=run.last_checkpoint,
            metric_folder=folder,
        )
    finally:
        context.close()
