"""Single-process stage-2 training steps: the paper's losses, one Adam per module, MultiStepLR per epoch.

:class:`RendererTrainer` is what a training loop calls (the loop — data loading, DDP,
logging, checkpoint files, resume — lives in the shared training infrastructure):

    trainer = RendererTrainer.from_pretrained([sadtalker_file, mapping_file], metric, config, landmarker=lm)
    for epoch in range(config.schedule.epochs):
        for batch in loader:
            losses = trainer.train_step(batch)     # generator step, then discriminator step
        trainer.end_epoch()                        # MultiStepLR
    trainer.save_pretrained("trained/", base="tavce-weights/")   # a tavce weights folder

:meth:`RendererTrainer.state_dict` / :meth:`~RendererTrainer.load_state_dict` carry the
networks, optimisers, schedulers, counters and random state for exact resumption.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError, NonFiniteLossError
from tavce.models.renderer.discriminator import MultiScaleDiscriminator
from tavce.models.renderer.generator import OcclusionAwareSPADEGenerator, load_inference_generator
from tavce.models.renderer.head_pose_estimator import HeadPoseEstimator
from tavce.models.renderer.keypoint_detector import KeypointDetector
from tavce.models.renderer.mapping_net import HeadMotion, MappingNet
from tavce.models.renderer.renderer import CERLRenderer, CERLRendererConfig
from tavce.models.tavc import TemporalCorrelationMetric
from tavce.preprocess.landmarks import FaceLandmarker
from tavce.preprocess.mouth import crop_mouths
from tavce.training.renderer.adversarial import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
from tavce.training.renderer.car import GeneratedMouthCAR
from tavce.training.renderer.config import RendererTrainingConfig, TrainingConfigError
from tavce.training.renderer.model import RendererForward, RendererTrainingModules
from tavce.training.renderer.motion import (
    RandomWarp,
    equivariance_loss,
    expression_loss,
    head_pose_loss,
    keypoint_prior_loss,
)
from tavce.training.renderer.perceptual import PerceptualPyramidLoss, VGG19Features, load_vgg19_weights
from tavce.training.renderer.weights import InitialWeightsReport, WeightsSource, load_part, read_renderer_parts

__all__ = ["NonFiniteLossError", "RendererTrainer"]

logger = logging.getLogger(__name__)

# Optimised modules: name -> learning-rate field of OptimizerConfig.
_LEARNING_RATES = {
    "generator": "generator_lr",
    "mapping": "mapping_lr",
    "keypoint_detector": "keypoint_detector_lr",
    "head_pose_estimator": "head_pose_estimator_lr",
    "discriminator": "discriminator_lr",
}


class RendererTrainer:
    """Stage-2 training steps over :class:`RendererTrainingModules` (build with :meth:`from_renderer` / :meth:`from_pretrained`).

    Args:
        modules: the networks (generator with spectral norm; CERL layers iff ``config.cerl``).
        config: the training settings.
        landmarker: finds the mouth on generated frames for CAR (required when CAR or the mouth term is on).
        image_size: S of the trained renderer (recorded in the exported :class:`CERLRenderer`).
        perceptual_network: the frozen feature network of the perceptual loss; default VGG19 with
            ``config.vgg19_weights`` (random, with a warning, when that is None).
        head_pose_teacher: image (B, 3, S, S) in [0, 1] → :class:`HeadMotion` logits (e.g. a wrapped
            Hopenet); required when ``losses.head_pose`` > 0.
        initial_weights: what the initial weights covered (from the constructors).
    """

    def __init__(
        self,
        modules: RendererTrainingModules,
        config: RendererTrainingConfig = RendererTrainingConfig(),
        *,
        landmarker: FaceLandmarker | None = None,
        image_size: int = 256,
        perceptual_network: nn.Module | None = None,
        head_pose_teacher: Callable[[torch.Tensor], HeadMotion] | None = None,
        initial_weights: InitialWeightsReport | None = None,
    ) -> None:
        weights = config.losses
        if modules.generator.has_cerl != config.cerl:
            raise TrainingConfigError(
                f"config.cerl={config.cerl} but the generator {'has' if modules.generator.has_cerl else 'lacks'} "
                "CERL layers; build the trainer with RendererTrainer.from_renderer / from_pretrained"
            )
        if (weights.car or weights.mouth) and (landmarker is None or modules.metric is None):
            raise TrainingConfigError(
                "CAR (losses.car / losses.mouth > 0) needs a landmarker for the generated frames and the stage-1 "
                "metric; pass landmarker= (e.g. pipe.preprocessor.landmarker) and metric=, or use the 'no-car' variant"
            )
        if weights.head_pose and head_pose_teacher is None:
            raise TrainingConfigError(
                "losses.head_pose > 0 needs head_pose_teacher= (a network returning yaw/pitch/roll bin logits, "
                "face-vid2vid uses Hopenet); tavce ships none"
            )
        if weights.equivariance and modules.head_pose_estimator is None:
            raise TrainingConfigError("losses.equivariance > 0 needs the head-pose estimator; pass it to the modules")
        if (
            weights.generator_gan or weights.discriminator_gan or any(weights.feature_matching)
        ) and modules.discriminator is None:
            raise TrainingConfigError("the GAN / feature-matching terms need a discriminator in the modules")
        self.config = config
        self.modules = modules
        self.image_size = image_size
        self.initial_weights = initial_weights or InitialWeightsReport()
        self.head_pose_teacher = head_pose_teacher
        self.perceptual: PerceptualPyramidLoss | None = None
        if any(weights.perceptual):
            network = perceptual_network or self._default_vgg()
            self.perceptual = PerceptualPyramidLoss(network, weights.perceptual, weights.perceptual_scales)
            self.perceptual.to(self.device)
        self.car = (
            GeneratedMouthCAR(modules.metric, landmarker, weights.car) if (weights.car or weights.mouth) else None
        )
        modules.set_trainable(config.trainable)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.MultiStepLR] = {}
        for name, rate_field in _LEARNING_RATES.items():
            parameters = modules.trainable_parameters(name)
            if not parameters:
                continue
            self.optimizers[name] = torch.optim.Adam(
                parameters,
                lr=getattr(config.optimizer, rate_field),
                betas=tuple(config.optimizer.betas),
                weight_decay=config.optimizer.weight_decay,
            )
            milestones = config.schedule.mapping_milestones if name == "mapping" else config.schedule.milestones
            self.schedulers[name] = torch.optim.lr_scheduler.MultiStepLR(
                self.optimizers[name], milestones=list(milestones), gamma=config.schedule.gamma
            )
        if not any(name != "discriminator" for name in self.optimizers):
            raise TrainingConfigError(
                "nothing to train: config.trainable switches off every renderer module; enable at least one "
                "(dense_motion, fusion, mapping, keypoint_detector, generator_rest)"
            )
        self.random = torch.Generator().manual_seed(config.seed)
        # What the steps call: the modules themselves, or the loop's DDP wrappers (wrap_for_data_parallel).
        self.forward_module: nn.Module = modules
        self.discriminator_forward: nn.Module | None = modules.discriminator
        # Mixed precision (use_mixed_precision): autocast dtype and one gradient scaler per backward pass.
        self.autocast_dtype: torch.dtype | None = None
        self.scalers = {name: torch.amp.GradScaler("cpu", enabled=False) for name in ("generator", "discriminator")}
        self.step = 0
        self.epoch = 0
        self.last_prediction: torch.Tensor | None = None
        logger.info(
            "stage 2 (%s): optimising %s; CERL %s, CAR %s",
            config.variant,
            ", ".join(
                f"{name} ({sum(p.numel() for p in opt.param_groups[0]['params'])} weights)"
                for name, opt in self.optimizers.items()
            ),
            "on" if config.cerl else "off",
            "on" if weights.car else "off",
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def _build(
        cls,
        renderer_config: CERLRendererConfig,
        parts: Mapping[str, Mapping[str, torch.Tensor]],
        sources: list[str],
        metric: TemporalCorrelationMetric | None,
        config: RendererTrainingConfig,
        **options: Any,
    ) -> RendererTrainer:
        generator_config = dataclasses.replace(renderer_config.generator, cerl=config.cerl, spectral_norm=True)
        weights = config.losses
        needs_discriminator = bool(weights.generator_gan or weights.discriminator_gan or any(weights.feature_matching))
        head_pose_estimator = None
        if weights.equivariance:
            estimator = config.head_pose_estimator
            mapping = renderer_config.mapping
            if (estimator.num_keypoints, estimator.num_bins) != (mapping.num_keypoints, mapping.num_bins):
                raise TrainingConfigError(
                    f"head_pose_estimator predicts {estimator.num_keypoints} keypoints / {estimator.num_bins} bins, the "
                    f"MappingNet {mapping.num_keypoints} / {mapping.num_bins}; the equivariance term moves the same "
                    "keypoints with both, so set head_pose_estimator.num_keypoints and num_bins to match"
                )
            head_pose_estimator = HeadPoseEstimator(estimator)
        modules = RendererTrainingModules(
            keypoint_detector=KeypointDetector(renderer_config.keypoint_detector),
            mapping=MappingNet(renderer_config.mapping),
            generator=OcclusionAwareSPADEGenerator(generator_config),
            discriminator=MultiScaleDiscriminator(config.discriminator) if needs_discriminator else None,
            metric=metric if (config.cerl or weights.car or weights.mouth) else None,
            head_pose_estimator=head_pose_estimator,
        )
        report = InitialWeightsReport(sources=list(sources))
        if not config.cerl and "generator" in parts:
            # The "w/o CERL" variants train SadTalker's generator: fusion layers of a TAVCE start are dropped.
            generator_part = dict(parts["generator"])
            dropped = [key for key in generator_part if key.startswith("fusion.")]
            if dropped:
                logger.info("initial weights: CERL off, %d fusion tensors not used", len(dropped))
                parts = {**parts, "generator": {k: v for k, v in generator_part.items() if k not in dropped}}
        for part, attribute in (
            ("kp_detector", "keypoint_detector"),
            ("mapping", "mapping"),
            ("generator", "generator"),
            ("he_estimator", "head_pose_estimator"),
            ("discriminator", "discriminator"),
        ):
            module = getattr(modules, attribute)
            if module is None:
                continue
            if part in parts:
                report.loaded[part], report.fresh[part] = load_part(module, parts[part], part)
            else:
                report.loaded[part], report.fresh[part] = 0, sorted(module.state_dict())
        for part, fresh in report.fresh.items():
            if fresh:
                logger.warning(
                    "initial weights: %s keeps %d tensors at their initialisation (%s%s)",
                    part,
                    len(fresh),
                    ", ".join(fresh[:4]),
                    ", …" if len(fresh) > 4 else "",
                )
        image_size = options.pop("image_size", renderer_config.image_size)
        device = options.pop("device", None)
        if device is not None:
            modules.to(device)
        return cls(modules, config, image_size=image_size, initial_weights=report, **options)

    @classmethod
    def from_renderer(
        cls,
        renderer: CERLRenderer,
        metric: TemporalCorrelationMetric | None,
        config: RendererTrainingConfig = RendererTrainingConfig(),
        **options: Any,
    ) -> RendererTrainer:
        """Start from a loaded :class:`CERLRenderer` (e.g. a tavce folder's ``renderer``), copied.

        Its architecture is kept; a renderer without CERL layers trained with ``config.cerl``
        gets fresh fusion layers (reported in :attr:`initial_weights`). A full-mode MappingNet
        (73 inputs, SadTalker's ``full`` / ``extfull`` modes) is neither trained nor exported:
        TAVCE's renderer has none.

        Args:
            options: ``landmarker``, ``perceptual_network``, ``head_pose_teacher``, ``device``,
                ``image_size`` (default the renderer's).
        """
        parts = {
            "kp_detector": renderer.keypoint_detector.state_dict(),
            "mapping": renderer.mapping.state_dict(),
            "generator": renderer.generator.state_dict(),
        }
        return cls._build(renderer.config, parts, [f"<{type(renderer).__name__}>"], metric, config, **options)

    @classmethod
    def from_pretrained(
        cls,
        sources: Sequence[WeightsSource],
        metric: TemporalCorrelationMetric | None,
        config: RendererTrainingConfig = RendererTrainingConfig(),
        *,
        renderer_config: CERLRendererConfig = CERLRendererConfig(),
        **options: Any,
    ) -> RendererTrainer:
        """Start from official files and/or tavce folders, loaded non-strictly (:mod:`~tavce.training.renderer.weights`).

        TAVCE's own start: the face-vid2vid checkpoint (generator, keypoint detector,
        head-pose estimator, discriminator) plus a MappingNet, e.g.
        ``[("00000189-checkpoint.pth.tar", "facevid2vid_00189-model.pth.tar"), "mapping_00229-model.pth.tar"]``,
        or ``[SadTalker_V0.0.2_256.safetensors, mapping_00229-model.pth.tar]``; the CERL layers start fresh.

        Args:
            renderer_config: the architecture (official sizes by default).
            options: as :meth:`from_renderer`.
        """
        parts, read = read_renderer_parts(sources)
        return cls._build(renderer_config, parts, read, metric, config, **options)

    # ------------------------------------------------------------------ loop hooks
    def use_mixed_precision(self, dtype: torch.dtype | None) -> None:
        """Run the forward passes under ``torch.autocast(dtype)``; float16 also scales the gradients (GradScaler).

        None switches back to float32. The loss sums and the non-finite check stay in float32.
        """
        self.autocast_dtype = dtype
        device_type = self.device.type
        self.scalers = {
            name: torch.amp.GradScaler(device_type, enabled=dtype == torch.float16)
            for name in ("generator", "discriminator")
        }

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        )

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return next(self.modules.generator.parameters()).device

    def _default_vgg(self) -> nn.Module:
        if self.config.vgg19_weights is None:
            logger.warning(
                "perceptual loss with a random VGG19: set vgg19_weights to torchvision's vgg19-dcbb9e9d.pth for real training"
            )
            return VGG19Features()
        return load_vgg19_weights(self.config.vgg19_weights)

    def _to_device(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = self.device
        return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}

    def _zero_grad(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.optimizers:
                self.optimizers[name].zero_grad(set_to_none=True)

    @staticmethod
    def _checked(terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
        if bad:
            raise NonFiniteLossError(
                f"non-finite loss terms {bad}; lower the learning rates (config.optimizer) or check the batch's data"
            )
        # Summed in float32 whatever the autocast dtype of the terms.
        return sum((value.float() for value in terms.values()), next(iter(terms.values())).new_zeros((), dtype=torch.float32))

    # ------------------------------------------------------------------ steps
    def generator_losses(self, batch: Mapping[str, torch.Tensor], forward: RendererForward) -> dict[str, torch.Tensor]:
        """Every enabled generator-side term (weighted) of one forward pass; CAR is absent when its batch is skipped."""
        weights = self.config.losses
        prediction, driving = forward.prediction, batch["driving_image"]
        terms: dict[str, torch.Tensor] = {}
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(prediction, driving)
        if self.modules.discriminator is not None and (weights.generator_gan or any(weights.feature_matching)):
            discriminator = self.modules.discriminator
            discriminator.requires_grad_(False)  # the generator step does not train the discriminator
            try:
                fake = discriminator(prediction)
                if weights.generator_gan:
                    terms["generator_gan"] = hinge_generator_loss(fake, weights.generator_gan)
                if any(weights.feature_matching):
                    with torch.no_grad():
                        real = discriminator(driving)
                    terms["feature_matching"] = feature_matching_loss(real, fake, weights.feature_matching)
            finally:
                discriminator.requires_grad_(True)
        if weights.l1:
            terms["l1"] = weights.l1 * F.l1_loss(prediction, driving)
        if weights.expression:
            terms["expression"] = weights.expression * expression_loss(forward.driving_motion)
        if weights.keypoint_prior:
            terms["keypoint_prior"] = weights.keypoint_prior * keypoint_prior_loss(forward.driving_keypoints)
        if weights.head_pose:
            with torch.no_grad():
                teacher = self.head_pose_teacher(driving)
            terms["head_pose"] = weights.head_pose * head_pose_loss(forward.driving_motion, teacher)
        if weights.equivariance:
            transform = self.config.equivariance_transform
            warp = RandomWarp(
                prediction.shape[0],
                transform.sigma_affine,
                transform.sigma_tps,
                transform.points_tps,
                generator=self.random,
                like=prediction,
            )
            terms["equivariance"] = weights.equivariance * equivariance_loss(
                forward.driving_keypoints, forward.canonical_keypoints, driving, self.modules.head_pose_estimator, warp
            )
        if self.car is not None:
            car = self.car(
                forward.audio_relationship, batch["previous_image"], batch["mouth_centres"][:, 0], prediction
            )
            if not car.skipped:
                if weights.car:
                    terms["car"] = car.loss
                if weights.mouth:
                    real_mouths = crop_mouths(driving, batch["mouth_centres"][:, 1], crop_size=self.car.crop_size)
                    terms["mouth"] = weights.mouth * F.l1_loss(car.generated_mouths, real_mouths)
        return terms

    def generator_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One update of the renderer (generator, MappingNet, and the detector / estimator when trainable).

        Args:
            batch: a collated stage-2 batch (:class:`~tavce.training.data.RendererDataset`).

        Returns:
            Weighted loss terms by name and ``generator_total``; ``car_skipped`` is 1.0 when no face
            was found on a generated frame (CAR left out of this batch), else 0.0. The detached
            prediction is kept in :attr:`last_prediction` for :meth:`discriminator_step`.

        Raises:
            NonFiniteLossError: a term is NaN or infinite (no weights are changed then).
        """
        batch = self._to_device(batch)
        self.modules.train()
        names = [name for name in self.optimizers if name != "discriminator"]
        self._zero_grad(names)
        needs_relationship = self.car is not None
        skipped_before = self.car.skipped_batches if self.car is not None else 0
        with self._autocast():
            forward = self.forward_module(batch, with_relationship=needs_relationship)
            terms = self.generator_losses(batch, forward)
        total = self._checked(terms)
        scaler = self.scalers["generator"]
        scaler.scale(total).backward()
        for name in names:
            scaler.step(self.optimizers[name])
        scaler.update()
        self.step += 1
        self.last_prediction = forward.prediction.detach()
        losses = {name: float(value.detach()) for name, value in terms.items()}
        losses["generator_total"] = float(total.detach())
        losses["car_skipped"] = float(self.car is not None and self.car.skipped_batches > skipped_before)
        return losses

    def discriminator_step(
        self, batch: Mapping[str, torch.Tensor], prediction: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One hinge update of the discriminator on the driving frames vs ``prediction`` (default :attr:`last_prediction`).

        Returns:
            ``{"discriminator_gan": value}`` (empty when the discriminator term is off).
        """
        if self.modules.discriminator is None or not self.config.losses.discriminator_gan:
            return {}
        prediction = self.last_prediction if prediction is None else prediction
        if prediction is None:
            raise InvalidArgumentError(
                "discriminator_step: no prediction; call generator_step first or pass prediction="
            )
        batch = self._to_device(batch)
        self.modules.train()
        self._zero_grad(["discriminator"])
        discriminator = self.discriminator_forward or self.modules.discriminator
        with self._autocast():
            loss = hinge_discriminator_loss(
                discriminator(batch["driving_image"]),
                discriminator(prediction.detach()),
                self.config.losses.discriminator_gan,
            )
        scaler = self.scalers["discriminator"]
        scaler.scale(self._checked({"discriminator_gan": loss})).backward()
        scaler.step(self.optimizers["discriminator"])
        scaler.update()
        return {"discriminator_gan": float(loss.detach())}

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """:meth:`generator_step` then :meth:`discriminator_step` on the same batch; the merged loss dictionary."""
        losses = self.generator_step(batch)
        losses |= self.discriminator_step(batch)
        return losses

    def end_epoch(self) -> None:
        """Advance every MultiStepLR by one epoch (the schedule counts epochs)."""
        for scheduler in self.schedulers.values():
            scheduler.step()
        self.epoch += 1

    def learning_rates(self) -> dict[str, float]:
        """Current learning rate per optimised module."""
        return {name: optimizer.param_groups[0]["lr"] for name, optimizer in self.optimizers.items()}

    @property
    def car_counts(self) -> dict[str, int]:
        """Batches with CAR applied and skipped (no face on a generated frame) so far."""
        if self.car is None:
            return {"applied": 0, "skipped": 0}
        return {"applied": self.car.applied_batches, "skipped": self.car.skipped_batches}

    # ------------------------------------------------------------------ state for checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Networks (all but the frozen metric), optimisers, schedulers, gradient scalers, counters and the trainer's random state."""
        return {
            "modules": {name: module.state_dict() for name, module in self.modules.named_trained_modules()},
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "schedulers": {name: scheduler.state_dict() for name, scheduler in self.schedulers.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "counters": {"step": self.step, "epoch": self.epoch, **{f"car_{k}": v for k, v in self.car_counts.items()}},
            "random": self.random.get_state(),
            "config": dataclasses.asdict(self.config),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (same configuration and architecture)."""
        modules = dict(self.modules.named_trained_modules())
        if set(state["modules"]) != set(modules) or set(state["optimizers"]) != set(self.optimizers):
            raise InvalidArgumentError(
                f"trainer state holds {sorted(state['modules'])} / optimisers {sorted(state['optimizers'])}, this trainer "
                f"{sorted(modules)} / {sorted(self.optimizers)}; resume with the configuration the state was saved with"
            )
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        for name, scaler in self.scalers.items():
            saved = state.get("scalers", {}).get(name)
            if scaler.is_enabled() and saved:  # a disabled scaler has no state (float32 or bfloat16 runs)
                scaler.load_state_dict(saved)
        counters = state["counters"]
        self.step, self.epoch = int(counters["step"]), int(counters["epoch"])
        if self.car is not None:
            self.car.applied_batches, self.car.skipped_batches = (
                int(counters["car_applied"]),
                int(counters["car_skipped"]),
            )
        self.random.set_state(state["random"])

    # ------------------------------------------------------------------ export
    def export_renderer(self) -> CERLRenderer:
        """An inference :class:`CERLRenderer` (eval mode, spectral norm folded) with copies of the trained weights."""
        modules = self.modules
        keypoint_detector = KeypointDetector(modules.keypoint_detector.config)
        keypoint_detector.load_state_dict(modules.keypoint_detector.state_dict())
        mapping = MappingNet(modules.mapping.config)
        mapping.load_state_dict(modules.mapping.state_dict())
        generator_state = {key: value.detach().clone() for key, value in modules.generator.state_dict().items()}
        generator = load_inference_generator(generator_state, modules.generator.config, source="trained generator")
        return CERLRenderer.from_modules(keypoint_detector, mapping, generator, image_size=self.image_size).to(
            self.device
        )

    def save_pretrained(self, folder: str | Path, *, base: str | Path | Mapping[str, Any] | None = None) -> Path:
        """Write a tavce weights folder: the trained ``renderer`` and the frozen ``metric`` (+ ``base``'s others).

        ``TalkingHeadPipeline.from_pretrained(folder)`` loads it with CERL on when the folder is
        complete; without ``base`` pass the preprocessor and Audio2Coeff there
        (``from_pretrained(folder, preprocessor=..., audio2coeff=...)``).

        Args:
            base: the ``preprocessor`` and ``audio2coeff`` to store beside the renderer: a tavce
                folder (e.g. the one training started from) or a mapping of components.
        """
        from tavce.components import load_components, save_components
        from tavce.convert.export import preprocessing_constants

        preprocessing = preprocessing_constants(self.image_size)
        others: dict[str, Any] = {}
        if isinstance(base, (str, Path)):
            others, preprocessing = load_components(base, skip={"renderer", "metric"})
            preprocessing = {**preprocessing, "crop_size": self.image_size}
        elif base is not None:
            others = {name: base[name] for name in ("preprocessor", "audio2coeff") if base.get(name) is not None}
        components = {**others, "renderer": self.export_renderer().cpu(), "metric": self.modules.metric}
        if components["metric"] is None:
            del components["metric"]
        provenance = {
            "source": "tavce.training.renderer",
            "variant": self.config.variant,
            "step": self.step,
            "epoch": self.epoch,
            "initial_weights": self.initial_weights.sources,
        }
        return save_components(folder, components, preprocessing, provenance=provenance)
