"""``tavce train <stage> DATA OUT``: train TAVCE's parts on a folder written by ``tavce prepare-data``.

Stages: ``tavc`` (stage 1, the TAVC metric; every option maps to a field of
:class:`~tavce.training.tavc.TAVCTrainingConfig`) and ``renderer`` (stage 2, the renderer
with CERL + CAR; options map to :class:`~tavce.training.renderer.RendererTrainingConfig`
and :class:`~tavce.training.renderer.RendererRunConfig`). ``--config FILE`` reads the
training settings from JSON/YAML and options given on the command line override the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from tavce.cli import Subcommand

MIXED_PRECISION_OPTIONS = ("auto", "off", "fp16", "bf16", "float32", "float16", "bfloat16")
"""--mixed-precision values: torch's dtype names and the short aliases (the Python API's None is ``auto``)."""


TAVC_EPILOG = """\
The run folder OUT gets training_config.json (the resolved settings), metrics.jsonl (figures every
--log-every steps), checkpoints/step_<N>.pt (after every epoch, every --checkpoint-every steps and at
the end; checkpoints/latest names the newest), curves.png (losses, similarities, learning rate; with
pip install 'tavce[train]') and metric/ (the trained metric). With --val-data or --val-fraction also
validation.jsonl and checkpoints/best.pt; with --tensorboard, tensorboard/.

The next steps take OUT/metric as it is:
  tavce train renderer data/ runs/renderer --init WEIGHTS --metric runs/tavc/metric
  tavce evaluate --generated GEN --reference REF --tavc-metric runs/tavc/metric
--install-into WEIGHTS also writes it as the metric of a tavce weights folder (for `tavce generate
--weights WEIGHTS`); on a finished run, `--resume --install-into WEIGHTS` only installs it.

Defaults are the original code's (correlation/train.py): Adam lr 1e-4, StepLR x0.1 every 8 epochs,
10 epochs, batch 16 per process, seed 2024, tau 3, alpha 1. The paper's 40k iterations:
  tavce train tavc data/ runs/tavc --wav2lip wav2lip.pth --iresnet iresnet18.pth --max-steps 40000 --epochs 0
Several GPUs (one process each; the batch size is per process):
  torchrun --nproc_per_node 4 -m tavce train tavc data/ runs/tavc --wav2lip wav2lip.pth --iresnet iresnet18.pth
Continue an interrupted run exactly where its last checkpoint left it:
  tavce train tavc data/ runs/tavc --resume

Only in --config FILE: mouth_encoder (IResNet sizes), generator and perceptual (auxiliary
reconstruction sizes), adam_betas, adam_eps. Write a full file with
  python -c "from tavce.training.tavc import TAVCTrainingConfig as C; C().save('tavc.json')"
