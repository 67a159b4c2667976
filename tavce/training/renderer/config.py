"""Stage-2 training settings: loss weights, trainable modules, optimiser, schedule.

Every default is the paper / released-config setting (``facerender.yaml``
``train_params`` and ``TRAIN``), so ``RendererTrainingConfig()`` is TAVCE's stage 2.
The configs are frozen dataclasses with a JSON file form (:func:`save_training_config`,
:func:`load_training_config`, through the project's :func:`~tavce.models.base.config_from_dict`);
YAML is read and written too when PyYAML is importable (it is not a tavce dependency).

:func:`ablation_config` gives the variants of the paper's Table IV under the names the
command line uses (:data:`ABLATION_VARIANTS`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, TrainingConfigError
from tavce.models.base import config_from_dict, config_to_dict
from tavce.models.renderer.discriminator import DiscriminatorConfig
from tavce.models.renderer.head_pose_estimator import HeadPoseEstimatorConfig
from tavce.training.data.stage2 import RendererDatasetConfig

__all__ = [
    "ABLATION_VARIANTS",
    "EquivarianceTransformConfig",
    "LossWeights",
    "OptimizerConfig",
    "RendererTrainingConfig",
    "ScheduleConfig",
    "TrainableModules",
    "TrainingConfigError",
    "ablation_config",
    "load_training_config",
    "save_training_config",
]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise TrainingConfigError(message)


@dataclass(frozen=True)
class LossWeights:
    """Loss weights (``train_params.loss_weights``); 0 switches a term off (it is then not computed).

    Attributes:
        perceptual: one weight per VGG19 layer relu1_1 … relu5_1 ([10] × 5).
        perceptual_scales: image-pyramid scales of the perceptual loss (1, ½, ¼, ⅛).
        generator_gan: hinge generator term (1).
        discriminator_gan: hinge discriminator term (1).
        feature_matching: one weight per discriminator block ([10] × 4).
        l1: L1 between the prediction and the driving frame (20).
        expression: L1 norm of the MappingNet's driving expression deltas (5).
        car: the CAR regulariser (``cmtc``, 0.1).
        mouth: L1 between the generated and the real driving mouth crops (0, disabled in TAVCE).
        equivariance: face-vid2vid keypoint equivariance under a random warp (0; face-vid2vid: 10).
        keypoint_prior: face-vid2vid keypoint spread / depth prior (0; face-vid2vid: 10).
        head_pose: L1 between the MappingNet's and a pose teacher's angles (0; face-vid2vid: 20).
    """

    perceptual: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    perceptual_scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    generator_gan: float = 1.0
    discriminator_gan: float = 1.0
    feature_matching: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0)
    l1: float = 20.0
    expression: float = 5.0
    car: float = 0.1
    mouth: float = 0.0
    equivariance: float = 0.0
    keypoint_prior: float = 0.0
    head_pose: float = 0.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            values = value if isinstance(value, tuple) else (value,)
            _check(
                all(isinstance(v, (int, float)) and v >= 0 for v in values),
                f"losses.{item.name}={value!r}: weights must be non-negative numbers (0 switches a term off)",
            )
        _check(
            len(self.perceptual) == 5, f"losses.perceptual: 5 weights (relu1_1 … relu5_1), got {len(self.perceptual)}"
        )
        _check(
            bool(self.perceptual_scales) and all(0 < s <= 1 for s in self.perceptual_scales),
            f"losses.perceptual_scales={self.perceptual_scales!r}: scales in (0, 1], at least one",
        )


@dataclass(frozen=True)
class TrainableModules:
    """Which networks the generator optimisers update; the rest stay frozen.

    Attributes:
        dense_motion: the generator's dense-motion network (trained by TAVCE).
        fusion: the CERL layers proj_down, proj_up **and output** (the original's ``linear``):
            TAVCE's helper returns only proj1/proj2, which would leave ``linear`` at its
            random initialisation in front of frozen layers (scrambling the appearance
            features), so the released renderer was presumably trained with it; it is trained
            here.
        mapping: the MappingNet (own learning rate and milestones).
        keypoint_detector: configured in TAVCE (lr 2e-5) but whether it was optimised is
            not determinable; frozen by default.
        generator_rest: every other generator layer (encoder, 3-D blocks, SPADE decoder); frozen
            by default. Their BatchNorms stay in eval mode either way, as in TAVCE.
        head_pose_estimator: only used by the equivariance / head-pose terms; frozen by default.
    """

    dense_motion: bool = True
    fusion: bool = True
    mapping: bool = True
    keypoint_detector: bool = False
    generator_rest: bool = False
    head_pose_estimator: bool = False


@dataclass(frozen=True)
class OptimizerConfig:
    """One Adam per module (betas (0.5, 0.999) as face-vid2vid; TAVCE's config does not state them), learning rates per module."""

    generator_lr: float = 2e-5
    discriminator_lr: float = 2e-5
    keypoint_detector_lr: float = 2e-5
    head_pose_estimator_lr: float = 2e-5
    mapping_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "generator_lr",
            "discriminator_lr",
            "keypoint_detector_lr",
            "head_pose_estimator_lr",
            "mapping_lr",
        ):
            _check(getattr(self, name) > 0, f"optimizer.{name}={getattr(self, name)!r}: must be positive")
        _check(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"optimizer.betas={self.betas!r}: two numbers in [0, 1)",
        )


@dataclass(frozen=True)
class ScheduleConfig:
    """MultiStepLR per module, stepped once per epoch (as face-vid2vid; TAVCE's config does not state it).

    Attributes:
        epochs: ``TRAIN.MAX_EPOCH`` (5); with 200 identities × 50 repeats / batch 4 that is 12 500
            iterations, the paper's figure.
        milestones: epochs at which the generator, discriminator, keypoint-detector and
            head-pose-estimator rates are multiplied by ``gamma`` (8: never reached in 5 epochs).
        mapping_milestones: the same for the MappingNet (4 and 8: 2e-4 for epochs 0–3, 2e-5 in epoch 4).
        gamma: the decay factor.
    """

    epochs: int = 5
    milestones: tuple[int, ...] = (8,)
    mapping_milestones: tuple[int, ...] = (4, 8)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"schedule.epochs={self.epochs!r}: at least 1")
        for name in ("milestones", "mapping_milestones"):
            values = getattr(self, name)
            _check(
                all(isinstance(v, int) and v > 0 for v in values) and list(values) == sorted(values),
                f"schedule.{name}={values!r}: increasing positive epoch numbers",
            )
        _check(0 < self.gamma <= 1, f"schedule.gamma={self.gamma!r}: in (0, 1]")


