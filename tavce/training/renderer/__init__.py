"""Stage 2 of TAVCE: the face renderer trained with CERL and the CAR regulariser, MappingNet fine-tuned.

One concept per module:

* :mod:`~tavce.training.renderer.config` — :class:`RendererTrainingConfig` (paper defaults),
  its JSON / YAML file form and the Table IV ablation presets;
* :mod:`~tavce.training.renderer.perceptual` — VGG19 (torchvision's weight names) and the
  pyramid perceptual loss;
* :mod:`~tavce.training.renderer.adversarial` — hinge GAN terms and feature matching;
* :mod:`~tavce.training.renderer.motion` — expression, keypoint prior, head pose, equivariance;
* :mod:`~tavce.training.renderer.car` — CAR on generated frames (landmarks, mouth crops);
* :mod:`~tavce.training.renderer.weights` — initial weights (official files, tavce folders), non-strict;
* :mod:`~tavce.training.renderer.model` — the networks and the training forward pass;
* :mod:`~tavce.training.renderer.trainer` — :class:`RendererTrainer`: generator / discriminator
  steps, optimisers, schedules, mixed precision, export to a tavce weights folder;
* :mod:`~tavce.training.renderer.loop` — :func:`train_renderer`: the steps on the shared
  training infrastructure (data order, DDP, logging, checkpoints, exact resume, export).
"""

from tavce.training.renderer.config import (
    ABLATION_VARIANTS,
    EquivarianceTransformConfig,
    LossWeights,
    OptimizerConfig,
    RendererTrainingConfig,
    ScheduleConfig,
    TrainableModules,
    TrainingConfigError,
    ablation_config,
    load_training_config,
    save_training_config,
)
from tavce.training.renderer.loop import (
    LOSS_TERMS,
    RendererRunConfig,
    RendererStepRecord,
    RendererTrainingResult,
    build_trainer,
    train_renderer,
)
from tavce.training.renderer.model import RendererForward, RendererTrainingModules
from tavce.training.renderer.perceptual import PerceptualPyramidLoss, VGG19Config, VGG19Features, load_vgg19_weights
from tavce.training.renderer.trainer import NonFiniteLossError, RendererTrainer
from tavce.training.renderer.weights import InitialWeightsReport, load_metric, read_renderer_parts

__all__ = [
    "ABLATION_VARIANTS",
    "LOSS_TERMS",
    "EquivarianceTransformConfig",
    "InitialWeightsReport",
    "LossWeights",
    "NonFiniteLossError",
    "OptimizerConfig",
    "PerceptualPyramidLoss",
    "RendererForward",
    "RendererRunConfig",
    "RendererStepRecord",
    "RendererTrainer",
    "RendererTrainingConfig",
    "RendererTrainingModules",
    "RendererTrainingResult",
    "ScheduleConfig",
    "TrainableModules",
    "TrainingConfigError",
    "VGG19Config",
    "VGG19Features",
    "ablation_config",
    "build_trainer",
    "load_metric",
    "load_training_config",
    "load_vgg19_weights",
    "read_renderer_parts",
    "save_training_config",
    "train_renderer",
]
