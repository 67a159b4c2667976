"""Swap pipeline components for your own subclasses: one per interface, saved and reloaded with the pipeline.

    python examples/custom_component.py portrait.png speech.wav -o custom.mp4 --head-motion 0.3
    python examples/custom_component.py portrait.png speech.wav --save-weights ./custom-weights

Each class below subclasses one of tavce's components and changes one behaviour:

* ``NoiseGatedAudioEncoder`` (AudioEncoder, inside Audio2Coeff): windows quieter than a
  gate are treated as silence, so background noise in pauses does not move the lips;
* ``CalmAudio2Coeff`` (Audio2Coeff): head motion scaled towards the photo's own pose;
* ``SmoothedTAVCMetric`` (TemporalCorrelationMetric): the audio relationship that drives
  CERL averaged over a few frames (only with TAVCE weights; SadTalker's have no metric);
* ``ColourMatchedRenderer`` (Renderer): every frame's mean colour matched to the photo's;
* ``SquareVideoPreprocessor`` (Preprocessor): crop-mode videos stay square.

Their settings live in their config dataclasses, so ``save_pretrained`` writes them and
``from_pretrained`` restores them once the classes are registered with
``register_component_class``. See docs/components.md for every interface.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from dataclasses import dataclass

import numpy as np
import torch

from tavce import TalkingHeadPipeline, TavceError
from tavce.cli import parse_face_box
from tavce.components import register_component_class
from tavce.errors import InvalidArgumentError
from tavce.image import frames_to_uint8
from tavce.models.audio2coeff import Audio2CoeffOptions, SadTalkerAudio2Coeff, SadTalkerAudio2CoeffConfig
from tavce.models.audio_encoder import Wav2LipAudioEncoder, Wav2LipAudioEncoderConfig
from tavce.models.renderer import CERLRenderer
from tavce.models.tavc import TAVCMetric, TAVCMetricConfig
from tavce.preprocess import FacePreprocessor, FacePreprocessorConfig, PreparedSource
from tavce.types import AudioRelationship, AudioWindows, MotionCoefficients
from tavce.video import check_output_path

logger = logging.getLogger("custom_component")

POSE = slice(64, 70)  # rotation (3, radians) and translation (3) inside the source coefficients
SILENCE = -4.0  # the mel front-end's floor


def _rebuilt(cls, base: torch.nn.Module, config, **slots) -> torch.nn.Module:
    """An instance of ``cls`` with ``config``, holding ``base``'s weights, device and dtype."""
    custom = cls(config, **slots)
    custom.load_state_dict(base.state_dict())
    parameter = next(base.parameters(), None)
    if parameter is not None:
        custom.to(device=parameter.device, dtype=parameter.dtype)
    return custom.eval()


def _extended(base_config, config_class, **extra):
    """``config_class`` holding every field of ``base_config`` plus ``extra``."""
    fields = {field.name: getattr(base_config, field.name) for field in dataclasses.fields(base_config)}
    return config_class(**fields, **extra)


# Registration lets from_pretrained rebuild these classes from a saved folder (tavce otherwise
# refuses classes defined outside the tavce package). A folder records "module:Class"; run as a
# script this module is "__main__", so in your own code keep components in an importable module.
@dataclass(frozen=True)
class NoiseGatedAudioEncoderConfig(Wav2LipAudioEncoderConfig):
    gate_level: float = -3.0  # mean mel level (in [-4, 4]) below which a window counts as silence


@register_component_class
class NoiseGatedAudioEncoder(Wav2LipAudioEncoder):
    """The Wav2Lip encoder, with windows quieter than ``gate_level`` replaced by silence first."""

    config_class = NoiseGatedAudioEncoderConfig

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        quiet = windows.mean(dim=(1, 2, 3)) < self.config.gate_level
        gated = torch.where(quiet[:, None, None, None], torch.full_like(windows, SILENCE), windows)
        return super().forward(gated)


@dataclass(frozen=True)
class CalmAudio2CoeffConfig(SadTalkerAudio2CoeffConfig):
    head_motion_scale: float = 0.5  # 0 = the head stays as in the photo, 1 = SadTalker's motion

    def __post_init__(self) -> None:
        if not 0.0 <= self.head_motion_scale <= 1.0:
            raise InvalidArgumentError(f"head_motion_scale={self.head_motion_scale}: must be in [0, 1]")


