"""Stage-1 trainer: exact resume, 2-process DDP = doubled batch, mixed precision, initialisation, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tavce.errors import CheckpointError, IncompatibleWeightsError, InvalidArgumentError
from tavce.hub import load_safetensors
from tavce.models.tavc import MouthEncoder, TAVCMetric
from tavce.training.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state
from tavce.training.data import TAVCDataset, TAVCDatasetConfig
from tavce.training.sampler import GlobalBatchSampler, SeededItems
from tavce.training.tavc import TAVCTrainingConfig, build_metric, embed_stage_one_batch, install_metric, train_tavc
from tests.training.tavc_tiny import TINY_MOUTH, tiny_config, tiny_metric

REPOSITORY = Path(__file__).resolve().parents[2]


def _losses(result) -> list[float]:
    return [record.loss for record in result.history]


def test_resumed_run_continues_with_identical_losses(prepared_clips: Path, tmp_path: Path) -> None:
    # 8 items, batch 2: 4 steps per epoch; 7 steps cross an epoch end (StepLR every epoch here).
    config = tiny_config(max_steps=7, lr_step_epochs=1, checkpoint_every=3)
    torch.manual_seed(0)
    whole = train_tavc(prepared_clips, tmp_path / "whole", config, metric=tiny_metric())

    torch.manual_seed(0)
    first = train_tavc(
        prepared_clips, tmp_path / "parts", tiny_config(max_steps=3, lr_step_epochs=1), metric=tiny_metric()
    )
    torch.manual_seed(1)  # the resumed run must not depend on the state it starts in
    resumed = train_tavc(prepared_clips, tmp_path / "parts", config, metric=tiny_metric(), resume=tmp_path / "parts")

    assert first.steps == 3 and resumed.steps == 7 and len(resumed.history) == 4
    assert _losses(first) + _losses(resumed) == _losses(whole)  # exactly
    assert [r.smoothed_positive for r in first.history + resumed.history] == [
        r.smoothed_positive for r in whole.history
    ]
    assert [r.learning_rate for r in whole.history] == [1e-3] * 4 + [1e-4] * 3
    for name, value in whole.metric.state_dict().items():
        assert torch.equal(value, resumed.metric.state_dict()[name]), name
    # the RNG states carried on as well (nothing the loop does on resuming draws from them)
    rng_states = [load_checkpoint(run.checkpoint)["rng"]["torch"] for run in (whole, resumed)]
    assert torch.equal(*rng_states)
    # the figures log holds each step once, the interrupted run's tail replaced
    steps = [json.loads(line)["step"] for line in (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))


def test_checkpoint_holds_the_whole_state_and_loads_without_pickled_code(prepared_clips: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = train_tavc(prepared_clips, tmp_path, tiny_config(max_steps=2), metric=tiny_metric())
    assert result.checkpoint == tmp_path / "checkpoints" / "step_00000002.pt"
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000002.pt"
    state = load_checkpoint(result.checkpoint)
    assert state["position"] == {"epoch": 0, "step_in_epoch": 2, "global_step": 2}
    assert set(state) >= {"model", "optimizer", "scheduler", "scaler", "rng", "averages", "config"}
    assert state["optimizer"]["state"][0]["step"] == 2


def test_rng_states_round_trip() -> None:
    import random

    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_bad_checkpoints_are_refused_with_the_file_named(prepared_clips: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing: no checkpoint to resume from"):
        train_tavc(prepared_clips, tmp_path / "out", tiny_config(), metric=tiny_metric(), resume=tmp_path / "nothing")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a tavce training checkpoint"):
        load_checkpoint(foreign)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "x", "object": TAVCTrainingConfig()}, unsafe)  # a pickled class instance
    with pytest.raises(CheckpointError, match="unsafe.pt: refused"):
        load_checkpoint(unsafe)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(foreign.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)


def test_resume_refuses_another_global_batch(prepared_clips: Path, tmp_path: Path) -> None:
    train_tavc(prepared_clips, tmp_path, tiny_config(max_steps=1), metric=tiny_metric())
    with pytest.raises(CheckpointError, match="same batch size and number of processes"):
        train_tavc(
            prepared_clips, tmp_path, tiny_config(max_steps=2, batch_size=4), metric=tiny_metric(), resume=tmp_path
        )


def test_missing_data_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no manifest.jsonl; prepare the videos"):
        train_tavc(tmp_path / "absent", tmp_path / "out", tiny_config(), metric=tiny_metric())


def test_global_batches_are_shared_by_the_ranks(prepared_clips: Path) -> None:
    dataset = TAVCDataset(prepared_clips, TAVCDatasetConfig(repeats=5))  # 10 items
    single = GlobalBatchSampler(dataset, 4, seed=3)
    ranks = [GlobalBatchSampler(dataset, 2, num_replicas=2, rank=rank, seed=3) for rank in range(2)]
    assert single.steps_per_epoch == ranks[0].steps_per_epoch == 2  # the incomplete batch is dropped
    for sampler in (single, *ranks):
        sampler.set_position(epoch=1)
    order, parts = list(single), [list(sampler) for sampler in ranks]
    assert order == parts[0][:2] + parts[1][:2] + parts[0][2:] + parts[1][2:]
    assert all(epoch == 1 for epoch, _ in order)
    single.set_position(epoch=1, step=1)
    assert list(single) == order[4:] and len(single) == 4
    # items depend on (seed, epoch, index) only
    items = SeededItems(dataset, seed=0)
    torch.manual_seed(5)
    first = items[(1, 3)]
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(items[(1, 3)]["indices"], first["indices"]) and torch.equal(torch.rand(1), after)


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_mixed_precision_path_runs_on_cpu(prepared_clips: Path, tmp_path: Path, mode: str) -> None:
    torch.manual_seed(0)
    reference = train_tavc(prepared_clips, tmp_path / "fp32", tiny_config(max_steps=2), metric=tiny_metric())
    torch.manual_seed(0)
    mixed = train_tavc(
        prepared_clips, tmp_path / mode, tiny_config(max_steps=2, mixed_precision=mode), metric=tiny_metric()
    )
    # low-precision encoders, float32 objective: the same losses to a few per cent
    np.testing.assert_allclose(_losses(mixed), _losses(reference), rtol=0.05, atol=0.02)
    scaler = load_checkpoint(mixed.checkpoint)["scaler"]
    assert (0 < scaler.get("scale", 0) <= 65536.0) if mode == "fp16" else scaler == {}  # fp16 only: gradients scaled


def test_two_gloo_processes_match_one_process_with_the_doubled_batch(prepared_clips: Path, tmp_path: Path) -> None:
    """2 ranks × batch 2 = 1 rank × batch 4, with BatchNorm-free encoders (per-rank BatchNorm statistics
    differ from the doubled batch's on CPU, where SyncBatchNorm is unavailable).

    Adam's eps is raised to 1e-3 on both sides: parameters whose gradient is zero in exact arithmetic
    (the last biases cancel in the embedding differences) get rounding-noise gradients that differ
    between the two reductions, and with eps 1e-8 Adam turns any such noise into a step of ±lr.
    Measured (4 steps): losses within 6.1e-6, outputs 3.5e-6, parameters 6.4e-6; tolerance 5e-5.
    """
    steps = 4
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPOSITORY / "tests" / "training" / "ddp_stage_one.py"),
        str(prepared_clips), str(tmp_path / "ddp"), str(steps), "2",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]

    torch.manual_seed(0)
    initial = tiny_metric(batch_norm=False)
    torch.manual_seed(0)
    config = tiny_config(max_steps=steps, batch_size=4, adam_eps=1e-3)
    single = train_tavc(prepared_clips, tmp_path / "single", config, metric=tiny_metric(batch_norm=False))
    distributed = tiny_metric(batch_norm=False)
    distributed.load_state_dict(load_safetensors(tmp_path / "ddp" / "parameters.safetensors"))

    ddp_losses = json.loads((tmp_path / "ddp" / "losses.json").read_text())
    np.testing.assert_allclose(ddp_losses, _losses(single), rtol=0, atol=5e-5)
    items = SeededItems(TAVCDataset(prepared_clips), seed=0)
    batch = torch.utils.data.default_collate([items[(0, index)] for index in range(2)])
    with torch.no_grad():
        outputs = [
            torch.cat(embed_stage_one_batch(metric.eval(), batch["mels"], batch["mouths"]).relationships(), dim=1)
            for metric in (single.metric, distributed, initial)
        ]
    assert (outputs[0] - outputs[2]).abs().max() > 1e-2  # training changed the metric
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=5e-5)
    for name, value in single.metric.state_dict().items():
        torch.testing.assert_close(distributed.state_dict()[name], value, rtol=0, atol=5e-5, msg=name)


def test_initialisation_from_official_files(tmp_path: Path) -> None:
    from tavce.testing import official_manifest, reference_state_dict

    # wav2lip.pth: only its audio encoder, with the official names and shapes
    manifest = official_manifest("wav2lip.pth")
    shapes = {
        key: entry["shape"]
        for key, entry in manifest.items()
        if key.startswith("state_dict.module.audio_encoder.") and entry.get("dtype") in ("float32", "int64")
    }
    tensors = reference_state_dict(shapes, salt=1)
    torch.save({"state_dict": {k.removeprefix("state_dict."): v for k, v in tensors.items()}}, tmp_path / "wav2lip.pth")
    # iresnet18.pth: the face-recognition names, with a head of another size (not read)
    ours = MouthEncoder(TINY_MOUTH).state_dict()
    original = {
        _iresnet_name(key): torch.full_like(value, 0.5)
        for key, value in ours.items()
        if not key.startswith(("projection.", "embedding_norm."))
    }
    original |= {"fc.weight": torch.zeros(512, 10), "fc.bias": torch.zeros(512), "features.weight": torch.ones(512)}
    torch.save(original, tmp_path / "iresnet18.pth")

    torch.manual_seed(0)
    config = tiny_config(
        wav2lip_checkpoint=str(tmp_path / "wav2lip.pth"), iresnet_checkpoint=str(tmp_path / "iresnet18.pth")
    )
    metric = build_metric(config)
    first = metric.audio_encoder.backbone.blocks[0].conv.weight
    assert torch.equal(first, tensors["state_dict.module.audio_encoder.0.conv_block.0.weight"])
    assert torch.all(metric.mouth_encoder.stem[0].weight == 0.5)
    assert not torch.all(metric.mouth_encoder.projection.weight == 0.5)  # head trained from scratch

    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(IncompatibleWeightsError, match="other.pth"):
        build_metric(tiny_config(iresnet_checkpoint=str(tmp_path / "other.pth")))


def _iresnet_name(key: str) -> str:
    import re

    parts = {"input_norm": "bn1", "conv_in": "conv1", "middle_norm": "bn2", "activation": "prelu",
             "conv_out": "conv2", "output_norm": "bn3", "shortcut": "downsample"}  # fmt: skip
    key = re.sub(r"^stem\.0\.", "conv1.", key)
    key = re.sub(r"^stem\.1\.", "bn1.", key)
    key = re.sub(r"^stem\.2\.", "prelu.", key)
    key = re.sub(r"^final_norm\.", "bn2.", key)
    match = re.match(r"stages\.(\d+)\.(\d+)\.(\w+)\.(.+)", key)
    if match:
        stage, block, part, rest = match.groups()
        key = f"layer{int(stage) + 1}.{block}.{parts[part]}.{rest}"
    return key


def test_trained_metric_is_exported_and_installed_for_the_pipeline(prepared_clips: Path, tmp_path: Path) -> None:
    from tavce import TalkingHeadPipeline
    from tavce.models.tavc import MouthEncoderConfig
    from tavce.testing import make_tiny_checkpoint

    # the tiny weights folder's renderer takes 4-d relationships: train a metric of that size
    mouth = MouthEncoderConfig(
        image_size=112, stem_channels=4, stage_channels=(4, 4, 4, 4), blocks_per_stage=(1, 1, 1, 1), embedding_dim=4
    )
    config = tiny_config(max_steps=1, embedding_dim=4, mouth_encoder=mouth, export_metric=True)
    result = train_tavc(prepared_clips, tmp_path / "run", config)
    assert result.metric_folder == tmp_path / "run" / "metric"
    exported = TAVCMetric.from_pretrained(result.metric_folder)
    assert exported.config.alpha == config.alpha

    weights = make_tiny_checkpoint(tmp_path / "weights")
    install_metric(weights, result.metric_folder)
    pipe = TalkingHeadPipeline.from_pretrained(weights)
    for name, value in exported.state_dict().items():
        assert torch.equal(pipe.metric.state_dict()[name], value), name
    too_large = tiny_metric()  # 16-d: the renderer's CERL layers are 4-d
    with pytest.raises(InvalidArgumentError, match="embedding size 4, the new one 16"):
        install_metric(weights, too_large)


def test_loader_workers_do_not_change_the_batches(prepared_clips: Path, tmp_path: Path) -> None:
    runs = []
    for workers in (0, 2):
        torch.manual_seed(0)
        runs.append(
            train_tavc(
                prepared_clips,
                tmp_path / str(workers),
                tiny_config(max_steps=3, num_workers=workers),
                metric=tiny_metric(),
            )
        )
    assert _losses(runs[0]) == _losses(runs[1])
