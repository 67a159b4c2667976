"""The run loop both training stages share, and the small interface a stage's trainer implements.

A stage is a :class:`StageTrainer` (stage 1: :class:`~tavce.training.tavc.TAVCTrainer`,
stage 2: :class:`~tavce.training.renderer.RendererTrainer`): what one optimiser step
does, what happens at an epoch's end, what a checkpoint holds and what the run exports.
Everything else is here, once: the process context (one process or a ``torchrun`` rank),
seeding, the data order, resuming (:func:`load_resumable`), the walk over epochs and
steps (:func:`run_steps`: scheduler hook at each epoch's end, checkpoints after every
epoch, every N steps and at the end, the progress bar), the figures log
(``OUT/metrics.jsonl``), the settings file (``OUT/training_config.json``) and the export;
and, for both stages alike, validation on held-out data every N steps and at the end
(``OUT/validation.jsonl``, sample pictures in ``OUT/samples/``, the best checkpoint by the
stage's validation figure kept as ``OUT/checkpoints/best.pt`` beside the latest), TensorBoard
event files (``OUT/tensorboard/``) and ``OUT/curves.png`` (:mod:`tavce.training.plots`).

:func:`train_stage` is the driver each stage's entry point (``train_tavc``,
``train_renderer``) calls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tavce._kill_points import kill_point
from tavce.errors import CheckpointError, MissingExtraError
from tavce.models.base import config_to_dict
from tavce.training.checkpoint import (
    capture_rng_state,
    find_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from tavce.training.config_file import save_config
from tavce.training.distributed import DistributedContext, autocast_dtype
from tavce.training.plots import CURVES_NAME, METRICS_LOG, VALIDATION_LOG, flatten_figures, plot_run
from tavce.training.run_settings import RunSettings
from tavce.training.sampler import GlobalBatchSampler, SeededItems

CHECKPOINTS_DIR = "checkpoints"
CONFIG_NAME = "training_config.json"
SAMPLES_DIR = "samples"
TENSORBOARD_DIR = "tensorboard"
BEST_CHECKPOINT = "best.pt"

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_NAME",
    "METRICS_LOG",
    "SAMPLES_DIR",
    "TENSORBOARD_DIR",
    "VALIDATION_LOG",
    "LoopPosition",
    "LoopSettings",
    "RunOutcome",
    "StageTrainer",
    "Validation",
    "split_validation",
    "append_metrics",
    "autocast_dtype",
    "build_loader",
    "load_resumable",
    "planned_steps",
    "restore_position",
    "run_steps",
    "run_training",
    "seed_everything",
    "train_stage",
    "truncate_metrics_log",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy and Python's ``random`` (initialisation draws before any checkpoint exists)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    context: DistributedContext,
    *,
    seed: int,
    num_workers: int,
) -> tuple[GlobalBatchSampler, DataLoader]:
    """This rank's slice of every global batch (``batch_size`` items), items seeded by (seed, epoch, index).

    The loader draws its worker seeds from a generator of its own: from torch's global one, each
    new iterator (one per epoch, and one more where a run resumes mid-epoch) would move the state
    a checkpoint records, and a resumed run's RNG states would part from the straight run's.
    """
    sampler = GlobalBatchSampler(dataset, batch_size, num_replicas=context.world_size, rank=context.rank, seed=seed)
    loader = DataLoader(
        SeededItems(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=context.device.type == "cuda",
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    return sampler, loader


def truncate_metrics_log(log: Path, global_step: int) -> None:
    """Drop records an interrupted run wrote after its checkpoint at ``global_step`` (they are written again)."""
    if log.is_file():
        kept = [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= global_step]
        log.write_text("".join(line + "\n" for line in kept))


def append_metrics(log: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to the figures log."""
    with log.open("a") as file:
        file.write(json.dumps(record) + "\n")


def load_resumable(location: str | Path, *, stage: str, global_batch_size: int) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to resume from at ``location`` and its contents, checked for this stage and global batch.

    Raises:
        CheckpointError: no checkpoint there, another stage's, or another number of items per step.
    """
    path = find_checkpoint(location)
    state = load_checkpoint(path)
    if state.get("stage") != stage:
        raise CheckpointError(f"{path}: a {state.get('stage')!r} checkpoint, not a {stage!r} one; pass this stage's run")
    if state["global_batch_size"] != global_batch_size:
        raise CheckpointError(
            f"{path}: written with {state['global_batch_size']} items per step (batch size × processes), this "
            f"run has {global_batch_size}; resume with the same batch size and number of processes"
        )
    return path, state


@dataclass
class LoopPosition:
    """Where a run stands: epochs completed, steps into the current epoch, optimiser steps in total."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step}

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> LoopPosition:
        return cls(int(values["epoch"]), int(values["step_in_epoch"]), int(values["global_step"]))


