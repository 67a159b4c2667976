"""RendererTrainer on tiny networks: 20 finite steps with CERL and CAR, §3.7 trainability, schedules, resume state."""

from __future__ import annotations

import math

import pytest
import torch

from tavce.training.renderer import (
    NonFiniteLossError,
    RendererTrainer,
    TrainableModules,
    TrainingConfigError,
    VGG19Features,
)
from tests.helpers import SyntheticFaceLandmarker
from tests.training.renderer.tiny import (
    SIZE,
    TINY_VGG,
    cached_tiny_components,
    tiny_batch,
    tiny_trainer,
    tiny_training_config,
)

GENERATOR_TERMS = {"perceptual", "generator_gan", "feature_matching", "l1", "expression", "car"}


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module, prefix: str = "") -> bool:
    after = module.state_dict()
    return any(not torch.equal(before[key], after[key]) for key in before if key.startswith(prefix))


def test_twenty_steps_all_terms_finite_with_cerl_and_car() -> None:
    trainer = tiny_trainer()
    generator, mapping = trainer.modules.generator, trainer.modules.mapping
    before = {name: _copy(module) for name, module in (("generator", generator), ("mapping", mapping))}
    detector_before = _copy(trainer.modules.keypoint_detector)
    history = [trainer.train_step(tiny_batch(batch=1, seed=step)) for step in range(20)]
    for losses in history:
        assert GENERATOR_TERMS | {"generator_total", "discriminator_gan"} <= set(losses)
        assert all(math.isfinite(value) for value in losses.values()) and losses["car_skipped"] == 0.0
        assert losses["generator_total"] == pytest.approx(sum(losses[name] for name in GENERATOR_TERMS), rel=1e-5)
    assert trainer.step == 20 and trainer.car_counts == {"applied": 20, "skipped": 0}
    # Trained per §3.7: fusion (output = the original's `linear` included), dense motion, MappingNet.
    for prefix in ("fusion.proj_down.", "fusion.proj_up.", "fusion.output.", "dense_motion."):
        assert _changed(before["generator"], generator, prefix), prefix
    assert _changed(before["mapping"], mapping)
    # Frozen: the rest of the generator (weights and BatchNorm statistics) and the keypoint detector.
    for prefix in ("first.", "down_blocks.", "to_features.", "volume_blocks.", "bottleneck.", "decoder."):
        assert not _changed(before["generator"], generator, prefix), prefix
    assert not _changed(detector_before, trainer.modules.keypoint_detector)


def test_gradients_reach_the_fusion_layers_and_through_car_the_generator(batch) -> None:
    trainer = tiny_trainer()
    forward = trainer.modules(batch, with_relationship=True)
    terms = trainer.generator_losses(batch, forward)
    terms["l1"].backward(retain_graph=True)
    fusion = trainer.modules.generator.fusion
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    trainer.modules.zero_grad(set_to_none=True)
    terms["car"].backward()  # CAR alone: through the generated mouth crop into the generator
    dense_motion = list(trainer.modules.generator.dense_motion.parameters())
    assert all(p.grad is not None for p in fusion.parameters()) and any(p.grad.abs().sum() > 0 for p in dense_motion)
    assert all(p.grad is None for p in trainer.modules.metric.parameters())  # the metric stays frozen


def test_trainable_groups_modes_and_optimisers() -> None:
    trainer = tiny_trainer()
    modules = trainer.modules
    groups = modules.generator_parameter_groups()
    assert all(p.requires_grad for p in groups["dense_motion"] + groups["fusion"])
    assert not any(p.requires_grad for p in groups["generator_rest"])
    modules.train()
    generator = modules.generator
    assert generator.dense_motion.training and generator.fusion.training
    assert not (generator.decoder.training or generator.first.training or generator.volume_blocks.training)
    assert not modules.keypoint_detector.training and not modules.metric.training and modules.discriminator.training
    assert set(trainer.optimizers) == {"generator", "mapping", "discriminator"}
    assert trainer.learning_rates() == {"generator": 2e-5, "mapping": 2e-4, "discriminator": 2e-5}
    assert all(opt.param_groups[0]["betas"] == (0.5, 0.999) for opt in trainer.optimizers.values())
    optimised = {id(p) for p in trainer.optimizers["generator"].param_groups[0]["params"]}
    assert optimised == {id(p) for p in groups["dense_motion"] + groups["fusion"]}


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_schedule_is_per_epoch_multistep() -> None:
    trainer = tiny_trainer()
    rates = []
    for _ in range(9):
        rates.append(trainer.learning_rates())
        trainer.end_epoch()
    assert [r["mapping"] for r in rates[3:6]] == pytest.approx([2e-4, 2e-5, 2e-5])
    assert rates[7]["generator"] == pytest.approx(2e-5) and rates[8]["generator"] == pytest.approx(2e-6)
    assert rates[8]["mapping"] == pytest.approx(2e-6)


def test_configurable_trainable_modules() -> None:
    trainable = TrainableModules(mapping=False, keypoint_detector=True, generator_rest=True)
    trainer = tiny_trainer(trainable=trainable)
    assert set(trainer.optimizers) == {"generator", "keypoint_detector", "discriminator"}
    generator_count = sum(p.numel() for p in trainer.modules.generator.parameters())
    assert sum(p.numel() for p in trainer.optimizers["generator"].param_groups[0]["params"]) == generator_count
    trainer.modules.train()
    assert trainer.modules.keypoint_detector.training