"""

CONFIG_FILE_ONLY = ("mouth_encoder", "generator", "perceptual", "adam_betas", "adam_eps")
"""TAVCTrainingConfig fields without a command-line option (nested sizes)."""

# (option, config field, argparse keywords); the defaults shown are TAVCTrainingConfig's.
_TAVC_OPTIONS: tuple[tuple[str, str, str, dict], ...] = (
    ("data", "--negative-distance", "negative_distance", {"type": int, "metavar": "TAU",
        "help": "least frame distance |j - i| of a negative mouth crop (default 3)"}),
    ("data", "--repeats", "repeats", {"type": int, "metavar": "N",
        "help": "visits of each video (or identity) per epoch (default 1)"}),
    ("data", "--identity-sampling", "identity_sampling", {"action": "store_const", "const": True,
        "help": "one item per identity (text before the first # of a video's name) instead of per video"}),
    ("data", "--skip-negative-window", "encode_negative_window", {"action": "store_const", "const": False,
        "help": "do not encode frame j's audio window (no loss uses it; the original encodes it, which only "
        "changes train-mode BatchNorm statistics)"}),
    ("model", "--embedding-dim", "embedding_dim", {"type": int, "metavar": "D",
        "help": "embedding size of both encoders (default 128)"}),
    ("model", "--wav2lip", "wav2lip_checkpoint", {"metavar": "FILE",
        "help": "official wav2lip.pth: initialises the audio encoder's Wav2Lip layers (default: random)"}),
    ("model", "--iresnet", "iresnet_checkpoint", {"metavar": "FILE",
        "help": "face-recognition iresnet18.pth: initialises the mouth encoder's backbone (default: random)"}),
    ("objective", "--alpha", "alpha", {"type": float,
        "help": "weight of the negative (distant-pair) term (default 1)"}),
    ("objective", "--reconstruction", "reconstruction", {"action": "store_const", "const": True,
        "help": "add the original code's auxiliary LPIPS reconstruction term (two generators; needs --lpips-weights)"}),
    ("objective", "--reconstruction-weight", "reconstruction_weight", {"type": float, "metavar": "LAMBDA",
        "help": "weight of the reconstruction term (default 1)"}),
    ("objective", "--lpips-weights", "lpips_weights", {"metavar": "FILE",
        "help": "LPIPS VGG weights (lpips.LPIPS(net='vgg').state_dict() saved with torch.save, or safetensors)"}),
    ("optimisation", "--learning-rate", "learning_rate", {"type": float, "metavar": "LR",
        "help": "Adam learning rate (default 1e-4)"}),
    ("optimisation", "--weight-decay", "weight_decay", {"type": float, "help": "Adam weight decay (default 0)"}),
    ("optimisation", "--lr-step-epochs", "lr_step_epochs", {"type": int, "metavar": "N",
        "help": "multiply the learning rate by --lr-gamma every N epochs (default 8)"}),
    ("optimisation", "--lr-gamma", "lr_gamma", {"type": float, "help": "StepLR factor (default 0.1)"}),
    ("optimisation", "--epochs", "epochs", {"type": int, "metavar": "N",
        "help": "passes over the data; 0: no limit, stop at --max-steps (default 10)"}),
    ("optimisation", "--max-steps", "max_steps", {"type": int, "metavar": "N",
        "help": "stop after N optimiser steps, whichever of --epochs / --max-steps comes first (default: none)"}),
    ("optimisation", "--batch-size", "batch_size", {"type": int, "metavar": "N",
        "help": "items per process and step (default 16)"}),
    ("optimisation", "--seed", "seed", {"type": int,
        "help": "seed of initialisation, data order and every item's random choices (default 2024)"}),
    ("compute", "--device", "device", {
        "help": "auto (this process's GPU, else CPU), cpu, cuda, cuda:1 (default auto)"}),
    ("compute", "--workers", "num_workers", {"type": int, "metavar": "N",
        "help": "data-loading processes per training process (default 4)"}),
    ("compute", "--mixed-precision", "mixed_precision", {"choices": MIXED_PRECISION_OPTIONS,
        "help": "auto: float16 autocast with gradient scaling on CUDA, off on CPU (default auto); float16 "
        "(fp16), bfloat16 (bf16), or float32 (off)"}),
    ("compute", "--no-sync-batch-norm", "sync_batch_norm", {"action": "store_const", "const": False,
        "help": "under torchrun on GPUs keep per-process BatchNorm statistics (default: synchronised)"}),
    ("output", "--log-every", "log_every", {"type": int, "metavar": "N",
        "help": "log and record the losses and similarities every N steps (default 10)"}),
    ("output", "--checkpoint-every", "checkpoint_every", {"type": int, "metavar": "N",
        "help": "also checkpoint every N steps (default: after each epoch and at the end only)"}),
    ("output", "--no-export", "export_metric", {"action": "store_const", "const": False,
        "help": "do not write the trained metric to OUT/metric"}),
    ("output", "--no-progress", "progress", {"action": "store_const", "const": False,
        "help": "hide the progress bar"}),
    ("validation", "--val-data", "val_data", {"metavar": "DIR",
        "help": "a folder prepared like DATA with held-out videos, validated every --validate-every steps and "
        "at the end (default: none)"}),
    ("validation", "--val-fraction", "val_fraction", {"type": float, "metavar": "F",
        "help": "instead of --val-data, hold out this fraction of DATA's identities (the text before the first "
        "# of a video's name), so that no person is in both parts"}),
    ("validation", "--validate-every", "validate_every", {"type": int, "metavar": "N",
        "help": "validate every N steps (default: at the end of the run only); the positive / negative similarities and the fraction ranked correctly are logged, the best checkpoint by their gap is kept as OUT/checkpoints/best.pt"}),
    ("validation", "--validation-items", "validation_items", {"type": int, "metavar": "N",
        "help": "held-out items per validation, the same ones every time (default 16)"}),
    ("output", "--tensorboard", "tensorboard", {"action": "store_const", "const": True,
        "help": "also write TensorBoard event files to OUT/tensorboard (needs pip install 'tavce[train]')"}),
    ("output", "--no-plots", "plots", {"action": "store_const", "const": False,
        "help": "do not draw OUT/curves.png at the end (drawn with matplotlib, from pip install 'tavce[train]'; "
        "redraw any time with `tavce plot OUT`)"}),
)  # fmt: skip

TAVC_OPTION_FIELDS = {field: option for _, option, field, _ in _TAVC_OPTIONS}
"""Config field -> command-line option."""


def _add_stage_arguments(
    parser: argparse.ArgumentParser,
    epilog: str,
    trained: str,
    options: tuple[tuple[str, str, str, dict], ...],
) -> argparse._ArgumentGroup:
    """DATA, OUT, --config, --resume and the stage's option table (grouped; every default None = "not given").

    Returns the ``run`` group, for stage-specific run options.
    """
    parser.epilog = epilog
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("data", metavar="DATA", help="dataset folder written by `tavce prepare-data`")
    parser.add_argument("output", metavar="OUT", help=f"run folder (created): checkpoints, logs, {trained}")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--config", metavar="FILE", help="settings file (.json, or .yaml with PyYAML); options given here override it"
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CHECKPOINT",
        help="continue from a checkpoint file, or without a value from OUT's newest checkpoint",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for group, option, destination, keywords in options:
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        groups[group].add_argument(option, dest=destination.replace(".", "_"), default=None, **keywords)
    return run


def _add_tavc_arguments(parser: argparse.ArgumentParser) -> None:
    run = _add_stage_arguments(parser, TAVC_EPILOG, "the trained metric", _TAVC_OPTIONS)
    run.add_argument(
        "--install-into",
        metavar="WEIGHTS",
        help="after training, write the metric as the `metric` component of this tavce weights folder (its "
        "renderer's CERL then uses it; `tavce train renderer --metric` takes OUT/metric without this)",
    )


RENDERER_EPILOG = """\
The run folder OUT gets training_config.json (the resolved settings), metrics.jsonl (loss terms and CAR's
skipped batches every --log-every steps), checkpoints/step_<N>.pt (after every epoch, every
--checkpoint-every steps and at the end; checkpoints/latest names the newest), curves.png (with
pip install 'tavce[train]') and weights/ (a tavce weights folder: `tavce generate PHOTO AUDIO -o OUT.mp4
--weights OUT/weights` renders with the trained renderer). With --val-data or --val-fraction also
validation.jsonl (L1, PSNR), samples/step_<N>.png (source | driving | generated) and
checkpoints/best.pt; with --tensorboard, tensorboard/.