@dataclass(frozen=True)
class EquivarianceTransformConfig:
    """The random warp of the equivariance term (face-vid2vid ``transform_params``)."""

    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


@dataclass(frozen=True)
class RendererTrainingConfig:
    """Everything stage 2 needs besides the data folder and the initial weights.

    Attributes:
        variant: name of the configuration (``full`` or an ablation of :data:`ABLATION_VARIANTS`),
            recorded with the trained weights.
        cerl: train a generator with the CERL fusion layers (False: the "w/o CERL" ablation).
        losses, trainable, optimizer, schedule: see their classes.
        data: the stage-2 dataset settings (27-frame windows, 50 repeats, identity sampling).
        batch_size: items per step (4).
        discriminator: the discriminator's sizes (official: one scale, base 32, spectral norm).
        equivariance_transform: the random warp of the equivariance term.
        head_pose_estimator: the estimator's sizes (official by default), built only for the
            equivariance term; its keypoints and bins must match the MappingNet's.
        vgg19_weights: path of torchvision's ``vgg19-dcbb9e9d.pth`` (or a safetensors copy) for the
            perceptual loss; None leaves the VGG19 random (a warning is logged; for tests only).
        seed: seed of the trainer's own random draws (equivariance warps).
    """

    variant: str = "full"
    cerl: bool = True
    losses: LossWeights = field(default_factory=LossWeights)
    trainable: TrainableModules = field(default_factory=TrainableModules)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: RendererDatasetConfig = field(
        default_factory=lambda: RendererDatasetConfig(repeats=50, identity_sampling=True)
    )
    batch_size: int = 4
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    equivariance_transform: EquivarianceTransformConfig = field(default_factory=EquivarianceTransformConfig)
    head_pose_estimator: HeadPoseEstimatorConfig = field(default_factory=HeadPoseEstimatorConfig)
    vgg19_weights: str | None = None
    seed: int = 2024

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, f"batch_size={self.batch_size!r}: at least 1")
        _check(
            len(self.losses.feature_matching) == self.discriminator.num_blocks,
            f"losses.feature_matching has {len(self.losses.feature_matching)} weights for a discriminator of "
            f"{self.discriminator.num_blocks} blocks; give one weight per block",
        )