def write_checkpoint(
    context: DistributedContext,
    output: Path,
    position: LoopPosition,
    state: Callable[[], dict[str, Any]],
) -> Path | None:
    """Rank 0 writes ``state()`` + position + RNG states to ``OUT/checkpoints/step_<N>.pt``; every rank waits.

    The file is written to a temporary name and renamed into place (:func:`save_checkpoint`), so a
    process killed while saving leaves the previous checkpoint and ``latest`` intact.
    Returns the file written (None on other ranks).
    """
    path = None
    if context.is_main:
        contents = {**state(), "position": position.as_dict(), "rng": capture_rng_state()}
        path = save_checkpoint(output / CHECKPOINTS_DIR / f"step_{position.global_step:08d}.pt", contents)
    context.barrier()  # no rank runs ahead of a checkpoint being written
    return path


def restore_position(path: Path, state: dict[str, Any], context: DistributedContext, output: Path) -> LoopPosition:
    """The last step of a resumed run: the checkpoint's position and RNG states, the figure logs cut back to it."""
    position = LoopPosition.from_dict(state["position"])
    restore_rng_state(state["rng"])
    if context.is_main:
        truncate_metrics_log(output / METRICS_LOG, position.global_step)
        truncate_metrics_log(output / VALIDATION_LOG, position.global_step)
    logger.info(
        "resumed from %s at step %d (epoch %d, step %d)",
        path, position.global_step, position.epoch, position.step_in_epoch,
    )  # fmt: skip
    return position


def run_steps(
    *,
    loader: DataLoader,
    sampler: GlobalBatchSampler,
    position: LoopPosition,
    epochs: int | None,
    max_steps: int | None,
    step: Callable[[Any], None],
    end_epoch: Callable[[], None],
    save: Callable[[], None],
    checkpoint_every: int | None,
    progress: bool,
    description: str,
    after_step: Callable[[], None] | None = None,
) -> None:
    """Walk the epochs from ``position`` until ``epochs`` or ``max_steps`` (whichever comes first).

    ``step(batch)`` runs one optimiser step (``position`` already counts it when it is
    called: ``global_step`` is the step's 1-based number); ``end_epoch()`` runs after an
    epoch's last step (schedulers), before the checkpoint of that epoch; ``after_step()`` runs
    after that, when ``position`` is the one a checkpoint would record (validation); ``save()``
    writes a checkpoint (after every epoch, every ``checkpoint_every`` steps and at the end).
    """
    from tqdm.auto import tqdm

    def finished() -> bool:
        return (max_steps is not None and position.global_step >= max_steps) or (
            epochs is not None and position.epoch >= epochs
        )

    steps_per_epoch = sampler.steps_per_epoch
    bar = tqdm(total=planned_steps(epochs, max_steps, steps_per_epoch), initial=position.global_step, desc=description, unit="step", disable=not progress)  # fmt: skip
    saved_at = position.global_step
    with bar:
        while not finished():
            sampler.set_position(position.epoch, position.step_in_epoch)
            for batch in loader:
                position.global_step += 1
                position.step_in_epoch += 1
                step(batch)
                kill_point("train:step")
                bar.update(1)
                epoch_ended = position.step_in_epoch == steps_per_epoch
                if epoch_ended:
                    end_epoch()
                    position.epoch, position.step_in_epoch = position.epoch + 1, 0
                if after_step is not None:
                    after_step()
                if epoch_ended or (checkpoint_every and position.global_step % checkpoint_every == 0) or finished():
                    save()
                    saved_at = position.global_step
                if finished():
                    break
    if saved_at != position.global_step:
        save()


def planned_steps(epochs: int | None, max_steps: int | None, steps_per_epoch: int) -> int:
    """Steps a run of ``epochs`` / ``max_steps`` makes (whichever limit comes first)."""
    by_epochs = None if epochs is None else epochs * steps_per_epoch
    return min(steps for steps in (by_epochs, max_steps) if steps is not None)