Defaults are the paper's (facerender.yaml): batch 4, 5 epochs of 200 identities x 50 repeats (12,500
iterations), Adam betas (0.5, 0.999), lr 2e-5 (generator, discriminator) and 2e-4 (MappingNet, x0.1 after
epoch 4), weights perceptual 10 x5, GAN 1, feature matching 10 x4, L1 20, expression 5, CAR 0.1. TAVCE's start:
  tavce train renderer data/ runs/stage2 \\
      --init 00000189-checkpoint.pth.tar facevid2vid_00189-model.pth.tar --init mapping_00229-model.pth.tar \\
      --metric runs/tavc/metric --vgg19 vgg19-dcbb9e9d.pth --base tavce-weights/
Table IV ablations (same command): --ablation no-cerl | no-car | none. Several GPUs (batch per process):
  torchrun --nproc_per_node 4 -m tavce train renderer data/ runs/stage2 --batch-size 1 ...
Continue an interrupted run exactly where its last checkpoint left it: add --resume.

Only in --config FILE: losses, trainable, optimizer, schedule (milestones, gamma), data (window,
identity_sampling), discriminator, equivariance_transform, head_pose_estimator. Write a full file with
  python -c "from tavce.training.renderer import *; save_training_config(RendererTrainingConfig(), 's2.json')"
