"""TAVCE correlation checkpoint -> TAVC encoders (tavce.convert.tavc)."""

from __future__ import annotations

import pytest
import torch

from tavce.convert.files import convert_tavce_correlation_checkpoint
from tavce.convert.tavc import convert_audio_encoder, convert_mouth_encoder
from tavce.errors import IncompatibleWeightsError
from tavce.models.base import load_state_dict_strict
from tavce.models.tavc import MouthEncoder, TAVCAudioEncoder
from tavce.testing import official_manifest, reference_state_dict

CHECKPOINT = "tavce_correlation_epoch_N.pth"


def original_part(name: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Recipe tensors of one sub-dict of the correlation checkpoint at its manifest shapes."""
    shapes = {
        key[len(name) + 1 :]: entry["shape"]
        for key, entry in official_manifest(CHECKPOINT).items()
        if key.startswith(f"{name}.")
    }
    return {prefix + key: value for key, value in reference_state_dict(shapes, salt=3).items()}


@pytest.fixture(scope="module")
def image_encoder_part() -> dict[str, torch.Tensor]:
    return original_part("image_encoder")


@pytest.mark.parametrize("prefix", ["", "module."])
def test_audio_encoder_loads_strictly_with_or_without_ddp_prefix(prefix):
    original = original_part("audio_encoder", prefix)
    encoder = TAVCAudioEncoder()
    load_state_dict_strict(encoder, convert_audio_encoder(original), source="test")
    torch.testing.assert_close(encoder.projection.weight, original[f"{prefix}fc.weight"])
    torch.testing.assert_close(
        encoder.backbone.blocks[12].norm.running_var, original[f"{prefix}audio_encoder.12.conv_block.1.running_var"]
    )


def test_mouth_encoder_loads_strictly_and_maps_every_layer(image_encoder_part):
    encoder = MouthEncoder()
    converted = convert_mouth_encoder({f"module.{k}": v for k, v in image_encoder_part.items()})
    load_state_dict_strict(encoder, converted, source="test")
    pairs = {
        "conv1.weight": encoder.stem[0].weight,
        "prelu.weight": encoder.stem[2].weight,
        "layer1.0.downsample.0.weight": encoder.stages[0][0].shortcut[0].weight,
        "layer4.1.prelu.weight": encoder.stages[3][1].activation.weight,
        "layer3.0.bn3.running_mean": encoder.stages[2][0].output_norm.running_mean,
        "bn2.bias": encoder.final_norm.bias,
        "fc.weight": encoder.projection.weight,
        "features.bias": encoder.embedding_norm.bias,
    }
    for original_key, ours in pairs.items():
        torch.testing.assert_close(ours, image_encoder_part[original_key])


def test_face_recognition_initialisation_drops_only_the_head(image_encoder_part):
    converted = convert_mouth_encoder(image_encoder_part, backbone_only=True)
    missing, unexpected = MouthEncoder().load_state_dict(converted, strict=False)
    # (BatchNorm fills a missing num_batches_tracked itself, so it is not reported)
    head = ["projection.weight", "projection.bias"] + [
        f"embedding_norm.{leaf}" for leaf in ("weight", "bias", "running_mean", "running_var")
    ]
    assert sorted(missing) == sorted(head)
    assert unexpected == []


def test_whole_checkpoint_and_its_unused_entries(image_encoder_part):
    checkpoint = {
        "audio_encoder": original_part("audio_encoder", "module."),
        "image_encoder": image_encoder_part,
        "generator1": {"model.0.weight": torch.zeros(1)},
        "generator2": {},
        "optimizer": {"state": {}},
        "lr_scheduler": {"last_epoch": 9},
    }
    parts = convert_tavce_correlation_checkpoint(checkpoint)
    assert set(parts) == {"tavc_audio_encoder", "mouth_encoder"}
    load_state_dict_strict(TAVCAudioEncoder(), parts["tavc_audio_encoder"], source="test")
    load_state_dict_strict(MouthEncoder(), parts["mouth_encoder"], source="test")
    with pytest.raises(IncompatibleWeightsError, match="no 'image_encoder' entry"):
        convert_tavce_correlation_checkpoint({"audio_encoder": checkpoint["audio_encoder"]})


def test_unknown_keys_are_refused():
    original = original_part("audio_encoder")
    with pytest.raises(IncompatibleWeightsError, match="fc2.weight"):
        convert_audio_encoder({**original, "fc2.weight": torch.zeros(1)})
    with pytest.raises(IncompatibleWeightsError, match="layer5"):
        convert_mouth_encoder({"layer5.0.bn1.weight": torch.zeros(1)})