@register_component_class
class CalmAudio2Coeff(SadTalkerAudio2Coeff):
    """SadTalker's ExpNet + PoseVAE, head motion around the source pose scaled by ``head_motion_scale``."""

    config_class = CalmAudio2CoeffConfig

    def generate(
        self,
        windows: AudioWindows,
        source_coefficients: torch.Tensor,
        options: Audio2CoeffOptions | None = None,
        generator: torch.Generator | None = None,
    ) -> MotionCoefficients:
        motion = super().generate(windows, source_coefficients, options, generator)
        source_pose = torch.as_tensor(source_coefficients, dtype=torch.float32).reshape(-1)[POSE].to(motion.pose)
        calm_pose = source_pose + self.config.head_motion_scale * (motion.pose - source_pose)
        return dataclasses.replace(motion, pose=calm_pose)


@dataclass(frozen=True)
class SmoothedTAVCMetricConfig(TAVCMetricConfig):
    smoothing_frames: int = 3  # centred moving average over this many frames (odd)

    def __post_init__(self) -> None:
        if self.smoothing_frames < 1 or self.smoothing_frames % 2 == 0:
            raise InvalidArgumentError(f"smoothing_frames={self.smoothing_frames}: must be an odd number >= 1")


@register_component_class
class SmoothedTAVCMetric(TAVCMetric):
    """The TAVC metric with its per-frame audio relationship averaged over neighbouring frames."""

    config_class = SmoothedTAVCMetricConfig

    def audio_relationships(self, windows: AudioWindows) -> AudioRelationship:
        differences = super().audio_relationships(windows).differences
        radius = self.config.smoothing_frames // 2
        padded = torch.nn.functional.pad(differences.T[None], (radius, radius), mode="replicate")
        smoothed = torch.nn.functional.avg_pool1d(padded, 2 * radius + 1, stride=1)[0].T
        smoothed[0] = 0  # frame 0 has no previous frame: no change, as in the original
        return AudioRelationship(smoothed)


@register_component_class
class ColourMatchedRenderer(CERLRenderer):
    """The face renderer with every frame's per-channel mean shifted to the source photo's."""

    def render(self, state, coefficients, start, stop, relationship=None) -> torch.Tensor:
        frames = super().render(state, coefficients, start, stop, relationship)
        target = state.source_image.mean(dim=(2, 3), keepdim=True).to(frames)
        return (frames - frames.mean(dim=(2, 3), keepdim=True) + target).clamp(0, 1)


@register_component_class
class SquareVideoPreprocessor(FacePreprocessor):
    """The face preprocessor, but crop-mode videos keep the square S×S frames the renderer draws."""

    def restore_frames(self, frames: torch.Tensor, source: PreparedSource) -> np.ndarray:
        if source.mode.pastes_back:
            return super().restore_frames(frames, source)
        return frames_to_uint8(frames)


def customise(pipe: TalkingHeadPipeline, head_motion: float, gate_level: float, smoothing: int) -> TalkingHeadPipeline:
    """``pipe`` with each component replaced by the subclass above (same weights)."""
    audio2coeff = pipe.audio2coeff
    gated = _rebuilt(
        NoiseGatedAudioEncoder,
        audio2coeff.expression_net.audio_encoder,
        _extended(audio2coeff.expression_net.audio_encoder.config, NoiseGatedAudioEncoderConfig, gate_level=gate_level),
    )
    calm = _rebuilt(
        CalmAudio2Coeff,
        audio2coeff,
        _extended(audio2coeff.config, CalmAudio2CoeffConfig, head_motion_scale=head_motion),
        expression_audio_encoder=gated,
        pose_audio_encoder=audio2coeff.pose_vae.audio_encoder,
    )
    metric = pipe.metric
    if metric is None:
        logger.info("no TAVC metric (SadTalker weights, CERL off): keeping the pipeline without one")
    else:
        metric = _rebuilt(
            SmoothedTAVCMetric,
            metric,
            _extended(metric.config, SmoothedTAVCMetricConfig, smoothing_frames=smoothing),
            audio_encoder=metric.audio_encoder,
            mouth_encoder=metric.mouth_encoder,
        )
    renderer = ColourMatchedRenderer.from_modules(
        pipe.renderer.keypoint_detector,
        pipe.renderer.mapping,
        pipe.renderer.generator,
        pipe.renderer.full_mode_mapping,
        pipe.renderer.image_size,
    )
    preprocessor = SquareVideoPreprocessor(
        FacePreprocessorConfig(**dataclasses.asdict(pipe.preprocessor.config)),
        face_recon=pipe.preprocessor.face_recon,
        landmarker=pipe.preprocessor.landmarker,
    )
    return TalkingHeadPipeline(preprocessor=preprocessor, audio2coeff=calm, renderer=renderer, metric=metric)


