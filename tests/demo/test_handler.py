"""The web app's request handler on tiny weights: videos, seeds, progress, limits and errors (no browser)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import resampy
import soundfile

from tavce.audio import load_audio
from tavce.demo.handler import GenerateHandler
from tavce.demo.limits import DemoLimits
from tavce.errors import FaceNotDetectedError, InvalidArgumentError, InvalidAudioError, InvalidImageError
from tavce.preprocess.landmarks import Face
from tavce.testing import face_landmarks
from tavce.types import SAMPLE_RATE, SAMPLES_PER_FRAME
from tests.helpers import probe, speech_like


class PortraitLandmarker:
    """Finds the face of the ``portrait`` fixture where it was drawn (no dlib); ``faces=False`` finds none."""

    name = "portrait-fixture"

    def __init__(self, faces: bool = True) -> None:
        self.faces = faces
        self.landmarks = face_landmarks((160, 125), 60)

    def detect(self, image: np.ndarray) -> list[Face]:
        if not self.faces:
            return []
        low, high = self.landmarks.min(axis=0), self.landmarks.max(axis=0)
        return [Face(box=(*low, *high), landmarks=self.landmarks, score=1.0)]

    def landmarks_in_box(self, image: np.ndarray, box) -> np.ndarray:
        return self.landmarks


@pytest.fixture
def pipe(tiny_weights: Path):
    from tavce import TalkingHeadPipeline

    pipeline = TalkingHeadPipeline.from_pretrained(tiny_weights)
    pipeline.preprocessor.landmarker = PortraitLandmarker()
    return pipeline


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.5 s of speech-like audio at 22.05 kHz: 12 frames, so that each request renders in a moment."""
    samples = resampy.resample(speech_like(0.5).samples, SAMPLE_RATE, 22050)
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    soundfile.write(path, samples, 22050)
    return path


@pytest.fixture
def handler(pipe, tmp_path: Path) -> GenerateHandler:
    return GenerateHandler(pipe, DemoLimits(), tmp_path / "results")


def _frames(video: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(video))[0]


def test_a_request_makes_the_video_with_audio_under_a_fresh_name(handler, portrait, speech, tmp_path) -> None:
    photo, _ = portrait
    progress: list[tuple[object, str]] = []
    video, seed = handler(
        photo, speech, {"mode": "crop", "pose_style": 3.0, "seed": "", "use_blink": True},
        lambda value, desc, unit="steps": progress.append((value, desc)),
    )
    expected_frames = len(load_audio(speech).samples) // SAMPLES_PER_FRAME
    assert _frames(video) == expected_frames
    assert re.search(r"Audio: aac", probe(video))
    assert video.parent == tmp_path / "results" and re.fullmatch(r"[0-9a-f]{32}\.mp4", video.name)
    assert 0 <= seed < 2**31
    rendering = [value for value, desc in progress if desc == "Rendering"]
    assert rendering[-1] == (expected_frames, expected_frames)
    assert [done for done, _ in rendering] == sorted(done for done, _ in rendering)

    again, same_seed = handler(photo, speech, {"seed": str(seed), "pose_style": "3"})
    assert same_seed == seed and again != video
    np.testing.assert_array_equal(iio.imread(video), iio.imread(again))


def test_form_values_are_validated_by_the_options_validator(handler, portrait, speech, tmp_path) -> None:
    photo, _ = portrait
    with pytest.raises(InvalidArgumentError, match=r"^the form: pose_style=99"):
        handler(photo, speech, {"pose_style": 99})
    with pytest.raises(InvalidArgumentError, match=r"^the form: .*face_box"):
        handler(photo, speech, {"face_box": "1,2,3"})
    assert not (tmp_path / "results").exists()


def test_missing_uploads_are_named(handler, portrait, speech) -> None:
    photo, _ = portrait
    with pytest.raises(InvalidImageError, match="no portrait"):
        handler(None, speech, {})
    with pytest.raises(InvalidAudioError, match="no speech"):
        handler(photo, None, {})


def test_limits_refuse_before_any_work_and_name_the_upload_not_its_server_path(
    pipe, portrait, speech, tmp_path
) -> None:
    photo, _ = portrait
    calls = []
    pipe.preprocessor.prepare = lambda *args, **kwargs: calls.append(args)  # no work may start

    def refused(error, pattern, **limits):
        handler = GenerateHandler(pipe, DemoLimits(**limits), tmp_path / "results")
        with pytest.raises(error, match=pattern) as raised:
            handler(photo, speech, {})
        assert str(photo.parent) not in str(raised.value) and str(speech.parent) not in str(raised.value)

    refused(InvalidAudioError, r"^speech\.wav: the speech is 0\.5 s long; this page renders up to 0\.4 s",
            max_audio_seconds=0.4)
    refused(InvalidImageError, r"^portrait\.png: .*76,799 pixels", max_image_pixels=320 * 240 - 1)
    refused(InvalidImageError, r"^portrait\.png: the file is .* MiB; this page accepts files up to",
            max_upload_megabytes=1e-4)
    assert calls == [] and not (tmp_path / "results").exists()


def test_audio_without_a_readable_header_is_measured_after_decoding(tmp_path) -> None:
    limits = DemoLimits(max_audio_seconds=1)
    clip = tmp_path / "speech.mp4"  # no header libsndfile reads: the check waits for the decoded clip
    clip.write_bytes(b"not audio")
    limits.check_audio_header(clip, "speech.mp4")
    with pytest.raises(InvalidAudioError, match="2.0 s long"):
        limits.check_audio_clip(load_audio(_wav(tmp_path / "two.wav", 2.0)), "speech.mp4")


def _wav(path: Path, seconds: float) -> Path:
    soundfile.write(path, np.zeros(int(16000 * seconds), dtype=np.float32), 16000)
    return path


def test_no_face_gives_the_tavce_message_and_the_next_request_works(handler, pipe, portrait, speech) -> None:
    photo, _ = portrait
    pipe.preprocessor.landmarker = PortraitLandmarker(faces=False)
    with pytest.raises(FaceNotDetectedError, match="no face found"):
        handler(photo, speech, {})
    pipe.preprocessor.landmarker = PortraitLandmarker()
    video, _ = handler(photo, speech, {})
    assert video.is_file()


def test_limits_must_be_positive() -> None:
    with pytest.raises(InvalidArgumentError, match="max_audio_seconds=0"):
        DemoLimits(max_audio_seconds=0)
    with pytest.raises(InvalidArgumentError, match="retention_seconds=nan"):
        DemoLimits(retention_seconds=float("nan"))


def test_concurrent_requests_get_their_own_videos(handler, portrait, speech) -> None:
    photo, _ = portrait
    results: dict[int, tuple[Path, int]] = {}
    start = threading.Barrier(2)

    def request(seed: int) -> None:
        start.wait()
        results[seed] = handler(photo, speech, {"seed": seed})

    threads = [threading.Thread(target=request, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [1, 2] and results[1][1] == 1 and results[2][1] == 2
    first, second = (iio.imread(results[seed][0]) for seed in (1, 2))
    assert results[1][0] != results[2][0] and first.shape == second.shape and not np.array_equal(first, second)