@dataclass(frozen=True)
class LoopSettings(RunSettings):
    """How the shared loop runs a stage (each stage's entry point fills it from its own settings).

    Attributes:
        epochs, max_steps: run until whichever comes first (None: no limit of that kind).
        batch_size: items per process and step.
        seed: seeds initialisation, the data order and every item's random draws.
        export: let the trainer write its result into the run folder at the end.

    and the :class:`~tavce.training.run_settings.RunSettings` every run has.
    """

    epochs: int | None
    max_steps: int | None
    batch_size: int
    seed: int
    export: bool = True

    @classmethod
    def gather(cls, *sources: Any, **values: Any) -> LoopSettings:
        """The settings of the same names from the stage's settings objects (earlier ones first), then ``values``."""
        names = {item.name for item in dataclasses.fields(cls)}
        gathered: dict[str, Any] = {}
        for source in sources:
            gathered |= {item.name: getattr(source, item.name) for item in dataclasses.fields(source) if item.name in names}
        return cls(**(gathered | values))


def split_validation(
    make: Callable[[str | Path], Dataset], data: str | Path, settings: LoopSettings, dataset: Dataset | None = None
) -> tuple[Dataset, Dataset | None]:
    """(training items, held-out items or None): ``make(folder)`` builds a stage's dataset over a prepared folder.

    ``dataset`` replaces ``make(data)`` when given. Held out: ``settings.val_data``'s items, else
    ``settings.val_fraction`` of the identities (none of them stays in the training part).
    """
    from tavce.training.data import split_by_identity

    items = dataset if dataset is not None else make(data)
    if settings.val_data is not None:
        return items, make(settings.val_data)
    if settings.val_fraction is not None:
        return split_by_identity(items, settings.val_fraction, seed=settings.seed)
    return items, None


@dataclass
class Validation:
    """What a stage reports on held-out items.

    Attributes:
        figures: the figures by name (logged to ``OUT/validation.jsonl``).
        sample: a (H, W, 3) uint8 picture to keep as ``OUT/samples/step_<N>.png``, or None.
    """

    figures: dict[str, float]
    sample: np.ndarray | None = None