def save_and_reload(pipe: TalkingHeadPipeline, folder: str) -> None:
    """Write the pipeline as a tavce folder and check that every custom class comes back."""
    pipe.save_pretrained(folder)
    reloaded = TalkingHeadPipeline.from_pretrained(folder)
    classes = {name: type(component).__name__ for name, component in reloaded.components.items() if component is not None}
    classes["audio encoder"] = type(reloaded.audio2coeff.expression_net.audio_encoder).__name__
    for name, component in pipe.components.items():
        if component is not None and type(reloaded.components[name]) is not type(component):
            raise RuntimeError(f"{folder}: {name} came back as {classes[name]}")
    logger.info(
        "saved %s; it loads back with %s; head_motion_scale=%s",
        folder, ", ".join(f"{name}={cls}" for name, cls in classes.items()),
        reloaded.audio2coeff.config.head_motion_scale,
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", help="portrait photo with one visible face")
    parser.add_argument("audio", help="driving speech (wav, flac, ogg, mp3 ...; any sample rate)")
    parser.add_argument("-o", "--output", default="custom.mp4", help="destination .mp4 (default: %(default)s)")
    parser.add_argument(
        "--weights", default=None, help="tavce folder, official-files folder or Hub repo (default: official SadTalker)"
    )
    parser.add_argument(
        "--face-box", type=parse_face_box, default=None, metavar="X0,Y0,X1,Y1",
        help="face box in photo pixels; skips face detection",
    )
    parser.add_argument("--mode", default="crop", help="crop, extcrop, resize, full or extfull (default: %(default)s)")
    parser.add_argument(
        "--head-motion", type=float, default=0.5,
        help="head motion kept: 0 = still head, 1 = SadTalker's motion (default: %(default)s)",
    )
    parser.add_argument(
        "--noise-gate", type=float, default=-3.0,
        help="mean mel level in [-4, 4] under which audio counts as silence (default: %(default)s)",
    )
    parser.add_argument(
        "--relationship-smoothing", type=int, default=3,
        help="frames the CERL audio relationship is averaged over, odd (default: %(default)s)",
    )
    parser.add_argument(
        "--save-weights", default=None, metavar="FOLDER",
        help="also write the customised pipeline as a tavce folder and check that it loads back",
    )
    parser.add_argument("--seed", type=int, default=None, help="same seed, same video (default: random)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or mps (default: cuda when available)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = check_output_path(arguments.output)
        official = TalkingHeadPipeline.from_pretrained(arguments.weights)
        pipe = customise(official, arguments.head_motion, arguments.noise_gate, arguments.relationship_smoothing)
        pipe.to(arguments.device)
        if arguments.save_weights is not None:
            save_and_reload(pipe, arguments.save_weights)
        result = pipe(
            arguments.image, arguments.audio, mode=arguments.mode, face_box=arguments.face_box, seed=arguments.seed
        )
        head_turn = (result.coefficients.pose[:, :3] - result.coefficients.pose[:1, :3]).abs().max().item()
        logger.info("largest head rotation from the first frame: %.1f degrees", head_turn * 180 / torch.pi)
        path = result.save(output)
    except TavceError as error:
        logger.error("%s", error)
        return 2
    logger.info("wrote %s (%d frames)", path, result.num_frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