"""

RENDERER_CONFIG_FILE_ONLY = (
    "variant", "cerl", "losses", "trainable", "optimizer", "schedule", "data", "discriminator",
    "equivariance_transform", "head_pose_estimator",
)  # fmt: skip
"""RendererTrainingConfig fields without a command-line option of their own (``variant`` / ``cerl``: --ablation)."""

# (group, option, destination, argparse keywords); destination "config.X" is RendererTrainingConfig.X
# (schedule.epochs for "config.epochs"), "run.X" is RendererRunConfig.X.
_RENDERER_OPTIONS: tuple[tuple[str, str, str, dict], ...] = (
    ("model", "--ablation", "config.variant", {"choices": ("full", "no-cerl", "no-car", "none"),
        "help": "Table IV variant: full (CERL + CAR, default), no-cerl (w/o CERL), no-car (w/o CAR), none (neither)"}),
    ("model", "--init", "run.init", {"nargs": "+", "action": "append", "metavar": "SOURCE",
        "help": "initial weights, repeatable: an official file (SadTalker_V0.0.2_256.safetensors, "
        "mapping_00229-model.pth.tar, facevid2vid_00189-model.pth.tar), `FILE OFFICIAL_NAME` for a renamed one, "
        "or a tavce weights folder (its renderer's sizes are used); later sources fill what earlier ones lack"}),
    ("model", "--metric", "run.metric", {"metavar": "SOURCE",
        "help": "frozen stage-1 metric for CERL and CAR: the metric folder of a `tavce train tavc` run (RUN/metric), "
        "a tavce weights folder with a metric component, or TAVCE's correlation checkpoint"}),
    ("model", "--vgg19", "config.vgg19_weights", {"metavar": "FILE",
        "help": "torchvision's vgg19-dcbb9e9d.pth (or safetensors) for the perceptual loss (default: random, tests only)"}),
    ("model", "--landmarker", "run.landmarker", {"choices": ("auto", "insightface", "dlib"),
        "help": "finds the mouth on generated frames for CAR: auto (insightface if its models are present, else "
        "dlib; default)"}),
    ("optimisation", "--epochs", "config.epochs", {"type": int, "metavar": "N",
        "help": "passes over the data (default 5; the learning-rate milestones count epochs)"}),
    ("optimisation", "--max-steps", "run.max_steps", {"type": int, "metavar": "N",
        "help": "stop after N steps, whichever of --epochs / --max-steps comes first (default: none)"}),
    ("optimisation", "--batch-size", "config.batch_size", {"type": int, "metavar": "N",
        "help": "items per process and step (default 4)"}),
    ("optimisation", "--repeats", "config.repeats", {"type": int, "metavar": "N",
        "help": "visits of each identity per epoch (default 50)"}),
    ("optimisation", "--seed", "config.seed", {"type": int, "metavar": "N",
        "help": "seed of fresh layers, data order, every item's draws and the equivariance warps (default 2024)"}),
    ("compute", "--device", "run.device", {"metavar": "DEVICE",
        "help": "auto (this process's GPU, else CPU), cpu, cuda, cuda:1 (default auto)"}),
    ("compute", "--workers", "run.num_workers", {"type": int, "metavar": "N",
        "help": "data-loading processes per training process (default 4)"}),
    ("compute", "--mixed-precision", "run.mixed_precision", {"choices": MIXED_PRECISION_OPTIONS,
        "help": "auto: float16 autocast with gradient scaling on CUDA, off on CPU (default auto); float16 "
        "(fp16), bfloat16 (bf16), or float32 (off)"}),
    ("compute", "--no-sync-batch-norm", "run.sync_batch_norm", {"action": "store_const", "const": False,
        "help": "under torchrun on GPUs keep per-process BatchNorm statistics (default: synchronised)"}),
    ("output", "--base", "run.base", {"metavar": "WEIGHTS",
        "help": "tavce weights folder whose preprocessor and Audio2Coeff go into OUT/weights (default: the "
        "first --init folder)"}),
    ("output", "--log-every", "run.log_every", {"type": int, "metavar": "N",
        "help": "log and record the loss terms every N steps (default 10)"}),
    ("output", "--checkpoint-every", "run.checkpoint_every", {"type": int, "metavar": "N",
        "help": "also checkpoint every N steps (default: after each epoch and at the end only)"}),
    ("output", "--no-export", "run.export", {"action": "store_const", "const": False,
        "help": "do not write the trained weights folder OUT/weights"}),
    ("output", "--no-progress", "run.progress", {"action": "store_const", "const": False,
        "help": "hide the progress bar"}),
    ("validation", "--val-data", "run.val_data", {"metavar": "DIR",
        "help": "a folder prepared like DATA with held-out videos, validated every --validate-every steps and "
        "at the end (default: none)"}),
    ("validation", "--val-fraction", "run.val_fraction", {"type": float, "metavar": "F",
        "help": "instead of --val-data, hold out this fraction of DATA's identities (the text before the first "
        "# of a video's name), so that no person is in both parts"}),
    ("validation", "--validate-every", "run.validate_every", {"type": int, "metavar": "N",
        "help": "validate every N steps (default: at the end of the run only); L1 and PSNR are logged, OUT/samples/step_N.png shows source | driving | generated, the best checkpoint by L1 is kept as OUT/checkpoints/best.pt"}),
    ("validation", "--validation-items", "run.validation_items", {"type": int, "metavar": "N",
        "help": "held-out items per validation, the same ones every time (default 8)"}),
    ("output", "--tensorboard", "run.tensorboard", {"action": "store_const", "const": True,
        "help": "also write TensorBoard event files to OUT/tensorboard (needs pip install 'tavce[train]')"}),
    ("output", "--no-plots", "run.plots", {"action": "store_const", "const": False,
        "help": "do not draw OUT/curves.png at the end (drawn with matplotlib, from pip install 'tavce[train]'; "
        "redraw any time with `tavce plot OUT`)"}),
)  # fmt: skip

RENDERER_OPTION_FIELDS = {destination: option for _, option, destination, _ in _RENDERER_OPTIONS}
"""``config.<field>`` / ``run.<field>`` -> command-line option."""


def _add_renderer_arguments(parser: argparse.ArgumentParser) -> None:
    _add_stage_arguments(parser, RENDERER_EPILOG, "the trained weights folder", _RENDERER_OPTIONS)


def renderer_configs(arguments: argparse.Namespace):
    """The (:class:`RendererTrainingConfig`, :class:`RendererRunConfig`) of the parsed options.

    Raises:
        TrainingConfigError: a bad settings file, or an ``--init`` with more than two values.
    """
    from tavce.training.renderer import (
        RendererRunConfig,
        RendererTrainingConfig,
        TrainingConfigError,
        ablation_config,
        load_training_config,
    )

    given = {
        destination: getattr(arguments, destination.replace(".", "_"))
        for destination in RENDERER_OPTION_FIELDS
        if getattr(arguments, destination.replace(".", "_")) is not None
    }
    config = load_training_config(arguments.config) if arguments.config else RendererTrainingConfig()
    if "config.variant" in given:
        config = ablation_config(given.pop("config.variant"), config)
    changes = {name.removeprefix("config."): value for name, value in given.items() if name.startswith("config.")}
    if "epochs" in changes:
        changes["schedule"] = dataclasses.replace(config.schedule, epochs=changes.pop("epochs"))
    if "repeats" in changes:
        changes["data"] = dataclasses.replace(config.data, repeats=changes.pop("repeats"))
    config = dataclasses.replace(config, **changes)
    run_changes = {name.removeprefix("run."): value for name, value in given.items() if name.startswith("run.")}
    if "init" in run_changes:
        sources = []
        for values in run_changes["init"]:
            if len(values) > 2:
                raise TrainingConfigError(
                    f"--init {' '.join(values)}: one source per --init (a path, or a path and its official name)"
                )
            sources.append(values[0] if len(values) == 1 else (values[0], values[1]))
        run_changes["init"] = tuple(sources)
    return config, RendererRunConfig(**run_changes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    stages = parser.add_subparsers(dest="stage", metavar="<stage>", title="stages", required=True)
    tavc = stages.add_parser(
        "tavc",
        help="stage 1: the TAVC metric (audio and mouth encoders)",
        description="Stage 1 of TAVCE: train the TAVC metric's audio and mouth encoders on adjacent video frames.",
    )
    _add_tavc_arguments(tavc)
    renderer = stages.add_parser(
        "renderer",
        help="stage 2: the renderer with CERL + CAR (MappingNet fine-tuned)",
        description="Stage 2 of TAVCE: train the face renderer with the CERL fusion layers and the CAR regulariser.",
    )
    _add_renderer_arguments(renderer)


def tavc_config(arguments: argparse.Namespace):
    """The :class:`TAVCTrainingConfig` of the parsed options (``--config`` file, then the options given)."""
    from tavce.training.tavc import TAVCTrainingConfig

    config = TAVCTrainingConfig.load(arguments.config) if arguments.config else TAVCTrainingConfig()
    overrides = {
        field: getattr(arguments, field) for field in TAVC_OPTION_FIELDS if getattr(arguments, field) is not None
    }
    if overrides.get("epochs") == 0:
        overrides["epochs"] = None  # no epoch limit: --max-steps decides
    if "embedding_dim" in overrides:  # one size for both encoders
        overrides["mouth_encoder"] = dataclasses.replace(config.mouth_encoder, embedding_dim=overrides["embedding_dim"])
    return dataclasses.replace(config, **overrides)


def run(arguments: argparse.Namespace) -> int:
    import logging

    from tavce.training.tavc import install_metric, train_tavc

    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger("tavce").setLevel(logging.WARNING)  # rank 0 reports for the job
    resume = None if arguments.resume is None else (arguments.resume or arguments.output)
    if arguments.stage == "renderer":
        from tavce.training.renderer import train_renderer

        config, run_config = renderer_configs(arguments)
        train_renderer(config, arguments.data, arguments.output, run=run_config, resume=resume)
        return 0
    config = tavc_config(arguments)
    result = train_tavc(config, arguments.data, arguments.output, resume=resume)
    if arguments.install_into and result.metric_folder is not None:
        install_metric(arguments.install_into, result.metric_folder)
    return 0


SUBCOMMAND = Subcommand(
    name="train",
    help="train TAVCE's parts on data prepared by `tavce prepare-data` (stages: tavc, renderer)",
    add_arguments=add_arguments,
    run=run,
)
