"""The scripts in examples/ run as written (subprocesses) on tiny weights and write the expected videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile

from tavce.types import SAMPLE_RATE
from tests.helpers import PHOTO_SIZE, speech_like

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = REPOSITORY / "examples"


def _speech(path: Path, seconds: float) -> Path:
    soundfile.write(path, speech_like(seconds).samples, SAMPLE_RATE)
    return path


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.6 s of speech-like audio: 15 frames at 25 fps."""
    return _speech(tmp_path_factory.mktemp("audio") / "speech.wav", 0.6)


def _run(script: str, *arguments: object) -> subprocess.CompletedProcess:
    """Run examples/<script> with this interpreter and this checkout's tavce, offline."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]))
    environment.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=environment.get("OMP_NUM_THREADS", "1"))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, arguments)],
        capture_output=True, text=True, env=environment, timeout=300,
    )


def _box(portrait) -> str:
    return ",".join(f"{value:.2f}" for value in portrait[1])


def _frames_and_size(path: Path) -> tuple[int, tuple[int, int]]:
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    reader = imageio_ffmpeg.read_frames(str(path))
    size = tuple(next(reader)["size"])
    reader.close()
    return frames, size


def test_quickstart(tiny_weights: Path, portrait, short_speech: Path, tmp_path: Path) -> None:
    output = tmp_path / "talking.mp4"
    run = _run(
        "quickstart.py", portrait[0], short_speech, "-o", output, "--weights", tiny_weights,
        "--face-box", _box(portrait), "--mode", "full", "--still", "--seed", "0", "--device", "cpu",
    )
    assert run.returncode == 0, run.stderr
    assert _frames_and_size(output) == (15, PHOTO_SIZE)  # full mode: the whole photo
    assert f"wrote {output}" in run.stderr


def test_quickstart_reports_errors_in_one_line(tiny_weights: Path, portrait, short_speech, tmp_path: Path) -> None:
    run = _run("quickstart.py", portrait[0], short_speech, "-o", tmp_path / "talking.mp3", "--weights", tiny_weights)
    assert run.returncode == 2
    assert "talking.mp3: output must be an .mp4 file" in run.stderr and "Traceback" not in run.stderr


def test_custom_component(tiny_weights: Path, portrait, short_speech: Path, tmp_path: Path) -> None:
    output, saved = tmp_path / "custom.mp4", tmp_path / "custom-weights"
    run = _run(
        "custom_component.py", portrait[0], short_speech, "-o", output, "--weights", tiny_weights,
        "--face-box", _box(portrait), "--head-motion", "0", "--save-weights", saved, "--seed", "1",
    )
    assert run.returncode == 0, run.stderr
    assert _frames_and_size(output) == (15, (256, 256))  # SquareVideoPreprocessor: no aspect restore
    assert "largest head rotation from the first frame: 0.0 degrees" in run.stderr  # CalmAudio2Coeff took effect
    assert (
        "loads back with preprocessor=SquareVideoPreprocessor, audio2coeff=CalmAudio2Coeff, "
        "renderer=ColourMatchedRenderer, metric=SmoothedTAVCMetric, audio encoder=NoiseGatedAudioEncoder; "
        "head_motion_scale=0.0"
    ) in run.stderr
    components = json.loads((saved / "pipeline_config.json").read_text())["components"]
    assert components == {
        "preprocessor": "__main__:SquareVideoPreprocessor",
        "audio2coeff": "__main__:CalmAudio2Coeff",
        "renderer": "__main__:ColourMatchedRenderer",
        "metric": "__main__:SmoothedTAVCMetric",
    }
    audio2coeff = json.loads((saved / "audio2coeff" / "config.json").read_text())
    assert audio2coeff["config"]["head_motion_scale"] == 0.0
    assert audio2coeff["slots"]["expression_audio_encoder"]["config"]["gate_level"] == -3.0
    assert json.loads((saved / "metric" / "config.json").read_text())["config"]["smoothing_frames"] == 3


def test_batch_folder(tiny_weights: Path, portrait, tmp_path: Path) -> None:
    photos, clips, videos = (tmp_path / name for name in ("photos", "clips", "videos"))
    photos.mkdir(), clips.mkdir()
    photo = iio.imread(portrait[0])
    iio.imwrite(photos / "first.png", photo)
    iio.imwrite(photos / "second.jpg", np.clip(photo.astype(int) + 30, 0, 255).astype(np.uint8))  # same face place
    _speech(clips / "short.wav", 0.4)  # 10 frames
    _speech(clips / "longer.flac", 0.6)  # 15 frames
    run = _run(
        "batch_folder.py", photos, clips, "-o", videos, "--weights", tiny_weights,
        "--face-box", _box(portrait), "--seed", "0", "--batch-size", "8",
    )
    assert run.returncode == 0, run.stderr
    expected = {"short": 10, "longer": 15}
    for photo_name in ("first", "second"):
        for clip_name, frames in expected.items():
            count, (width, _) = _frames_and_size(videos / f"{photo_name}__{clip_name}.mp4")
            assert (count, width) == (frames, 256)  # crop mode: 256 wide, height from the crop's aspect
    assert run.stderr.count(": preparing") == 2  # once per photo, not once per video
    assert sorted(path.name for path in videos.glob("*.prepared.safetensors")) == [
        "first.crop.prepared.safetensors", "second.crop.prepared.safetensors"
    ]

    again = _run("batch_folder.py", photos, clips, "-o", videos, "--weights", tiny_weights)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(": reusing") == 2 and ": preparing" not in again.stderr
    assert "wrote 0 video(s)" in again.stderr


def test_enhance(tiny_weights: Path, portrait, short_speech: Path, tmp_path: Path) -> None:
    from tests.models.test_enhancer import small_enhancer

    small_enhancer().save_pretrained(tmp_path / "enhancer")
    output = tmp_path / "enhanced.mp4"
    run = _run(
        "enhance.py", portrait[0], short_speech, tmp_path / "enhancer", "-o", output, "--weights", tiny_weights,
        "--face-box", _box(portrait), "--compare",
    )
    assert run.returncode == 0, run.stderr
    frames, size = _frames_and_size(output)
    plain_frames, plain_size = _frames_and_size(output.with_suffix(".plain.mp4"))
    assert frames == plain_frames == 15 and size == (2 * plain_size[0], 2 * plain_size[1])
    assert "enhanced 15/15 frames" in run.stderr
