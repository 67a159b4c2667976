"""Stage-2 loop (train_renderer): losses through the loop, exact resume, 2-process DDP, export to the pipeline."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tavce import TalkingHeadPipeline
from tavce.errors import CheckpointError
from tavce.hub import load_safetensors
from tavce.training.checkpoint import load_checkpoint
from tavce.training.renderer import TrainingConfigError, train_renderer
from tests.training.renderer.tiny import cached_tiny_components
from tests.training.renderer.loop_tiny import loop_config, loop_trainer, run_config

REPOSITORY = Path(__file__).resolve().parents[3]


def _totals(history) -> list[float]:
    return [record.losses["generator_total"] for record in history]


def test_twenty_steps_keep_every_term_finite_and_export_a_pipeline_folder(
    prepared_clips: Path, portrait, speech: Path, tmp_path: Path
) -> None:
    config = loop_config()
    result = train_renderer(
        config, prepared_clips, tmp_path, run=run_config(max_steps=20, export=True),
        trainer=loop_trainer(config), base=cached_tiny_components(0),
    )  # fmt: skip
    assert result.steps == 20 and len(result.history) == 20 and result.trainer.epoch == 5
    expected = {"perceptual", "generator_gan", "feature_matching", "l1", "expression", "car", "generator_total",
                "discriminator_gan"}  # fmt: skip
    for record in result.history:
        assert set(record.losses) == expected, record.step  # CAR active at every step (a face on every frame)
        assert all(math.isfinite(value) for value in record.losses.values()), record
    assert result.history[-1].car_skipped_total == 0 and result.trainer.car_counts == {"applied": 20, "skipped": 0}
    # The MappingNet's MultiStepLR stepped at the epoch ends the loop reached (milestone: epoch 1).
    assert [r.learning_rates["mapping"] for r in result.history[3:5]] == pytest.approx([2e-4, 2e-5])
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in logged] == list(range(1, 21)) and "car" in logged[-1]["losses"]

    # The exported folder is a complete tavce weights folder the pipeline loads with CERL on.
    assert result.weights_folder == tmp_path / "weights"
    pipe = TalkingHeadPipeline.from_pretrained(result.weights_folder)
    assert pipe.has_cerl
    exported = result.trainer.export_renderer().state_dict()
    assert all(torch.equal(pipe.renderer.state_dict()[key], value) for key, value in exported.items())
    photo, box = portrait
    frames = np.stack(list(itertools.islice(pipe(photo, speech, face_box=box, seed=0, batch_size=2, progress=False).frames, 2)))
    assert frames.shape[0] == 2 and frames.dtype == np.uint8 and frames.std() > 0


def test_resumed_run_continues_with_identical_losses(prepared_clips: Path, tmp_path: Path) -> None:
    # 4 steps per epoch: 6 steps cross an epoch end and the MappingNet's rate change.
    config = loop_config()
    whole = train_renderer(config, prepared_clips, tmp_path / "whole", run=run_config(max_steps=6),
                           trainer=loop_trainer(config))  # fmt: skip
    first = train_renderer(config, prepared_clips, tmp_path / "parts", run=run_config(max_steps=3),
                           trainer=loop_trainer(config))  # fmt: skip
    torch.manual_seed(1)  # the resumed run must not depend on the state it starts in
    resumed = train_renderer(config, prepared_clips, tmp_path / "parts", run=run_config(max_steps=6),
                             trainer=loop_trainer(config), resume=tmp_path / "parts")  # fmt: skip

    assert first.steps == 3 and resumed.steps == 6 and len(resumed.history) == 3
    assert [r.losses for r in first.history + resumed.history] == [r.losses for r in whole.history]  # exactly
    trained = whole.trainer.modules.state_dict()
    for name, value in resumed.trainer.modules.state_dict().items():
        assert torch.equal(value, trained[name]), name
    state = load_checkpoint(resumed.checkpoint)
    assert state["stage"] == "renderer" and state["position"] == {"epoch": 1, "step_in_epoch": 2, "global_step": 6}
    assert set(state["trainer"]["optimizers"]) == {"generator", "mapping", "discriminator"}
    steps = [json.loads(line)["step"] for line in (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))

    with pytest.raises(CheckpointError, match="written with 1 items per step"):
        train_renderer(loop_config(batch_size=2), prepared_clips, tmp_path / "parts", run=run_config(max_steps=7),
                       trainer=loop_trainer(loop_config(batch_size=2)), resume=tmp_path / "parts")  # fmt: skip


@pytest.mark.slow  # float16 convolutions are emulated on the CPU: about 30 s
def test_mixed_precision_path_runs_on_cpu(prepared_clips: Path, tmp_path: Path) -> None:
    """The GPU code path (float16 autocast + GradScaler) on the CPU: finite terms, close to float32, scaler saved."""
    mode, config = "fp16", loop_config()
    reference = train_renderer(config, prepared_clips, tmp_path / "fp32", run=run_config(max_steps=1),
                               trainer=loop_trainer(config))  # fmt: skip
    mixed = train_renderer(config, prepared_clips, tmp_path / mode, run=run_config(max_steps=1, mixed_precision=mode),
                           trainer=loop_trainer(config))  # fmt: skip
    assert all(math.isfinite(value) for value in mixed.history[0].losses.values())
    np.testing.assert_allclose(_totals(mixed.history), _totals(reference.history), rtol=0.05)
    scaler = load_checkpoint(mixed.checkpoint)["trainer"]["scalers"]["generator"]
    assert 0 < scaler["scale"] <= 65536.0  # gradients scaled


def test_bfloat16_on_the_cpu_is_refused_before_training(prepared_clips: Path, tmp_path: Path) -> None:
    config = loop_config()
    with pytest.raises(TrainingConfigError, match="bf16.* on the CPU"):
        train_renderer(config, prepared_clips, tmp_path, run=run_config(mixed_precision="bf16"),
                       trainer=loop_trainer(config))  # fmt: skip


def test_missing_initial_weights_and_metric_are_named(prepared_clips: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match="needs initial weights"):
        train_renderer(loop_config(), prepared_clips, tmp_path, run=run_config())
    with pytest.raises(TrainingConfigError, match="needs the frozen stage-1 metric"):
        train_renderer(loop_config(), prepared_clips, tmp_path, run=run_config(init=(str(tmp_path),)))


@pytest.mark.slow  # two torchrun processes on a shared CPU: about 40 s
def test_two_gloo_processes_train_in_step_and_near_the_doubled_batch(prepared_clips: Path, tmp_path: Path) -> None:
    """2 ranks × batch 1 against 1 rank × batch 2 over the same global batches.

    The ranks must hold identical weights after every step (DDP averaged the gradients). The
    runs cannot match exactly: the dense-motion network's BatchNorm trains on per-process
    statistics (1 item per rank vs 2 in one batch; CPU has no SyncBatchNorm). Measured (3 steps, largest
    relative difference): generator total 2.6 %, feature matching 5.0 %, CAR 7.0 %, perceptual 0.7 %; the
    expression term, which only the MappingNet computes (its gradients still pass through the generator's
    BatchNorm), 1e-7 to 4e-4 between runs. Tolerances: 10 % on the total, 1e-2 on the expression term.
    """
    steps = 3
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPOSITORY / "tests" / "training" / "renderer" / "ddp_stage_two.py"),
        str(prepared_clips), str(tmp_path / "ddp"), str(steps), "1",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    ranks = [load_safetensors(tmp_path / "ddp" / f"rank{rank}.safetensors") for rank in (0, 1)]
    for name, value in ranks[0].items():
        if "running_" in name or "num_batches_tracked" in name:
            continue  # per-process BatchNorm statistics
        assert torch.equal(ranks[1][name], value), name

    config = loop_config(batch_size=2)
    single = train_renderer(config, prepared_clips, tmp_path / "single", run=run_config(max_steps=steps),
                            trainer=loop_trainer(config))  # fmt: skip
    distributed = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert set(distributed[0]) == set(single.history[0].losses)  # CAR active on both ranks
    np.testing.assert_allclose([r["generator_total"] for r in distributed], _totals(single.history), rtol=0.1)
    np.testing.assert_allclose(
        [r["expression"] for r in distributed], [r.losses["expression"] for r in single.history], rtol=1e-2
    )


@pytest.mark.parametrize("device, sync_batch_norm, synchronised", [("cuda", True, True), ("cuda", False, False), ("cpu", True, False)])
def test_data_parallel_wrapping_synchronises_batch_norm_on_gpus_only(
    monkeypatch: pytest.MonkeyPatch, device: str, sync_batch_norm: bool, synchronised: bool
) -> None:
    from tavce.training.distributed import DistributedContext
    from tavce.training.renderer import loop
    from tests.training.renderer.tiny import tiny_trainer

    wrapped = []
    monkeypatch.setattr(loop, "DistributedDataParallel", _RecordingDataParallel(wrapped))
    trainer = tiny_trainer()
    parameters = dict(trainer.modules.named_parameters())
    keys = list(trainer.modules.state_dict())
    context = DistributedContext(rank=0, world_size=2, local_rank=0, device=torch.device(device), initialised=False)
    loop._wrap_for_data_parallel(trainer, context, sync_batch_norm)
    found = {type(module) for module in trainer.modules.generator.modules()}
    assert (torch.nn.SyncBatchNorm in found) == synchronised
    assert (torch.nn.BatchNorm3d in found) != synchronised
    # Converted in place: the optimisers' parameters and the checkpoint keys are the same.
    assert all(parameter is parameters[name] for name, parameter in trainer.modules.named_parameters())
    assert list(trainer.modules.state_dict()) == keys
    assert wrapped[0] is trainer.modules


class _RecordingDataParallel:
    """Stands in for DistributedDataParallel (no process group on a test machine): records what it wraps."""

    def __init__(self, wrapped: list) -> None:
        self.wrapped = wrapped

    def __call__(self, module, **options):
        self.wrapped.append(module)
        return module

    @staticmethod
    def _set_params_and_buffers_to_ignore_for_model(module, ignored) -> None:
        pass
