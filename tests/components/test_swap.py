"""One component swapped at a time (then all four): the pipeline renders in crop and full modes, saves and reloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tavce import ComponentNotSerializableError, InvalidArgumentError, TalkingHeadPipeline
from tavce.models.audio2coeff import SadTalkerAudio2Coeff
from tavce.models.tavc import TAVCAudioEncoder, TAVCAudioEncoderConfig, TAVCMetric
from tavce.testing import tiny_components
from tests.components.stand_ins import (
    BoxPreprocessor,
    LoudnessAudio2Coeff,
    PooledAudioEncoder,
    PooledAudioEncoderConfig,
    PooledMetric,
    PooledMetricConfig,
    ShiftRenderer,
    ShiftRendererConfig,
)
from tests.helpers import PHOTO_SIZE, speech_like

FRAMES = 8
WORKING_SIZE = 256


@pytest.fixture(scope="module")
def speech():
    return speech_like(FRAMES / 25)


def _videos(pipe: TalkingHeadPipeline, portrait, speech) -> dict[str, np.ndarray]:
    """Frames in crop and full modes, with a fixed seed."""
    photo, box = portrait
    return {
        mode: np.stack(list(pipe(photo, speech, mode=mode, face_box=box, seed=3, progress=False).frames))
        for mode in ("crop", "full")
    }


def _renders_saves_and_reloads(pipe: TalkingHeadPipeline, portrait, speech, folder: Path) -> TalkingHeadPipeline:
    videos = _videos(pipe, portrait, speech)
    assert videos["full"].shape == (FRAMES, PHOTO_SIZE[1], PHOTO_SIZE[0], 3)
    assert videos["crop"].shape[0] == FRAMES and videos["crop"].dtype == np.uint8
    pipe.save_pretrained(folder)
    again = TalkingHeadPipeline.from_pretrained(folder)
    for name, component in pipe.components.items():
        assert type(again.components[name]) is type(component), name
    reloaded = _videos(again, portrait, speech)
    for mode, frames in videos.items():
        np.testing.assert_array_equal(reloaded[mode], frames, err_msg=mode)
    return again


def test_preprocessor_swap(tiny_weights, portrait, speech, tmp_path) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, preprocessor=BoxPreprocessor())
    _renders_saves_and_reloads(pipe, portrait, speech, tmp_path / "weights")


def test_audio2coeff_swap(tiny_weights, portrait, speech, tmp_path) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, audio2coeff=LoudnessAudio2Coeff().eval())
    _renders_saves_and_reloads(pipe, portrait, speech, tmp_path / "weights")


@pytest.mark.parametrize("cerl", [False, True])
def test_renderer_swap(tiny_weights, portrait, speech, tmp_path, cerl: bool) -> None:
    renderer = ShiftRenderer(ShiftRendererConfig(cerl=cerl, relationship_dim=4)).eval()
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, renderer=renderer)
    assert pipe.has_cerl is cerl and pipe.size == WORKING_SIZE
    _renders_saves_and_reloads(pipe, portrait, speech, tmp_path / "weights")


def test_metric_swap(tiny_weights, portrait, speech, tmp_path) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, metric=PooledMetric(PooledMetricConfig(4)).eval())
    assert pipe.has_cerl
    result = pipe(*portrait[:1], speech, face_box=portrait[1], seed=0, progress=False)
    assert result.relationship.differences.shape == (FRAMES, 4)
    _renders_saves_and_reloads(pipe, portrait, speech, tmp_path / "weights")


def test_audio_encoder_swap_inside_audio2coeff_and_metric(tiny_weights, portrait, speech, tmp_path) -> None:
    tiny = tiny_components(0)
    audio2coeff = SadTalkerAudio2Coeff(
        tiny["audio2coeff"].config,
        expression_audio_encoder=PooledAudioEncoder(PooledAudioEncoderConfig(24)),
        pose_audio_encoder=PooledAudioEncoder(PooledAudioEncoderConfig(8)),
    ).eval()
    metric = TAVCMetric(
        audio_encoder=TAVCAudioEncoder(TAVCAudioEncoderConfig(embedding_dim=4), backbone=PooledAudioEncoder()),
        mouth_encoder=tiny["metric"].mouth_encoder,
    ).eval()
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, audio2coeff=audio2coeff, metric=metric)
    again = _renders_saves_and_reloads(pipe, portrait, speech, tmp_path / "weights")
    assert type(again.audio2coeff.expression_net.audio_encoder) is PooledAudioEncoder
    assert again.audio2coeff.pose_vae.audio_encoder.embedding_dim == 8
    assert type(again.metric.audio_encoder.backbone) is PooledAudioEncoder


def test_all_four_stand_ins_need_no_tavce_network(portrait, speech, tmp_path) -> None:
    pipe = TalkingHeadPipeline(
        BoxPreprocessor(),
        LoudnessAudio2Coeff().eval(),
        ShiftRenderer(ShiftRendererConfig(cerl=True, relationship_dim=4)).eval(),
        PooledMetric(PooledMetricConfig(4)).eval(),
    )
    assert TalkingHeadPipeline(**pipe.components).components == pipe.components
    _renders_saves_and_reloads(pipe, portrait, speech, tmp_path / "weights")


class DuckTypedRenderer:
    """A renderer that is not a TavceModule (not even an nn.Module): it renders, but cannot be saved."""

    def __init__(self) -> None:
        self.inner = ShiftRenderer().eval()
        self.image_size, self.has_cerl = self.inner.image_size, False

    def prepare_source(self, source):
        return self.inner.prepare_source(source)

    def render(self, state, coefficients, start, stop, relationship=None):
        return self.inner.render(state, coefficients, start, stop, relationship)


def test_a_component_that_cannot_be_saved_renders_but_is_refused_by_save_pretrained(
    tiny_weights, portrait, speech, tmp_path
) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, renderer=DuckTypedRenderer())
    assert pipe.device == torch.device("cpu") and pipe.dtype == torch.float32
    pipe.to("cpu")
    assert len(_videos(pipe, portrait, speech)["full"]) == FRAMES
    with pytest.raises(ComponentNotSerializableError, match="'renderer' is a DuckTypedRenderer"):
        pipe.save_pretrained(tmp_path / "weights")
    assert not (tmp_path / "weights").exists()


def test_composition_errors_name_the_fix(tiny_weights) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown arguments \\['vocoder'\\]"):
        TalkingHeadPipeline.from_pretrained(tiny_weights, vocoder=object())
    with pytest.raises(InvalidArgumentError, match="no metric was given"):
        TalkingHeadPipeline(BoxPreprocessor(), LoudnessAudio2Coeff(), ShiftRenderer(ShiftRendererConfig(cerl=True)))
