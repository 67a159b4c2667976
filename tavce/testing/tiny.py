"""Tiny components of every kind the pipeline uses, filled with recipe weights, for fast tests."""

from __future__ import annotations

from tavce.testing.recipe import reference_state_dict

__all__ = ["tiny_components", "make_tiny_checkpoint"]

_TINY_KEYPOINT_DETECTOR = dict(base_channels=4, max_channels=16, num_blocks=2, reshape_channels=64, reshape_depth=4)
_TINY_MAPPING = dict(hidden_channels=8)
_TINY_GENERATOR = dict(
    base_channels=4,
    max_channels=16,
    volume_channels=4,
    volume_depth=4,
    num_volume_blocks=1,
    motion_base_channels=4,
    motion_num_blocks=2,
    motion_max_channels=16,
    motion_compressed_channels=2,
    decoder_hidden_channels=8,
    decoder_num_middle_blocks=1,
    decoder_up_channels=(8, 4),
    spade_hidden_channels=4,
)
_TINY_AUDIO2COEFF = dict(
    pose_vae=dict(seq_len=8, latent_dim=4, decoder_hidden_dims=(8,), resunet_channels=(2, 3, 4, 5))
)


def _recipe_filled(module, salt: int):
    """``module`` with every tensor replaced by the recipe (seeded by key and salt; the global RNG is untouched)."""
    from tavce.models.base import load_state_dict_strict

    shapes = {key: tensor.shape for key, tensor in module.state_dict().items()}
    load_state_dict_strict(module, reference_state_dict(shapes, salt), source=type(module).__name__)
    return module.eval()


def tiny_components(seed: int = 0, *, cerl: bool = True) -> dict:
    """Tiny random components of every kind the pipeline uses, named as in a tavce folder.

    Sizes are far below the official ones (a few MB in all; the Wav2Lip audio encoders
    keep their fixed architecture) so that a whole generation runs in seconds on a CPU.
    The same ``seed`` gives the same weights on any machine.
    """
    import dataclasses

    from tavce.models.audio2coeff import SadTalkerAudio2Coeff, SadTalkerAudio2CoeffConfig
    from tavce.models.base import config_from_dict
    from tavce.models.face_recon import FaceReconConfig, FaceReconNet
    from tavce.models.renderer.generator import GeneratorConfig
    from tavce.models.renderer.keypoint_detector import KeypointDetectorConfig
    from tavce.models.renderer.mapping_net import MappingNetConfig
    from tavce.models.renderer.renderer import CERLRenderer, CERLRendererConfig
    from tavce.models.tavc import (
        MouthEncoder,
        MouthEncoderConfig,
        TAVCAudioEncoder,
        TAVCAudioEncoderConfig,
        TAVCMetric,
    )
    from tavce.preprocess import FacePreprocessor

    keypoints, relationship_dim = 3, 4
    mapping = MappingNetConfig(**_TINY_MAPPING, num_keypoints=keypoints)
    renderer = CERLRendererConfig(
        keypoint_detector=KeypointDetectorConfig(**_TINY_KEYPOINT_DETECTOR, num_keypoints=keypoints),
        mapping=mapping,
        generator=GeneratorConfig(
            **_TINY_GENERATOR, num_keypoints=keypoints, cerl=cerl, relationship_dim=relationship_dim
        ),
        # As with the official weights: SadTalker has a full-mode MappingNet, TAVCE does not.
        full_mode_mapping=None if cerl else dataclasses.replace(mapping, coeff_dim=73),
    )
    components = {
        "preprocessor": FacePreprocessor(
            face_recon=FaceReconNet(FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=4))
        ),
        "audio2coeff": SadTalkerAudio2Coeff(config_from_dict(SadTalkerAudio2CoeffConfig, _TINY_AUDIO2COEFF)),
        "renderer": CERLRenderer(renderer),
    }
    if cerl:
        components["metric"] = TAVCMetric(
            audio_encoder=TAVCAudioEncoder(TAVCAudioEncoderConfig(embedding_dim=relationship_dim)),
            mouth_encoder=MouthEncoder(
                MouthEncoderConfig(
                    image_size=32,
                    stem_channels=4,
                    stage_channels=(4, 8),
                    blocks_per_stage=(1, 1),
                    embedding_dim=relationship_dim,
                )
            ),
        )
    return {name: _recipe_filled(module, seed) for name, module in components.items()}


def make_tiny_checkpoint(folder, *, seed: int = 0, cerl: bool = True, size: int = 256):
    """Write a tiny random tavce weights folder (see :func:`tiny_components`) for fast pipeline tests.

    Loads with :func:`tavce.components.load_components` and ``TalkingHeadPipeline.from_pretrained``.

    Args:
        folder: destination (created).
        seed: weights seed; the same seed writes the same tensors.
        cerl: include the CERL fusion layers and the TAVC metric (else a full-mode MappingNet).
        size: the crop size recorded in the preprocessing constants (256 or 512).

    Returns:
        The folder, as a ``Path``.
    """
    from tavce.components import save_components
    from tavce.convert.export import preprocessing_constants

    return save_components(
        folder,
        tiny_components(seed, cerl=cerl),
        preprocessing_constants(size),
        provenance={"source": "tavce.testing.make_tiny_checkpoint", "seed": seed, "size": size, "cerl": cerl},
    )
