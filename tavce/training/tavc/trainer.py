"""The stage-1 trainer: one optimiser step of the TAVC metric's two encoders, for the shared run loop.

:class:`TAVCTrainer` is stage 1's :class:`~tavce.training.loop.StageTrainer`
(:func:`~tavce.training.tavc.train_tavc` runs it). Each step: a batch of (i, i+1, j)
items per process, both encoders in train mode, the stage-1 objective (+ λ·L_rec when the
auxiliary reconstruction is on), Adam; StepLR at each epoch's end. Under ``torchrun`` the
model is wrapped in DDP (NCCL on GPUs, gloo on CPUs) and the logged figures are the
means over the ranks.

A checkpoint holds the model, optimiser, scheduler, gradient scaler and the smoothed
similarities, so a resumed run continues exactly (the loop restores the data position
and every RNG).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from tavce.errors import CheckpointError, IncompatibleWeightsError
from tavce.models.base import load_state_dict_strict
from tavce.models.tavc import MouthEncoder, TAVCAudioEncoder, TAVCAudioEncoderConfig, TAVCMetric, TAVCMetricConfig
from tavce.training.distributed import DistributedContext
from tavce.training.loop import LoopPosition, StageTrainer, Validation
from tavce.training.tavc.config import TAVCTrainingConfig
from tavce.training.tavc.evaluate import evaluate_similarity
from tavce.training.tavc.export import METRIC_DIR, export_metric
from tavce.training.tavc.losses import SimilarityAverage, StageOneLosses, embed_stage_one_batch, stage_one_objective
from tavce.training.tavc.reconstruction import ReconstructionLoss

__all__ = ["StageOneModel", "StepRecord", "TAVCTrainer", "build_metric"]

logger = logging.getLogger(__name__)

# Settings a resumed run may change without changing what it computes (extending a run is the usual resume).
RUN_LENGTH_AND_OUTPUT_FIELDS = frozenset(
    {"epochs", "max_steps", "progress", "log_every", "checkpoint_every", "num_workers", "device", "export_metric",
     "val_data", "val_fraction", "validate_every", "validation_items", "tensorboard", "plots"}
)  # fmt: skip


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
            cast(nn.Module, cast(TAVCAudioEncoder, metric.audio_encoder).backbone), converted["audio_encoder"], source=config.wav2lip_checkpoint
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


class TAVCTrainer(StageTrainer):
    """Stage 1 for the shared run loop: the metric (and the auxiliary generators) under Adam + StepLR.

    Args:
        config: the stage-1 settings.
        metric: train this metric instead of building one from ``config`` (:func:`build_metric`).

    Raises:
        ComponentNotSerializableError: ``config.export_metric`` with a metric that cannot be saved
            (raised now, not after training).
        WeightsNotFoundError, IncompatibleWeightsError: an initialisation or LPIPS weights file.
    """

    stage = "tavc"
    unchecked_on_resume = RUN_LENGTH_AND_OUTPUT_FIELDS
    best_figure = "gap"

    def __init__(self, config: TAVCTrainingConfig, metric: TAVCMetric | None = None) -> None:
        self.config = config
        self.metric = metric if metric is not None else build_metric(config)
        if config.export_metric:
            self.metric.describe()  # fail now, not after training, if the metric cannot be saved
        reconstruction = None
        if config.reconstruction:
            from tavce.training.perceptual import load_perceptual_distance

            reconstruction = ReconstructionLoss(
                config.embedding_dim,
                load_perceptual_distance(cast(str, config.lpips_weights), config.perceptual),
                config.generator,
            )
        self.model = StageOneModel(
            self.metric,
            reconstruction,
            alpha=config.alpha,
            reconstruction_weight=config.reconstruction_weight,
            encode_negative_window=config.encode_negative_window,
        )
        self.wrapped: nn.Module = self.model
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable,
            lr=config.learning_rate,
            betas=config.adam_betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step_epochs, config.lr_gamma)
        self.averages = {"positive": SimilarityAverage(), "negative": SimilarityAverage()}
        self.validation_averages = {"positive": SimilarityAverage(), "negative": SimilarityAverage()}
        self.context: DistributedContext | None = None
        self.autocast_dtype: torch.dtype | None = None
        self.scaler = torch.amp.GradScaler("cpu", enabled=False)

    @property
    def description(self) -> str:
        return "stage 1"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, context: DistributedContext, *, autocast: torch.dtype | None, sync_batch_norm: bool) -> None:
        self.context = context
        self.model.to(context.device)  # parameters move in place: the optimiser stays valid
        if context.distributed and context.device.type == "cuda" and sync_batch_norm:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.metric = self.model.metric
        self.wrapped = self.model
        if context.distributed:
            device_ids = [context.device.index] if context.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.model, device_ids=device_ids)
        self.autocast_dtype = autocast
        self.scaler = torch.amp.GradScaler(context.device.type, enabled=autocast == torch.float16)

    # --- one step -----------------------------------------------------------------------------

    def _forward_backward(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        device = self.device
        mels = batch["mels"].to(device, non_blocking=True)
        mouths = batch["mouths"].to(device, non_blocking=True)
        self.wrapped.train()
        with torch.autocast(
            device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
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
        if self.context is not None and self.context.distributed:
            torch.distributed.all_reduce(figures)
            figures = figures / self.context.world_size
        return figures.tolist()

    def run_step(self, batch: dict[str, torch.Tensor], position: LoopPosition) -> StepRecord | None:
        learning_rate = self.optimizer.param_groups[0]["lr"]
        output = self._forward_backward(batch)
        figures = self._global_figures(output)
        if self.context is not None and not self.context.is_main:
            return None
        total, positive, negative, cos_positive, cos_negative, logged_positive, logged_negative, reconstruction = (
            figures
        )
        return StepRecord(
            step=position.global_step,
            epoch=position.epoch,
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

    def describe_record(self, record: StepRecord) -> str:
        reconstruction = "" if record.reconstruction_loss is None else f", reconstruction {record.reconstruction_loss:.4f}"
        return (
            f"step {record.step} epoch {record.epoch} lr {record.learning_rate:.2e} | loss {record.loss:.4f} "
            f"(positive {record.positive_loss:.4f}, negative {record.negative_loss:.4f}{reconstruction}) | "
            f"similarity positive {record.smoothed_positive:.3f} negative {record.smoothed_negative:.3f} "
            f"(flattened cosine {record.cos_positive:.3f} / {record.cos_negative:.3f})"
        )

    def end_epoch(self) -> None:
        self.scheduler.step()  # stepped per epoch, as the original

    # --- checkpoints and export ---------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "averages": {name: (average.value, average.updates) for name, average in self.averages.items()},
            "validation_averages": {
                name: (average.value, average.updates) for name, average in self.validation_averages.items()
            },
        }

    def restore_checkpoint_state(self, state: dict[str, Any], source: Path) -> None:
        try:
            load_state_dict_strict(self.model, state["model"], source=str(source))
        except IncompatibleWeightsError as error:
            raise CheckpointError(f"{error}; resume with the settings the checkpoint was written with") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        for name, average in self.averages.items():
            average.value, average.updates = state["averages"][name]
        for name, average in self.validation_averages.items():  # absent from checkpoints of earlier releases
            average.value, average.updates = state.get("validation_averages", {}).get(name, (0.0, 0))

    def validate(self, dataset: Dataset, *, items: int, seed: int) -> Validation:
        """Similarities on held-out items: flattened cosines (what the loss trains), row-wise (what the
        original logs) and their moving average, the fraction of items whose adjacent pair scores
        above the distant one, and the gap (flattened positive − negative, the best checkpoint's figure)."""
        figures = evaluate_similarity(self.metric, dataset, items=items, seed=seed)
        return Validation(
            {
                "cos_positive": figures.cos_positive,
                "cos_negative": figures.cos_negative,
                "gap": figures.gap,
                "row_positive": figures.row_positive,
                "row_negative": figures.row_negative,
                "smoothed_positive": self.validation_averages["positive"].update(figures.row_positive),
                "smoothed_negative": self.validation_averages["negative"].update(figures.row_negative),
                "ranked": figures.ranked,
            }
        )

    def finish(self) -> None:
        self.metric.eval()

    def export(self, output: Path) -> Path | None:
        return export_metric(self.metric, output / METRIC_DIR, alpha=self.config.alpha)
