"""The optional enhancer component in the pipeline and the CLI: every frame enhanced, per-call switch, save/load.

A renderer stand-in returns the source crop, so each frame holds the photo's face and
the enhancement (alignment, restoration, parse mask, paste-back) runs end to end.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from tavce import TalkingHeadPipeline
from tavce.cli import main
from tavce.errors import InvalidArgumentError, WeightsNotFoundError
from tavce.models.enhancer import FaceEnhancer
from tavce.preprocess import Face
from tavce.preprocess.tracking import source_landmarks_in_frame
from tests.components.stand_ins import BoxPreprocessor, LoudnessAudio2Coeff, SourceRenderer
from tests.helpers import probe, speech_like
from tests.models.test_enhancer import small_enhancer

FRAMES = 6


class EveryOtherFrameLandmarker:
    """Finds the face (at the given landmarks, shifted by a pixel) in every second frame it is shown."""

    name = "every-other-frame"

    def __init__(self, landmarks: np.ndarray) -> None:
        self.landmarks, self.calls = landmarks, 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        if self.calls % 2:
            return []
        low, high = self.landmarks.min(0), self.landmarks.max(0)
        return [Face(box=(*low, *high), landmarks=self.landmarks + 1, score=1.0)]


class LandmarkedBoxPreprocessor(BoxPreprocessor):
    landmarker = None


@pytest.fixture(scope="module")
def short_speech():
    return speech_like(FRAMES / 25)


def _pipeline(enhancer: FaceEnhancer | None = None, preprocessor=None) -> TalkingHeadPipeline:
    return TalkingHeadPipeline(
        preprocessor or BoxPreprocessor(), LoudnessAudio2Coeff().eval(), SourceRenderer().eval(), enhancer=enhancer
    )


def _frames(pipe, source, speech, **options) -> np.ndarray:
    return np.stack(list(pipe(source, speech, seed=1, progress=False, batch_size=4, **options).frames))


def test_every_frame_is_enhanced_with_detected_or_last_landmarks(portrait, short_speech, caplog) -> None:
    photo, box = portrait
    preprocessor = LandmarkedBoxPreprocessor()
    pipe = _pipeline(small_enhancer(), preprocessor)
    source = preprocessor.prepare(photo, "crop", 256, face_box=box)
    preprocessor.landmarker = EveryOtherFrameLandmarker(source_landmarks_in_frame(source, (256, 256)))
    with caplog.at_level(logging.INFO, logger="tavce.pipeline"):
        enhanced = _frames(pipe, source, short_speech)
    assert f"enhanced {FRAMES}/{FRAMES} frames ({FRAMES // 2} with detected landmarks)" in caplog.text
    plain = _frames(pipe, source, short_speech, enhance=False)
    assert plain.shape == (FRAMES, 256, 256, 3) and enhanced.shape == (FRAMES, 512, 512, 3)
    for frame, enhanced_frame in zip(plain, enhanced):
        upscaled = cv2.resize(frame, (512, 512), interpolation=cv2.INTER_LANCZOS4)
        difference = np.abs(enhanced_frame.astype(int) - upscaled).max(-1)
        assert difference[:20, :20].max() == 0  # the background is the upscaled frame
        assert difference[200:300, 200:300].mean() > 5  # the face is restored
    np.testing.assert_array_equal(plain, _frames(_pipeline(), source, short_speech))


def test_full_mode_enhances_the_photo_sized_frames(portrait, short_speech) -> None:
    photo, box = portrait
    pipe = _pipeline(small_enhancer(upscale=1))
    frames = _frames(pipe, photo, short_speech, mode="full", face_box=box)
    plain = _frames(pipe, photo, short_speech, mode="full", face_box=box, enhance=False)
    assert frames.shape == plain.shape and not np.array_equal(frames, plain)


def test_enhance_true_without_an_enhancer_is_refused(portrait, short_speech) -> None:
    photo, box = portrait
    with pytest.raises(InvalidArgumentError, match="no enhancer.*enhancer='gfpgan'"):
        _pipeline()(photo, short_speech, face_box=box, enhance=True)
    with pytest.raises(InvalidArgumentError, match="enhance"):
        _pipeline()(photo, short_speech, face_box=box, enhance="maybe")


def test_save_and_load_keep_the_enhancer(portrait, short_speech, tmp_path) -> None:
    photo, box = portrait
    pipe = _pipeline(small_enhancer())
    pipe.save_pretrained(tmp_path / "weights")
    again = TalkingHeadPipeline.from_pretrained(tmp_path / "weights")
    assert isinstance(again.enhancer, FaceEnhancer) and again.enhancer.config == pipe.enhancer.config
    np.testing.assert_array_equal(
        _frames(again, photo, short_speech, face_box=box), _frames(pipe, photo, short_speech, face_box=box)
    )
    smaller = TalkingHeadPipeline.from_pretrained(tmp_path / "weights", enhancer="gfpgan", enhancer_upscale=1)
    assert smaller.enhancer.upscale == 1
    with pytest.raises(InvalidArgumentError, match="enhancer_upscale=3"):
        TalkingHeadPipeline.from_pretrained(tmp_path / "weights", enhancer_upscale=3)
    with pytest.raises(InvalidArgumentError, match="unknown enhancer"):
        TalkingHeadPipeline.from_pretrained(tmp_path / "weights", enhancer="codeformer")


def test_gfpgan_by_name_needs_weights(tiny_weights) -> None:
    with pytest.raises(WeightsNotFoundError, match="enhancer_weights="):
        TalkingHeadPipeline.from_pretrained(tiny_weights, enhancer="gfpgan")


def _generate(weights: Path, portrait, speech: Path, output: Path, *extra: str) -> int:
    photo, box = portrait
    face_box = ",".join(f"{value:.2f}" for value in box)
    return main(
        ["generate", str(photo), str(speech), "-o", str(output), "--weights", str(weights), "--face-box", face_box,
         "--no-progress", "--device", "cpu", "--seed", "0", *extra]
    )


def test_cli_enhancer_doubles_the_video_or_keeps_its_size(tiny_weights, portrait, tmp_path, capsys) -> None:
    speech = tmp_path / "speech.wav"
    import soundfile

    soundfile.write(speech, speech_like(FRAMES / 25).samples, 16000)
    small_enhancer().save_pretrained(tmp_path / "enhancer")
    plain, doubled, same = tmp_path / "plain.mp4", tmp_path / "x2.mp4", tmp_path / "x1.mp4"
    assert _generate(tiny_weights, portrait, speech, plain) == 0
    assert "enhanced" not in capsys.readouterr().err
    assert _generate(
        tiny_weights, portrait, speech, doubled, "--enhancer", "gfpgan", "--enhancer-weights", str(tmp_path / "enhancer")
    ) == 0
    assert f"enhanced {FRAMES}/{FRAMES} frames" in capsys.readouterr().err
    assert _generate(
        tiny_weights, portrait, speech, same, "--enhancer", "gfpgan", "--enhancer-weights", str(tmp_path / "enhancer"),
        "--enhancer-upscale", "1",
    ) == 0
    height, width = iio.imread(plain).shape[1:3]
    assert iio.imread(doubled).shape[1:3] == (2 * height, 2 * width)
    assert iio.imread(same).shape[1:3] == (height, width)
    assert "Audio: aac" in probe(doubled)
    assert _generate(tiny_weights, portrait, speech, tmp_path / "never.mp4", "--enhancer-upscale", "1") == 2
