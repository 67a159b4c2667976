"""Names and files from strangers: batch job files and web-app uploads attacked; each refused, nothing escapes.

Hostile batch rows are refused while the jobs are planned, so no worker starts; hostile
uploads are refused by the web app's handler before any model work (its pipeline is
never touched, so none is loaded here).
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from tavce.audio import load_audio
from tavce.batch import run_batch
from tavce.commands.demo import add_arguments
from tavce.demo.handler import GenerateHandler
from tavce.demo.limits import DemoLimits
from tavce.errors import InvalidAudioError, InvalidImageError
from tavce.image import load_image
from tavce.types import SAMPLE_RATE
from tests.reliability.conftest import files_under, run_python


@pytest.fixture
def inputs(tmp_path: Path, real_portraits, short_speech) -> dict[str, Path]:
    return {"image": real_portraits[0], "audio": short_speech}


def _hostile_outputs(outside: Path) -> dict[str, str]:
    """Output name -> what the refusal says."""
    return {
        "../escape.mp4": "'..' and '.' are not allowed",
        "sub/../../escape.mp4": "'..' and '.' are not allowed",
        str(outside / "absolute.mp4"): "not an absolute path",
        "~/home.mp4": "not an absolute path",
        "C:/drive.mp4": "not an absolute path",
        "nul\x00byte.mp4": "NUL bytes",
        "..\\backslash.mp4": "backslashes are not allowed",
        "CON.mp4": "reserved or hidden name",
        "lpt1.mp4": "reserved or hidden name",
        ".hidden.mp4": "reserved or hidden name",
        "results.jsonl": "the batch's own log",
        "not-a-video.sh": "must end in .mp4",
        "link/through-symlink.mp4": "leads outside",
    }


def test_batch_refuses_every_output_name_that_leaves_the_output_folder(tmp_path, inputs):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside)  # a symbolic link planted in the output folder
    hostile = _hostile_outputs(outside)
    job_file = tmp_path / "jobs.jsonl"
    job_file.write_text("".join(json.dumps({**{k: str(v) for k, v in inputs.items()}, "output": name}) + "\n"
                                for name in hostile))  # fmt: skip

    report = run_batch(job_file, out, progress=False)  # all refused: no worker is started, no weights loaded
    assert [record["status"] for record in report.records] == ["failed"] * len(hostile)
    for record, (name, reason) in zip(report.records, hostile.items()):
        assert record["error_type"] == "InvalidArgumentError" and reason in record["error"], (name, record["error"])
        assert "\n" not in record["error"]
    assert files_under(outside) == []
    assert files_under(tmp_path) == sorted(["jobs.jsonl", "out", "out/link", "out/results.jsonl", "outside"])


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` (a decompression bomb's declared size), no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def handler(tmp_path: Path) -> GenerateHandler:
    limits = DemoLimits(max_audio_seconds=2.0, max_image_pixels=4_000_000, max_upload_megabytes=1.0)
    return GenerateHandler(pipe=None, limits=limits, output_folder=tmp_path / "results")  # never reached


def _refusal(handler, portrait: Path, speech: Path, error: type[Exception]) -> str:
    with pytest.raises(error) as caught:
        handler(portrait, speech, {})
    message = str(caught.value)
    assert "\n" not in message and str(portrait.parent) not in message, "uploads are named, server paths not"
    return message


def test_web_app_refuses_hostile_uploads_before_any_work(handler, tmp_path, inputs):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    portrait, speech = inputs["image"], inputs["audio"]

    bomb = uploads / "bomb.png"  # 100 000 x 100 000 pixels declared in a 60-byte file
    bomb.write_bytes(_png_declaring(100_000, 100_000))
    assert "bomb.png" in _refusal(handler, bomb, speech, InvalidImageError)

    big = uploads / "big.png"  # over the page's pixel limit, though not a bomb for Pillow
    Image.new("RGB", (2500, 2000)).save(big)
    assert "big.png" in _refusal(handler, big, speech, InvalidImageError)

    huge = uploads / "huge.wav"  # over the upload size limit
    soundfile.write(huge, np.zeros(SAMPLE_RATE * 40, np.float32), SAMPLE_RATE)
    assert "1 MiB" in _refusal(handler, portrait, huge, InvalidAudioError)

    long_speech = uploads / "long.flac"  # small file, long clip: refused from its header, before decoding
    soundfile.write(long_speech, np.zeros(SAMPLE_RATE * 30, np.float32), SAMPLE_RATE)
    assert long_speech.stat().st_size < 1 << 20
    assert "30.0 s long" in _refusal(handler, portrait, long_speech, InvalidAudioError)

    lying_image = uploads / "speech.png"  # a WAV named .png
    lying_image.write_bytes(speech.read_bytes())
    assert "speech.png" in _refusal(handler, lying_image, speech, InvalidImageError)

    lying_audio = uploads / "photo.wav"  # a JPEG named .wav
    lying_audio.write_bytes(portrait.read_bytes())
    assert "photo.wav" in _refusal(handler, portrait, lying_audio, InvalidAudioError)

    assert not (tmp_path / "results").exists(), "nothing was written for a refused request"


def test_library_loaders_refuse_bombs_and_lying_files(tmp_path, inputs):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(100_000, 100_000))
    with pytest.raises(InvalidImageError, match="bomb.png"):
        load_image(bomb)
    lying = tmp_path / "photo.wav"
    lying.write_bytes(inputs["image"].read_bytes())
    with pytest.raises(InvalidAudioError, match="photo.wav"):
        load_audio(lying)


def test_web_app_listens_on_this_machine_only_unless_told():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).host == "127.0.0.1" and not parser.parse_args([]).share
    assert parser.parse_args(["--host", "0.0.0.0"]).host == "0.0.0.0"


MEASURE_LOAD = """
import sys
from pathlib import Path
from tavce.audio import load_audio
from tavce.errors import InvalidAudioError

def status_kib(field):
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])

limit = None if sys.argv[2] == "none" else float(sys.argv[2])
load_audio(sys.argv[3])  # the decoder's imports and buffers first, so only the long clip is measured
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from the resident size now
before = status_kib("VmRSS")
try:
    load_audio(sys.argv[1], max_seconds=limit)
    print("loaded")
except InvalidAudioError as error:
    print(error)
print((status_kib("VmHWM") - before) // 1024)
"""


@pytest.mark.slow
def test_long_compressed_speech_is_refused_without_decoding_all_of_it(tmp_path):
    """AAC has no header libsndfile reads: the length shows only while decoding, so ffmpeg stops just past the limit."""
    import imageio_ffmpeg

    long_speech = tmp_path / "long.m4a"  # 4 minutes of 48 kHz stereo in ~1 MB: 88 MiB of float32 samples
    short_speech = tmp_path / "short.m4a"
    for path, seconds in ((long_speech, 240), (short_speech, 1)):
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000",
             "-ac", "2", "-t", str(seconds), "-c:a", "aac", "-b:a", "16k", str(path)], check=True,
        )  # fmt: skip
    limited = run_python("-c", MEASURE_LOAD, str(long_speech), "2", str(short_speech))
    message, limited_mib = limited.stdout.splitlines()
    assert message == f"{long_speech}: the audio is longer than 2 s; at most 2 s is accepted here. Cut the clip or split it"
    unlimited = run_python("-c", MEASURE_LOAD, str(long_speech), "none", str(short_speech))
    assert unlimited.stdout.splitlines()[0] == "loaded"
    assert int(limited_mib) * 10 < int(unlimited.stdout.splitlines()[1]), (limited_mib, unlimited.stdout)
