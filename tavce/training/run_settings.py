"""How a training run is carried out, whichever the stage: compute, output, validation and watching.

Both stages' settings (:class:`~tavce.training.tavc.TAVCTrainingConfig`,
:class:`~tavce.training.renderer.RendererRunConfig`) and the shared loop's
(:class:`~tavce.training.loop.LoopSettings`) extend :class:`RunSettings`, so these fields have
one definition, one meaning and one check.
"""

from __future__ import annotations

from dataclasses import dataclass

from tavce.training.distributed import MIXED_PRECISION_CHOICES

__all__ = ["RunSettings"]


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The settings every training run has (keyword-only, so each stage keeps its own fields' order).

    Compute:
        device: None (this process's GPU, else the CPU; ``auto`` also works), ``cpu``, ``cuda``, ``cuda:1``.
        num_workers: data-loading processes per training process (4).
        mixed_precision: None (float16 autocast + gradient scaling on CUDA, off on CPU; ``auto`` also
            works), ``float32`` (off), ``float16`` or ``bfloat16`` (aliases ``off``, ``fp16``, ``bf16``).
        sync_batch_norm: under DDP on CUDA, BatchNorm statistics over the global batch for the layers
            in training mode (on); off, or on CPUs (gloo), each process keeps its own.

    Output:
        log_every: log and record the step's figures every N steps (10; and the run's last step).
        checkpoint_every: also checkpoint every N steps (None: after each epoch and at the end only).
        progress: show a progress bar (rank 0).

    Validation and watching:
        val_data: a prepared folder of held-out videos; val_fraction: else hold out this fraction of
            the identities (no person in both parts, :func:`~tavce.training.data.split_by_identity`);
            None for both: no validation.
        validate_every: validate every N steps (None: at the end of the run only); the best checkpoint
            by the stage's validation figure is kept as ``OUT/checkpoints/best.pt``.
        validation_items: held-out items per validation (the same items every time; 16).
        tensorboard: TensorBoard event files in ``OUT/tensorboard`` (``tavce[train]``).
        plots: ``OUT/curves.png`` at the end (``tavce[train]``; skipped, said once, without it).
    """

    device: str | None = None
    num_workers: int = 4
    mixed_precision: str | None = None
    sync_batch_norm: bool = True
    log_every: int = 10
    checkpoint_every: int | None = None
    progress: bool = True
    val_data: str | None = None
    val_fraction: float | None = None
    validate_every: int | None = None
    validation_items: int = 16
    tensorboard: bool = False
    plots: bool = True

    def run_problems(self) -> list[str]:
        """What is wrong with these settings, one phrase each (empty when they are valid)."""
        problems = []
        for name in ("log_every", "validation_items"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "validate_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1, got {value}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be 0 or more, got {self.num_workers}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            problems.append(f"val_fraction must be in (0, 1) (a fraction of the identities), got {self.val_fraction}")
        if self.mixed_precision not in MIXED_PRECISION_CHOICES:
            problems.append(
                f"mixed_precision must be None (automatic) or one of "
                f"{', '.join(str(mode) for mode in MIXED_PRECISION_CHOICES[1:])}, got {self.mixed_precision!r}"
            )
        return problems
