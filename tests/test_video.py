"""VideoWriter: frame count, duration, audio stream, odd sizes, atomicity, early path checks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile

from tavce.errors import InvalidArgumentError, OutputError
from tavce.types import SAMPLE_RATE
from tavce.video import VideoWriter, check_output_path, write_video
from tests.helpers import probe, speech_like


def synthetic_frames(count: int, height: int, width: int):
    for index in range(count):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[..., 0] = (index * 9) % 256
        frame[:, : width // 2, 1] = 200
        yield frame


def test_frames_duration_and_audio_stream(tmp_path: Path) -> None:
    destination = tmp_path / "talk.mp4"
    with VideoWriter(destination, audio=speech_like(1.5)) as writer:  # audio longer than the video
        for frame in synthetic_frames(30, 64, 48):
            writer.write(frame)
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(destination))
    assert frames == 30
    assert abs(seconds - 30 / 25) <= 1 / 25
    streams = probe(destination)
    assert re.search(r"Video: h264.*yuv420p.*48x64", streams)
    assert re.search(r"Audio: aac.*16000 Hz", streams)
    audio_duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", streams)
    assert audio_duration and abs(float(audio_duration.group(3)) - 1.2) <= 1 / 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]


def test_odd_size_is_padded_by_one_pixel_and_original_audio_file(tmp_path: Path) -> None:
    original = tmp_path / "speech.wav"
    soundfile.write(original, np.repeat(speech_like(1.0).samples[:, None], 2, axis=1), SAMPLE_RATE)
    destination = write_video(tmp_path / "odd.mp4", synthetic_frames(10, 33, 45), audio=original)
    assert imageio_ffmpeg.count_frames_and_secs(str(destination))[0] == 10
    streams = probe(destination)
    assert "46x34" in streams and "Audio: aac" in streams and "stereo" in streams
    reader = imageio_ffmpeg.read_frames(str(destination))
    meta = next(reader)
    first = np.frombuffer(next(reader), dtype=np.uint8).reshape(34, 46, 3)
    reader.close()
    assert meta["size"] == (46, 34)
    assert abs(int(first[:, 5, 1].mean()) - 200) < 8  # left half green survived the encode


def test_no_audio(tmp_path: Path) -> None:
    destination = write_video(tmp_path / "silent.mp4", synthetic_frames(5, 16, 16))
    assert imageio_ffmpeg.count_frames_and_secs(str(destination))[0] == 5
    assert "Audio:" not in probe(destination)


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_nothing(tmp_path: Path, interruption: type[BaseException]) -> None:
    destination = tmp_path / "broken.mp4"
    with pytest.raises(interruption):
        with VideoWriter(destination, audio=speech_like(1.0)) as writer:
            for index, frame in enumerate(synthetic_frames(20, 32, 32)):
                writer.write(frame)
                if index == 10:
                    assert any(tmp_path.iterdir())  # the temporary workspace exists while writing
                    encoder_pid = writer._encoder.pid
                    raise interruption("stop")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ProcessLookupError):  # the encoder was killed and reaped
        os.kill(encoder_pid, 0)


def test_no_frames_and_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4"):
            pass
    with pytest.raises(InvalidArgumentError, match="uint8"):
        with VideoWriter(tmp_path / "float.mp4") as writer:
            writer.write(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="first was"):
        write_video(tmp_path / "sizes.mp4", [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_output_path_is_checked_before_anything(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "ok.mp4") == tmp_path / "ok.mp4"
    with pytest.raises(OutputError, match=r"\.mp4"):
        VideoWriter(tmp_path / "out.avi")
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "out.mp4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "file" / "out.mp4")
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(OutputError, match="existing folder"):
        check_output_path(tmp_path / "folder.mp4")
    with pytest.raises(InvalidArgumentError, match="not a file"):
        VideoWriter(tmp_path / "out.mp4", audio=tmp_path / "absent.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            check_output_path(locked / "out.mp4")
    finally:
        locked.chmod(0o700)


def test_read_only_filesystem_is_reported() -> None:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc")
    with pytest.raises(OutputError, match="cannot write"):
        check_output_path("/proc/out.mp4")
