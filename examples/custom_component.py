"""Swap a pipeline component for your own subclass: an Audio2Coeff with calmer head motion.

    python examples/custom_component.py portrait.png speech.wav -o calm.mp4 --head-motion 0.3
    python examples/custom_component.py portrait.png speech.wav --save-weights ./calm-weights

``CalmAudio2Coeff`` is SadTalker's Audio2Coeff with the generated head motion scaled towards
the photo's own pose (0 = the head stays as in the photo, 1 = SadTalker's motion). Its scale
lives in the component's config, so ``save_pretrained`` writes it and ``from_pretrained``
restores it, once the class is registered with ``register_component_class``. See
docs/components.md for every interface a component can implement.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from dataclasses import dataclass

import torch

from tavce import TalkingHeadPipeline, TavceError
from tavce.cli import parse_face_box
from tavce.components import register_component_class
from tavce.errors import InvalidArgumentError
from tavce.models.audio2coeff import Audio2CoeffOptions, SadTalkerAudio2Coeff, SadTalkerAudio2CoeffConfig
from tavce.types import AudioWindows, MotionCoefficients
from tavce.video import check_output_path

logger = logging.getLogger("custom_component")

POSE = slice(64, 70)  # rotation (3, radians) and translation (3) inside the source coefficients


@dataclass(frozen=True)
class CalmAudio2CoeffConfig(SadTalkerAudio2CoeffConfig):
    """SadTalker's sub-network sizes plus the head-motion scale (saved in ``config.json``)."""

    head_motion_scale: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.head_motion_scale <= 1.0:
            raise InvalidArgumentError(f"head_motion_scale={self.head_motion_scale}: must be in [0, 1]")


# Registration lets TalkingHeadPipeline.from_pretrained rebuild this class from a saved folder;
# tavce otherwise refuses to instantiate classes defined outside the tavce package. The folder
# records "module:Class"; run as a script this module is "__main__", so in your own code keep
# components in an importable module that every program loading the folder imports.
@register_component_class
class CalmAudio2Coeff(SadTalkerAudio2Coeff):
    """SadTalker's ExpNet + PoseVAE, head motion around the source pose scaled by ``head_motion_scale``."""

    config_class = CalmAudio2CoeffConfig

    @classmethod
    def from_sadtalker(cls, base: SadTalkerAudio2Coeff, head_motion_scale: float) -> CalmAudio2Coeff:
        """The same networks and weights as ``base``, with calmer head motion."""
        sizes = {field.name: getattr(base.config, field.name) for field in dataclasses.fields(base.config)}
        config = CalmAudio2CoeffConfig(**sizes, head_motion_scale=head_motion_scale)
        calm = cls(config)
        calm.load_state_dict(base.state_dict())
        parameter = next(base.parameters())
        return calm.to(device=parameter.device, dtype=parameter.dtype).eval()

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


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", help="portrait photo with one visible face")
    parser.add_argument("audio", help="driving speech (wav, flac, ogg, mp3 ...; any sample rate)")
    parser.add_argument("-o", "--output", default="calm_head.mp4", help="destination .mp4 (default: %(default)s)")
    parser.add_argument(
        "--weights", default=None, help="tavce folder, official-files folder or Hub repo (default: official SadTalker)"
    )
    parser.add_argument(
        "--face-box", type=parse_face_box, default=None, metavar="X0,Y0,X1,Y1",
        help="face box in photo pixels; skips face detection",
    )
    parser.add_argument(
        "--head-motion", type=float, default=0.5,
        help="head motion kept: 0 = still head, 1 = SadTalker's motion (default: %(default)s)",
    )
    parser.add_argument(
        "--save-weights", default=None, metavar="FOLDER",
        help="also write the customised pipeline as a tavce folder and check that it loads back",
    )
    parser.add_argument("--seed", type=int, default=None, help="same seed, same video (default: random)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or mps (default: cuda when available)")
    return parser.parse_args(argv)


def build_calm_pipeline(weights: str | None, head_motion_scale: float) -> TalkingHeadPipeline:
    """The official pipeline with its Audio2Coeff swapped for :class:`CalmAudio2Coeff`."""
    official = TalkingHeadPipeline.from_pretrained(weights)
    calm = CalmAudio2Coeff.from_sadtalker(official.audio2coeff, head_motion_scale)
    return TalkingHeadPipeline(**{**official.components, "audio2coeff": calm})


def save_and_reload(pipe: TalkingHeadPipeline, folder: str) -> None:
    """Write the pipeline as a tavce folder and check that the custom component comes back as it was."""
    pipe.save_pretrained(folder)
    reloaded = TalkingHeadPipeline.from_pretrained(folder)
    if not isinstance(reloaded.audio2coeff, CalmAudio2Coeff):
        raise RuntimeError(f"{folder}: audio2coeff came back as {type(reloaded.audio2coeff).__name__}")
    logger.info(
        "saved %s; it loads back with audio2coeff=%s, head_motion_scale=%s",
        folder, type(reloaded.audio2coeff).__name__, reloaded.audio2coeff.config.head_motion_scale,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = check_output_path(arguments.output)
        pipe = build_calm_pipeline(arguments.weights, arguments.head_motion).to(arguments.device)
        if arguments.save_weights is not None:
            save_and_reload(pipe, arguments.save_weights)
        result = pipe(arguments.image, arguments.audio, face_box=arguments.face_box, seed=arguments.seed)
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