ABLATION_VARIANTS = ("full", "no-cerl", "no-car", "none")
"""Names of the Table IV variants: full model, w/o CERL, w/o CAR, w/o CERL & CAR."""


def ablation_config(variant: str, base: RendererTrainingConfig | None = None) -> RendererTrainingConfig:
    """The configuration of one Table IV variant, from ``base`` (default: the paper settings).

    * ``full``: CERL and CAR (Table IV "full");
    * ``no-cerl``: a generator without the fusion layers, CAR kept ("w/o CERL");
    * ``no-car``: CERL kept, CAR weight 0 ("w/o CAR");
    * ``none``: neither ("w/o CERL & CAR", SadTalker's renderer fine-tuned the same way).

    Raises:
        TrainingConfigError: an unknown variant name.
    """
    if variant not in ABLATION_VARIANTS:
        raise TrainingConfigError(f"variant {variant!r}: unknown; choose one of {', '.join(ABLATION_VARIANTS)}")
    base = base or RendererTrainingConfig()
    cerl = variant in ("full", "no-car")
    car = base.losses.car if variant in ("full", "no-cerl") else 0.0
    if variant in ("full", "no-cerl") and car == 0:
        car = LossWeights().car
    return dataclasses.replace(base, variant=variant, cerl=cerl, losses=dataclasses.replace(base.losses, car=car))


def _yaml_module() -> Any:
    try:
        import yaml
    except ImportError as error:  # PyYAML is not a tavce dependency
        raise TrainingConfigError(
            "YAML training configs need PyYAML (`pip install pyyaml`); or write the config as .json"
        ) from error
    return yaml


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def save_training_config(config: RendererTrainingConfig, path: str | Path) -> Path:
    """Write ``config`` as JSON (or YAML for a ``.yaml`` / ``.yml`` path); returns the path."""
    path = Path(path)
    values = config_to_dict(config)
    if _is_yaml(path):
        text = _yaml_module().safe_dump(values, sort_keys=False)
    else:
        text = json.dumps(values, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_training_config(path: str | Path) -> RendererTrainingConfig:
    """Read a config written by :func:`save_training_config` or by hand; missing fields take the defaults.

    Raises:
        TrainingConfigError: the file is missing, not JSON/YAML, holds an unknown field or a bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingConfigError(f"{path}: training config not found; check the path")
    text = path.read_text()
    try:
        values = _yaml_module().safe_load(text) if _is_yaml(path) else json.loads(text)
    except TrainingConfigError:
        raise
    except Exception as error:  # json.JSONDecodeError or yaml.YAMLError: both mean a malformed file
        raise TrainingConfigError(
            f"{path}: not valid {'YAML' if _is_yaml(path) else 'JSON'} ({error}); fix the syntax"
        ) from error
    if not isinstance(values, dict):
        raise TrainingConfigError(f"{path}: expected a mapping of config fields at the top level")
    try:
        return config_from_dict(RendererTrainingConfig, values)
    except IncompatibleWeightsError as error:
        raise TrainingConfigError(f"{path}: {error.args[0].split(';')[0]}; remove or correct them") from error
    except TypeError as error:
        raise TrainingConfigError(f"{path}: {error}; check the field names and nesting") from error
    except InvalidArgumentError as error:  # a value refused by one of the nested configs
        raise TrainingConfigError(f"{path}: {error}") from error
