"""The networks of stage 2 and their training forward pass.

:class:`RendererTrainingModules` holds the keypoint detector, the MappingNet, the
generator (spectral norm kept, CERL layers when the variant has them), the
discriminator, the optional head-pose estimator and the frozen stage-1 metric. Its
:meth:`~RendererTrainingModules.forward` is TAVCE's ``AnimateModel.forward``:

1. canonical keypoints of the source image;
2. head motion of the source window (frame i repeated) and of the driving window
   (frames j+1−13 … j+1+13) from the MappingNet, on the first 70 coefficients;
3. source and driving keypoints (rotation, t_y, expression deltas);
4. the audio relationship of windows j and j+1 (frozen audio encoder, no gradient) — the
   CERL input, as at inference;
5. the prediction of frame j+1, (B, 3, S, S) in (0, 1).

Train / eval modes follow TAVCE's trainer: inside the generator only the dense-motion network
and the fusion layers switch to training mode; every other generator layer keeps its
BatchNorm statistics (eval) whatever :meth:`~RendererTrainingModules.train` is asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.discriminator import MultiScaleDiscriminator
from tavce.models.renderer.generator import OcclusionAwareSPADEGenerator
from tavce.models.renderer.head_pose_estimator import HeadPoseEstimator
from tavce.models.renderer.keypoint_detector import KeypointDetector
from tavce.models.renderer.keypoint_transform import transform_keypoints
from tavce.models.renderer.mapping_net import HeadMotion, MappingNet
from tavce.models.tavc import TemporalCorrelationMetric
from tavce.training.renderer.config import TrainableModules

__all__ = ["BATCH_KEYS", "RendererForward", "RendererTrainingModules", "check_batch"]

BATCH_KEYS = (
    "source_image",
    "previous_image",
    "driving_image",
    "source_coefficients",
    "driving_coefficients",
    "mels",
    "mouth_centres",
)
"""What a stage-2 batch must hold: a collated :class:`~tavce.training.data.RendererDataset` batch."""


def check_batch(batch: Mapping[str, torch.Tensor]) -> int:
    """The batch size B of a stage-2 batch, after checking its keys and leading shapes.

    Raises:
        InvalidArgumentError: a missing key or mismatched shapes (the message names them).
    """
    missing = [key for key in BATCH_KEYS if key not in batch]
    if missing:
        raise InvalidArgumentError(
            f"stage-2 batch: missing {missing}; collate RendererDataset items (tavce.training.data) with a DataLoader"
        )
    size = batch["source_image"].shape[0]
    expected = {
        "source_image": 4,
        "previous_image": 4,
        "driving_image": 4,
        "source_coefficients": 3,
        "driving_coefficients": 3,
        "mels": 5,
        "mouth_centres": 3,
    }
    wrong = [
        f"{key} {tuple(batch[key].shape)}"
        for key, ndim in expected.items()
        if batch[key].ndim != ndim or batch[key].shape[0] != size
    ]
    if wrong or batch["mels"].shape[1] != 2 or tuple(batch["mouth_centres"].shape[1:]) != (2, 2):
        raise InvalidArgumentError(
            f"stage-2 batch: unexpected shapes {wrong or [tuple(batch['mels'].shape), tuple(batch['mouth_centres'].shape)]}; "
            "expected images (B, 3, S, S), coefficients (B, 73, 27), mels (B, 2, 1, 80, 16), mouth_centres (B, 2, 2)"
        )
    return size


@dataclass
class RendererForward:
    """One batch through the renderer.

    Attributes:
        prediction: (B, 3, S, S) in (0, 1), the generated driving frame j+1.
        canonical_keypoints, source_keypoints, driving_keypoints: (B, K, 3) in roughly [−1, 1].
        driving_motion: the MappingNet's :class:`HeadMotion` of the driving windows.
        audio_relationship: (B, D) factors a_j − a_{j+1} (no gradient), or None without a metric.
    """

    prediction: torch.Tensor
    canonical_keypoints: torch.Tensor
    source_keypoints: torch.Tensor
    driving_keypoints: torch.Tensor
    driving_motion: HeadMotion
    audio_relationship: torch.Tensor | None


class RendererTrainingModules(nn.Module):
    """The stage-2 networks in one module (one ``state_dict`` / ``to`` for the loop).

    Args:
        keypoint_detector, mapping, generator: the renderer being trained (the generator
            built with ``spectral_norm=True``; with ``cerl=True`` for the CERL variants).
        discriminator: the multi-scale patch discriminator (None when no GAN term is used).
        metric: the frozen stage-1 metric (None when neither CERL nor CAR needs it).
        head_pose_estimator: for the equivariance term only (None otherwise).
    """

    def __init__(
        self,
        keypoint_detector: KeypointDetector,
        mapping: MappingNet,
        generator: OcclusionAwareSPADEGenerator,
        discriminator: MultiScaleDiscriminator | None = None,
        metric: TemporalCorrelationMetric | None = None,
        head_pose_estimator: HeadPoseEstimator | None = None,
    ) -> None:
        super().__init__()
        if generator.has_cerl and metric is None:
            raise InvalidArgumentError(
                "a generator with CERL layers needs the stage-1 metric for its audio relationship; pass metric="
            )
        audio_encoder = getattr(metric, "audio_encoder", None)
        relationship_dim = getattr(metric, "embedding_dim", None) or getattr(audio_encoder, "embedding_dim", None)
        if (
            generator.has_cerl
            and relationship_dim is not None
            and relationship_dim != generator.config.relationship_dim
        ):
            raise InvalidArgumentError(
                f"the metric's relationships have {relationship_dim} dimensions but the generator's CERL layers "
                f"expect {generator.config.relationship_dim}; use the metric the renderer was built for"
            )
        self.keypoint_detector = keypoint_detector
        self.mapping = mapping
        self.generator = generator
        self.discriminator = discriminator
        self.metric = metric
        self.head_pose_estimator = head_pose_estimator
        if isinstance(metric, nn.Module):
            metric.requires_grad_(False)
        self.trainable = TrainableModules()

    # ------------------------------------------------------------------ trainable vs frozen
    def generator_parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The generator's parameters by trainable group: ``dense_motion``, ``fusion`` (proj_down, proj_up, output), ``generator_rest``."""
        groups: dict[str, list[nn.Parameter]] = {"dense_motion": [], "fusion": [], "generator_rest": []}
        for name, parameter in self.generator.named_parameters():
            group = name.split(".", 1)[0]
            groups[group if group in ("dense_motion", "fusion") else "generator_rest"].append(parameter)
        return groups

    def set_trainable(self, trainable: TrainableModules) -> None:
        """Switch ``requires_grad`` per trainable group; the discriminator is always trained, the metric never."""
        self.trainable = trainable
        for group, parameters in self.generator_parameter_groups().items():
            for parameter in parameters:
                parameter.requires_grad_(getattr(trainable, group))
        self.mapping.requires_grad_(trainable.mapping)
        self.keypoint_detector.requires_grad_(trainable.keypoint_detector)
        if self.head_pose_estimator is not None:
            self.head_pose_estimator.requires_grad_(trainable.head_pose_estimator)
        if self.discriminator is not None:
            self.discriminator.requires_grad_(True)
        if isinstance(self.metric, nn.Module):
            self.metric.requires_grad_(False)

    def trainable_parameters(self, module: str) -> list[nn.Parameter]:
        """Parameters that require gradients in ``module`` (``generator``, ``mapping``, ``keypoint_detector`` …)."""
        held = getattr(self, module)
        return [] if held is None else [p for p in held.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> RendererTrainingModules:
        """TAVCE's modes: generator in eval except dense motion and fusion; frozen modules in eval."""
        super().train(mode)
        self.generator.eval()
        self.generator.dense_motion.train(mode)
        if self.generator.fusion is not None:
            self.generator.fusion.train(mode)
        # A frozen network keeps its running statistics (TAVCE's detector follows the model's mode; whether
        # it was optimised is unknown, so it is in training mode exactly when it is trained here).
        self.keypoint_detector.train(mode and self.trainable.keypoint_detector)
        if self.head_pose_estimator is not None:
            self.head_pose_estimator.train(mode and self.trainable.head_pose_estimator)
        if isinstance(self.metric, nn.Module):
            self.metric.eval()
        return self

    # ------------------------------------------------------------------ forward
    def audio_relationship(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, 2, 1, 80, 16) windows of frames j, j+1 → (B, D) factors a_j − a_{j+1}, no gradient."""
        if self.metric is None:
            raise InvalidArgumentError("the audio relationship needs the stage-1 metric; pass metric=")
        with torch.no_grad():
            return self.metric.audio_relationship(mels[:, 0], mels[:, 1])

    def motion(self, coefficients: torch.Tensor) -> HeadMotion:
        """(B, 73 or 70, 27) coefficient windows → MappingNet head motion (first ``coeff_dim`` channels)."""
        return self.mapping(coefficients[:, : self.mapping.config.coeff_dim])

    def forward(self, batch: Mapping[str, torch.Tensor], *, with_relationship: bool = False) -> RendererForward:
        """The training forward pass (module docstring) of a stage-2 batch.

        Args:
            batch: a collated :class:`~tavce.training.data.RendererDataset` batch on this module's device.
            with_relationship: compute the audio relationship even without CERL (CAR needs it).
        """
        check_batch(batch)
        source = batch["source_image"]
        canonical = self.keypoint_detector(source)
        source_keypoints = transform_keypoints(canonical, self.motion(batch["source_coefficients"]))
        driving_motion = self.motion(batch["driving_coefficients"])
        driving_keypoints = transform_keypoints(canonical, driving_motion)
        needs_relationship = self.generator.has_cerl or with_relationship
        relationship = self.audio_relationship(batch["mels"]) if needs_relationship else None
        output = self.generator(
            source, source_keypoints, driving_keypoints, relationship if self.generator.has_cerl else None
        )
        return RendererForward(
            prediction=output.prediction,
            canonical_keypoints=canonical,
            source_keypoints=source_keypoints,
            driving_keypoints=driving_keypoints,
            driving_motion=driving_motion,
            audio_relationship=relationship,
        )

    def named_trained_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """The modules whose weights training changes (for checkpoints): all but the frozen metric."""
        for name in ("keypoint_detector", "mapping", "generator", "discriminator", "head_pose_estimator"):
            module = getattr(self, name)
            if module is not None:
                yield name, module