def test_no_face_on_the_generated_frame_skips_only_car(batch) -> None:
    trainer = tiny_trainer(landmarker=SyntheticFaceLandmarker(faces=False))
    losses = trainer.train_step(batch)
    assert "car" not in losses and losses["car_skipped"] == 1.0
    assert GENERATOR_TERMS - {"car"} <= set(losses) and trainer.car_counts == {"applied": 0, "skipped": 1}


@pytest.mark.parametrize("variant", ["no-cerl", "none", "no-car"])
def test_ablation_variants_train(variant: str, batch) -> None:
    trainer = tiny_trainer(variant)
    assert trainer.modules.generator.has_cerl == (variant == "no-car")
    losses = trainer.train_step(batch)
    assert ("car" in losses) == (variant == "no-cerl") and all(math.isfinite(v) for v in losses.values())
    assert (trainer.modules.metric is None) == (variant == "none")


def test_fresh_fusion_layers_are_reported() -> None:
    trainer = RendererTrainer.from_renderer(
        cached_tiny_components(0, cerl=False)["renderer"], cached_tiny_components(0)["metric"], tiny_training_config(),
        landmarker=SyntheticFaceLandmarker(), image_size=SIZE,
        perceptual_network=VGG19Features(TINY_VGG),
    )  # fmt: skip
    fresh = trainer.initial_weights.fresh["generator"]
    assert fresh and all(key.startswith("fusion.") for key in fresh) and len(fresh) == 6
    assert trainer.initial_weights.loaded["generator"] > 100 and "fusion" in trainer.initial_weights.summary()


def test_state_dict_resumes_exactly() -> None:
    first, second = tiny_trainer(), tiny_trainer()
    first.train_step(tiny_batch(seed=0))
    second.train_step(tiny_batch(seed=1))  # a different history, replaced by the loaded state
    first.end_epoch()
    state = first.state_dict()
    second.load_state_dict(state)
    assert second.step == 1 and second.epoch == 1 and second.learning_rates() == first.learning_rates()
    assert first.train_step(tiny_batch(seed=5)) == second.train_step(tiny_batch(seed=5))


def test_bad_settings_and_batches_are_refused(batch) -> None:
    components = cached_tiny_components(0)
    with pytest.raises(TrainingConfigError, match="landmarker"):
        RendererTrainer.from_renderer(components["renderer"], components["metric"], tiny_training_config())
    nothing = TrainableModules(dense_motion=False, fusion=False, mapping=False)
    with pytest.raises(TrainingConfigError, match="nothing to train"):
        tiny_trainer(trainable=nothing)
    with pytest.raises(TrainingConfigError, match="head_pose_teacher"):
        tiny_trainer(losses=tiny_training_config().losses.__class__(head_pose=1.0))
    with pytest.raises(ValueError, match="mouth_centres"):
        tiny_trainer().generator_step({k: v for k, v in batch.items() if k != "mouth_centres"})
    broken = {**batch, "driving_image": torch.full_like(batch["driving_image"], float("nan"))}
    trainer = tiny_trainer()
    before = _copy(trainer.modules.mapping)
    with pytest.raises(NonFiniteLossError, match="l1"):
        trainer.generator_step(broken)
    assert not _changed(before, trainer.modules.mapping)


def test_optional_terms_equivariance_keypoint_prior_head_pose_mouth(batch) -> None:
    from tavce.models.renderer.head_pose_estimator import HeadPoseEstimator, HeadPoseEstimatorConfig
    from tavce.training.renderer import LossWeights

    estimator = HeadPoseEstimatorConfig(
        stem_channels=4, stage_channels=(4, 8, 8, 8), blocks_per_stage=(1, 1, 1, 1), num_keypoints=3
    )
    teacher = HeadPoseEstimator(estimator).eval()  # a stand-in for Hopenet: any image → pose bin logits
    weights = LossWeights(equivariance=10.0, keypoint_prior=10.0, head_pose=20.0, mouth=1.0)
    components = cached_tiny_components(0)
    trainer = RendererTrainer.from_renderer(
        components["renderer"], components["metric"], tiny_training_config(losses=weights, head_pose_estimator=estimator),
        landmarker=SyntheticFaceLandmarker(), perceptual_network=VGG19Features(TINY_VGG), head_pose_teacher=teacher,
        image_size=SIZE,
    )  # fmt: skip
    losses = trainer.train_step(batch)
    assert {"equivariance", "keypoint_prior", "head_pose", "mouth"} <= set(losses)
    assert all(math.isfinite(value) and value >= 0 for name, value in losses.items() if name != "generator_gan")
    # Equivariance is measured with the (frozen by default) head-pose estimator; its weights stay.
    assert trainer.modules.head_pose_estimator is not None and "head_pose_estimator" not in trainer.optimizers
    with pytest.raises(TrainingConfigError, match="num_keypoints"):
        RendererTrainer.from_renderer(
            components["renderer"], components["metric"], tiny_training_config(losses=weights),
            landmarker=SyntheticFaceLandmarker(), head_pose_teacher=teacher,
        )  # fmt: skip
