"""Every implementation of each component interface — tavce's own (tiny sizes) and the stand-ins — passes its suite."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tavce.conformance import (
    Audio2CoeffConformance,
    AudioEncoderConformance,
    PreprocessorConformance,
    RendererConformance,
    TemporalCorrelationMetricConformance,
)
from tavce.models.audio2coeff import SadTalkerAudio2Coeff
from tavce.models.audio_encoder import Wav2LipAudioEncoder
from tavce.models.base import config_from_dict
from tavce.models.tavc import TAVCAudioEncoder, TAVCAudioEncoderConfig
from tavce.testing import face_landmarks, tiny_components
from tavce.types import AudioRelationship
from tests.components.stand_ins import (
    BoxPreprocessor,
    LoudnessAudio2Coeff,
    PooledAudioEncoder,
    PooledAudioEncoderConfig,
    PooledMetric,
    ShiftRenderer,
    ShiftRendererConfig,
)


class StandardFaceInBox:
    """Landmarker stand-in: the standard face fitted to the box (no dlib or insightface model)."""

    name = "standard-face"

    def detect(self, image):
        return []

    def landmarks_in_box(self, image, box):
        left, top, right, bottom = box
        return face_landmarks(((left + right) / 2, (top + bottom) / 2), (right - left) / 1.6)


# ------------------------------------------------------------------ Preprocessor
class TestFacePreprocessor(PreprocessorConformance):
    def make_preprocessor(self):
        preprocessor = tiny_components(0)["preprocessor"]
        preprocessor.landmarker = StandardFaceInBox()
        return preprocessor


class TestBoxPreprocessor(PreprocessorConformance):
    sizes = (256, 512)

    def make_preprocessor(self):
        return BoxPreprocessor()


# ------------------------------------------------------------------ Audio2Coeff
class TestSadTalkerAudio2Coeff(Audio2CoeffConformance):
    def make_audio2coeff(self):
        return tiny_components(0)["audio2coeff"]


class TestSadTalkerAudio2CoeffWithInjectedEncoders(Audio2CoeffConformance):
    def make_audio2coeff(self):
        config = tiny_components(0)["audio2coeff"].config
        return SadTalkerAudio2Coeff(
            config,
            expression_audio_encoder=PooledAudioEncoder(PooledAudioEncoderConfig(24)),
            pose_audio_encoder=PooledAudioEncoder(PooledAudioEncoderConfig(8)),
        ).eval()


class TestLoudnessAudio2Coeff(Audio2CoeffConformance):
    def make_audio2coeff(self):
        return LoudnessAudio2Coeff().eval()


# ------------------------------------------------------------------ Renderer
class TestCERLRendererWithCERL(RendererConformance):
    def make_renderer(self):
        return tiny_components(0, cerl=True)["renderer"]

    def relationship_dim(self, renderer) -> int:
        return renderer.generator.config.relationship_dim


class TestCERLRendererWithFullModeMapping(RendererConformance):
    def make_renderer(self):
        renderer = tiny_components(0, cerl=False)["renderer"]
        assert renderer.full_mode_mapping is not None and not renderer.has_cerl
        return renderer


class TestShiftRenderer(RendererConformance):
    def make_renderer(self):
        return ShiftRenderer().eval()


class TestShiftRendererWithCERL(RendererConformance):
    def make_renderer(self):
        return ShiftRenderer(ShiftRendererConfig(cerl=True, relationship_dim=6)).eval()

    def relationship_dim(self, renderer) -> int:
        return renderer.config.relationship_dim


# ------------------------------------------------------------------ TemporalCorrelationMetric
class TestTAVCMetric(TemporalCorrelationMetricConformance):
    mouth_size = 32

    def make_metric(self):
        return tiny_components(0, cerl=True)["metric"]


class TestPooledMetric(TemporalCorrelationMetricConformance):
    mouth_size = 20

    def make_metric(self):
        return PooledMetric().eval()


# ------------------------------------------------------------------ AudioEncoder
class TestWav2LipAudioEncoder(AudioEncoderConformance):
    def make_encoder(self):
        return Wav2LipAudioEncoder().eval()


class TestTAVCAudioEncoderOverAnInjectedBackbone(AudioEncoderConformance):
    def make_encoder(self):
        return TAVCAudioEncoder(TAVCAudioEncoderConfig(embedding_dim=8), backbone=PooledAudioEncoder()).eval()


class TestPooledAudioEncoder(AudioEncoderConformance):
    def make_encoder(self):
        return PooledAudioEncoder().eval()


def test_nested_configs_come_back_from_json_as_dataclasses() -> None:
    for component in tiny_components(0, cerl=False).values():
        config = component.config
        assert config_from_dict(type(config), json.loads(json.dumps(dataclasses.asdict(config)))) == config


# ------------------------------------------------------------------ the suites catch broken components
class BatchNormalisedRenderer(ShiftRenderer):
    """Broken: each frame is normalised by its batch's mean brightness, so batching changes frames."""

    def render(self, state, coefficients, start, stop, relationship=None):
        frames = super().render(state, coefficients, start, stop, relationship)
        return (frames / (2 * frames.mean())).clamp(0, 1)


class MixingAudioEncoder(PooledAudioEncoder):
    """Broken: embeddings depend on the other windows of the batch."""

    def forward(self, windows):
        embeddings = super().forward(windows)
        return embeddings - embeddings.mean(dim=0, keepdim=True)


class ShiftedRelationshipsMetric(PooledMetric):
    """Broken: its audio_relationships pairs frame t with t+1 instead of t−1."""

    def audio_relationships(self, windows):
        current = windows.windows
        following = torch.cat([current[1:], current[-1:]])
        return AudioRelationship(self.audio_relationship(following, current))


@pytest.mark.parametrize(
    ("suite", "factory", "test_name"),
    [
        (RendererConformance, lambda: BatchNormalisedRenderer().eval(), "test_batches_do_not_change_frames"),
        (AudioEncoderConformance, lambda: MixingAudioEncoder().eval(), "test_each_window_is_encoded_on_its_own"),
        (
            TemporalCorrelationMetricConformance,
            lambda: ShiftedRelationshipsMetric().eval(),
            "test_audio_relationships_pair_each_frame_with_the_previous",
        ),
    ],
)
def test_a_suite_fails_an_implementation_that_breaks_its_contract(suite, factory, test_name) -> None:
    maker = {
        RendererConformance: "make_renderer",
        AudioEncoderConformance: "make_encoder",
        TemporalCorrelationMetricConformance: "make_metric",
    }[suite]
    broken = type("Broken", (suite,), {maker: lambda self: factory()})()
    with pytest.raises(AssertionError):
        getattr(broken, test_name)()
