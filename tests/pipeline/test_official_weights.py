"""End to end at full size: official-layout files (recipe weights) -> a real photo and speech -> mp4.

Slow (about 10 s per frame on a 2-core CPU, plus ~1.5 GB of checkpoint files written
once per module): run with ``python -m pytest -q -m slow tests/pipeline/test_official_weights.py``.
The weights are :func:`tavce.testing.make_official_checkpoint`'s deterministic recipe at
the official shapes, so the video shows no face; what is checked is that the real files'
layout converts, loads and renders, with the real crop and audio paths, CERL on and off.
Add ``-o log_cli=true -o log_cli_level=INFO`` to see the seconds per frame.

Inputs come from ``../shared/media`` (next to the repository); the tests skip without it.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile
import torch

from tavce import TalkingHeadPipeline
from tavce.testing import make_official_checkpoint
from tavce.types import AudioRelationship
from tests.helpers import probe

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

MEDIA = Path(__file__).resolve().parents[2] / ".." / "shared" / "media"
PHOTO = MEDIA / "art_1.png"  # 512x512 painted frontal portrait
SPEECH = MEDIA / "RD_Radio31_000.wav"  # 16 kHz stereo English speech, 8 s
# dlib's HOG detector finds this one face in art_1.png at (136, 108, 394, 366); giving the
# box skips detection (its 68 landmarks span x 129..387, y 143..388).
ART_1_FACE_BOX = (136.0, 108.0, 394.0, 366.0)
SADTALKER_FILES = ("SadTalker_V0.0.2_256.safetensors", "mapping_00229-model.pth.tar", "mapping_00109-model.pth.tar")
TAVCE_CORRELATION = "tavce_correlation_epoch_N.pth"
TAVCE_FACERENDER = "tavce_facerender_latest.pth"


@pytest.fixture(scope="module")
def official_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (PHOTO.is_file() and SPEECH.is_file()):
        pytest.skip(f"sample media not found in {MEDIA.resolve()}")
    folder = tmp_path_factory.mktemp("official")
    make_official_checkpoint(folder, files=SADTALKER_FILES + (TAVCE_CORRELATION, TAVCE_FACERENDER))
    return folder


@pytest.fixture(scope="module")
def landmarker():
    from tavce.errors import WeightsNotFoundError
    from tavce.preprocess.landmarks import DlibLandmarker, LandmarkerError

    try:
        return DlibLandmarker()
    except (LandmarkerError, WeightsNotFoundError) as error:
        pytest.skip(f"dlib landmark predictor unavailable: {error}")


def _speech_cut(folder: Path, seconds: float) -> Path:
    """The first ``seconds`` of the sample speech, at its own rate and channel count."""
    samples, rate = soundfile.read(SPEECH, frames=round(seconds * soundfile.info(SPEECH).samplerate))
    path = folder / f"speech_{seconds:g}s.wav"
    soundfile.write(path, samples, rate)
    return path


def test_sadtalker_files_photo_and_speech_to_mp4(official_folder: Path, landmarker, tmp_path: Path) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(official_folder, local_files_only=True, landmarker=landmarker)
    assert not pipe.has_cerl and pipe.size == 256
    audio = _speech_cut(tmp_path, 2.03)
    expected = math.floor(soundfile.info(audio).duration * 25)  # ⌊2.03 · 25⌋ = 50

    planned = time.perf_counter()
    result = pipe(PHOTO, audio, face_box=ART_1_FACE_BOX, seed=0, progress=False)
    rendering = time.perf_counter()
    path = result.save(tmp_path / "art_1.mp4")
    finished = time.perf_counter()
    logger.info(
        "full size on CPU (%d threads): plan %.1f s, render + encode %d frames %.1f s = %.2f s/frame",
        torch.get_num_threads(), rendering - planned, expected, finished - rendering,
        (finished - rendering) / expected,
    )

    assert result.num_frames == expected == 50
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames == expected and seconds == pytest.approx(expected / 25, abs=0.05)
    assert re.search(r"Audio: aac", probe(path))


def test_tavce_files_render_with_cerl(official_folder: Path, landmarker, tmp_path: Path) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(
        official_folder,
        local_files_only=True,
        tavce_correlation=official_folder / TAVCE_CORRELATION,
        tavce_facerender=official_folder / TAVCE_FACERENDER,
        landmarker=landmarker,
    )
    assert pipe.has_cerl and pipe.metric is not None
    result = pipe(PHOTO, _speech_cut(tmp_path, 0.24), face_box=ART_1_FACE_BOX, seed=0, progress=False, batch_size=3)
    differences = result.relationship.differences
    assert result.num_frames == 6 and differences.shape == (6, 128)
    assert torch.count_nonzero(differences[0]) == 0 and torch.count_nonzero(differences[1:]) > 0

    path = result.save(tmp_path / "cerl.mp4")
    assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == 6 and re.search(r"Audio: aac", probe(path))

    # The relationship reaches the frames: without it (zero differences) frames 1 and 2 change.
    with_relationship = np.stack(list(itertools.islice(result.frames, 3)))
    result.relationship = AudioRelationship(torch.zeros_like(differences))
    without = np.stack(list(itertools.islice(result.frames, 3)))
    assert np.abs(with_relationship[0].astype(int) - without[0].astype(int)).max() <= 1  # frame 0: d = 0 in both
    assert not np.array_equal(with_relationship[1:], without[1:])