class StageTrainer(ABC):
    """What a training stage tells the shared loop; everything else (data order, resume, logs, checkpoints) is the loop's.

    Class attributes:
        stage: the tag written into checkpoints (a run resumes only from its own stage's).
        unchecked_on_resume: settings a resumed run may change without a warning (run length, output).
        best_figure: the validation figure that picks the best checkpoint; ``higher_is_better`` its direction.
    """

    stage: ClassVar[str]
    unchecked_on_resume: ClassVar[frozenset[str]] = frozenset()
    best_figure: ClassVar[str | None] = None
    higher_is_better: ClassVar[bool] = True

    @property
    def description(self) -> str:
        """Name shown on the progress bar and in the start line."""
        return self.stage

    @abstractmethod
    def prepare(self, context: DistributedContext, *, autocast: torch.dtype | None, sync_batch_norm: bool) -> None:
        """Move to ``context.device``, set up mixed precision (``autocast``: None = float32) and DDP wrappers."""

    @abstractmethod
    def run_step(self, batch: Any, position: LoopPosition) -> Any:
        """One optimiser step on this rank's slice of the global batch (a collective under DDP).

        ``position.global_step`` is the step's 1-based number. Returns the step's record over the
        global batch — a dataclass with ``step`` — on rank 0, None on the other ranks.
        """

    @abstractmethod
    def describe_record(self, record: Any) -> str:
        """The log line of a record."""

    @abstractmethod
    def end_epoch(self) -> None:
        """After an epoch's last step, before its checkpoint (learning-rate schedules)."""

    @abstractmethod
    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint holds of this stage (tensors and plain containers only)."""

    @abstractmethod
    def restore_checkpoint_state(self, state: dict[str, Any], source: Path) -> None:
        """Undo :meth:`checkpoint_state` from the checkpoint file ``source``.

        Raises:
            CheckpointError: the state does not fit this trainer (other settings or sizes).
        """

    @abstractmethod
    def export(self, output: Path) -> Path | None:
        """Write the trained result into the run folder ``output`` (rank 0, after training); the folder written."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """After training, on every rank (e.g. switch the trained modules to eval mode)."""

    def validate(self, dataset: Dataset, *, items: int, seed: int) -> Validation | None:
        """Figures on the first ``items`` held-out items (drawn with ``seed``: the same every time); rank 0 only.

        The loop restores every RNG afterwards, so validating does not change the training run.
        """
        return None


@dataclass
class RunOutcome:
    """What :func:`train_stage` leaves (the stage's entry point wraps it in its own result type).

    Attributes:
        trainer: the stage trainer after the last step.
        history: one record per step run by this call (empty on ranks other than 0).
        steps: optimiser steps done in total (including those before a resume).
        checkpoint: the last checkpoint written (None on ranks other than 0).
        exported: the folder the trainer exported (None if not exported or on other ranks).
        validations: ``{"step": N, **figures}`` of each validation run by this call (rank 0).
        best: ``{"step": N, "value": x}`` of the best validation so far (its checkpoint is
            ``OUT/checkpoints/best.pt``), None without validation.
    """

    trainer: StageTrainer
    history: list[Any] = field(default_factory=list)
    steps: int = 0
    checkpoint: Path | None = None
    exported: Path | None = None
    validations: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None


class _Watchers:
    """Rank 0's TensorBoard writer and the end-of-run curves (both optional: the ``tavce[train]`` extra)."""

    def __init__(self, output: Path, settings: LoopSettings, context: DistributedContext) -> None:
        self.output, self.settings = output, settings
        self.writer = None
        if settings.tensorboard and context.is_main:
            from tavce._extras import require

            require("tensorboard", "train")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output / TENSORBOARD_DIR))

    def scalars(self, group: str, step: int, record: dict[str, Any]) -> None:
        if self.writer is not None:
            for name, value in flatten_figures(record).items():
                if name != "step":
                    self.writer.add_scalar(f"{group}/{name}", value, step)

    def sample(self, step: int, picture: np.ndarray) -> None:
        if self.writer is not None:
            self.writer.add_image("samples", picture, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def draw_curves(self) -> None:
        """``OUT/curves.png``, or one line saying why there is none (no ``tavce[train]``)."""
        if not self.settings.plots or not any((self.output / log).is_file() for log in (METRICS_LOG, VALIDATION_LOG)):
            return
        try:
            written = plot_run(self.output)
        except MissingExtraError as error:
            logger.info("no plots written (%s): %s", CURVES_NAME, error)
        else:
            logger.info("curves drawn to %s (redraw during a run with `tavce plot %s`)", written, self.output)


def _write_sample(folder: Path, step: int, picture: np.ndarray) -> Path:
    """``folder/step_<N>.png``, written to a temporary name and renamed into place."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.png"
    partial = folder / f".step_{step:08d}.partial.png"
    Image.fromarray(picture).save(partial)
    os.replace(partial, path)
    return path


def run_training(
    trainer: StageTrainer,
    dataset: Dataset,
    output: str | Path,
    settings: LoopSettings,
    config: Any,
    context: DistributedContext,
    *,
    resume: str | Path | None = None,
    validation: Dataset | None = None,
) -> RunOutcome:
    """Prepare ``trainer`` on ``context``, resume it if asked, train it over ``dataset`` and export it.

    Args:
        config: the stage's settings dataclass, written to ``OUT/training_config.json`` and into
            every checkpoint (a resumed run warns about the settings that changed).
        validation: held-out items, validated every ``settings.validate_every`` steps and at the end.
    """
    output = Path(output)
    autocast = autocast_dtype(settings.mixed_precision, context.device)
    trainer.prepare(context, autocast=autocast, sync_batch_norm=settings.sync_batch_norm)
    sampler, loader = build_loader(
        dataset, settings.batch_size, context, seed=settings.seed, num_workers=settings.num_workers
    )
    global_batch_size = settings.batch_size * context.world_size
    outcome = RunOutcome(trainer)
    position = LoopPosition()
    if resume is not None:
        path, state = load_resumable(resume, stage=trainer.stage, global_batch_size=global_batch_size)
        saved, current = json.loads(state["config"]), config_to_dict(config)
        changed = sorted(
            name
            for name in set(saved) | set(current)
            if name not in trainer.unchecked_on_resume and saved.get(name) != current.get(name)
        )
        if changed:
            logger.warning("%s: resuming with changed settings: %s", path, ", ".join(changed))
        trainer.restore_checkpoint_state(state, path)
        outcome.best = state.get("best")
        position = restore_position(path, state, context, output)
    planned = planned_steps(settings.epochs, settings.max_steps, sampler.steps_per_epoch)

    def checkpoint_contents() -> dict[str, Any]:
        return {
            "stage": trainer.stage,
            "config": json.dumps(config_to_dict(config)),
            "global_batch_size": global_batch_size,
            "best": outcome.best,
            **trainer.checkpoint_state(),
        }

    def save() -> None:
        outcome.checkpoint = write_checkpoint(context, output, position, checkpoint_contents)

    def validate() -> None:
        if context.is_main:
            rng = capture_rng_state()
            result = trainer.validate(cast(Dataset, validation), items=settings.validation_items, seed=settings.seed)
            restore_rng_state(rng)
            if result is not None:
                _record_validation(result)
        context.barrier()

    def _record_validation(result: Validation) -> None:
        step = position.global_step
        record = {"step": step, **result.figures}
        outcome.validations.append(record)
        append_metrics(output / VALIDATION_LOG, record)
        watchers.scalars("validation", step, record)
        logger.info("validation at step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in result.figures.items()))
        if result.sample is not None:
            written = _write_sample(output / SAMPLES_DIR, step, result.sample)
            watchers.sample(step, result.sample)
            logger.info("validation sample (source | driving | generated): %s", written)
        figure = trainer.best_figure
        if figure is None or figure not in result.figures:
            return
        value = result.figures[figure]
        best = outcome.best
        if best is None or (value > best["value"] if trainer.higher_is_better else value < best["value"]):
            outcome.best = {"step": step, "value": value}
            contents = {**checkpoint_contents(), "position": position.as_dict(), "rng": capture_rng_state()}
            path = save_checkpoint(output / CHECKPOINTS_DIR / BEST_CHECKPOINT, contents, update_latest=False)
            logger.info("best %s so far (%.4f at step %d): %s", figure, value, step, path)

    def step(batch: Any) -> None:
        record = trainer.run_step(batch, position)
        if record is not None:
            outcome.history.append(record)
            if position.global_step % settings.log_every == 0 or position.global_step == planned:
                logger.info("%s", trainer.describe_record(record))
                values = dataclasses.asdict(record)
                append_metrics(output / METRICS_LOG, values)
                watchers.scalars("train", position.global_step, values)

    def validate_if_due() -> None:
        if validation is not None and (
            position.global_step == planned
            or (settings.validate_every and position.global_step % settings.validate_every == 0)
        ):
            validate()

    if context.is_main:
        output.mkdir(parents=True, exist_ok=True)
        save_config(config, output / CONFIG_NAME)
    watchers = _Watchers(output, settings, context)
    logger.info(
        "%s: %d items, %d steps per epoch of %d × %d process(es), %d steps planned, on %s%s%s",
        trainer.description, len(cast(Sized, dataset)), sampler.steps_per_epoch, settings.batch_size, context.world_size,
        planned, context.device, "" if autocast is None else f" with {autocast} autocast",
        "" if validation is None else f"; {min(settings.validation_items, len(cast(Sized, validation)))} held-out items",
    )  # fmt: skip
    try:
        run_steps(
            loader=loader,
            sampler=sampler,
            position=position,
            epochs=settings.epochs,
            max_steps=settings.max_steps,
            step=step,
            end_epoch=trainer.end_epoch,
            save=save,
            checkpoint_every=settings.checkpoint_every,
            progress=context.is_main and settings.progress,
            description=trainer.description,
            after_step=validate_if_due,
        )
    finally:
        watchers.close()
    if context.is_main:
        watchers.draw_curves()
    outcome.steps = position.global_step
    trainer.finish()
    if settings.export and context.is_main:
        outcome.exported = trainer.export(output)
    return outcome


def train_stage(
    build: Callable[[DistributedContext], tuple[StageTrainer, Dataset, Dataset | None]],
    output: str | Path,
    settings: LoopSettings,
    config: Any,
    *,
    resume: str | Path | None = None,
) -> RunOutcome:
    """The driver of both stages: this process's context, the seeds, ``build(context)``, then :func:`run_training`.

    ``build`` returns the stage's trainer, its training items and the held-out items (or None,
    see :func:`split_validation`); it runs after seeding, so fresh layers start alike on every
    rank. Under ``torchrun`` every rank calls this with the same arguments.
    """
    context = DistributedContext.from_environment(settings.device)
    try:
        seed_everything(settings.seed)
        trainer, dataset, validation = build(context)
        return run_training(
            trainer, dataset, output, settings, config, context, resume=resume, validation=validation
        )
    finally:
        context.close()
