"""``tavce generate`` on tiny weights: the same video as the Python API, clear errors, --help."""

from __future__ import annotations

import re
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from tavce.cli import main
from tests.helpers import probe


def _generate(weights: Path, portrait, speech: Path, output: Path, *extra: str) -> int:
    photo, box = portrait
    face_box = ",".join(f"{value:.2f}" for value in box)
    return main(
        ["generate", str(photo), str(speech), "-o", str(output), "--weights", str(weights),
         "--face-box", face_box, "--no-progress", "--device", "cpu", *extra]
    )


def test_cli_writes_the_video_the_api_makes(tiny_weights: Path, portrait, speech: Path, tmp_path: Path) -> None:
    from tavce import TalkingHeadPipeline

    output = tmp_path / "cli.mp4"
    assert _generate(tiny_weights, portrait, speech, output, "--seed", "3", "--batch-size", "5") == 0
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(output))
    assert frames == 30 and re.search(r"Audio: aac", probe(output))

    photo, box = portrait
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights)
    api = pipe(photo, speech, face_box=box, seed=3, batch_size=5, progress=False).save(tmp_path / "api.mp4")
    decoded_cli, decoded_api = iio.imread(output), iio.imread(api)
    np.testing.assert_array_equal(decoded_cli, decoded_api)


def test_cli_full_mode_output_has_photo_size(tiny_weights: Path, portrait, speech: Path, tmp_path: Path) -> None:
    output = tmp_path / "full.mp4"
    assert _generate(tiny_weights, portrait, speech, output, "--mode", "full", "--still", "--seed", "0") == 0
    assert "320x240" in probe(output)


def test_cli_errors_are_one_line_and_leave_no_file(
    tiny_weights: Path, portrait, speech: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "never.mp4"
    assert _generate(tiny_weights, portrait, tmp_path / "missing.wav", output) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("tavce generate: error:") and "missing.wav" in message
    assert _generate(tiny_weights, portrait, speech, output, "--pose-style", "99") == 2
    assert "pose" in capsys.readouterr().err
    assert _generate(tiny_weights, portrait, speech, output, "--dtype", "float16") == 2
    assert "float16" in capsys.readouterr().err
    assert not output.exists()


def test_generate_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--weights", "--mode", "--size", "--still", "--pose-style", "--expression-scale", "--seed",
                   "--face-box", "--device", "--dtype", "--batch-size", "--offline", "--no-blink"):
        assert re.search(rf"{option}\b[^\n]*\n?\s+\S", text), option
