"""Video input: frames at 25 fps from any rate, the audio track at 16 kHz, load_audio of video/m4a files, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile

from tavce.audio import load_audio
from tavce.errors import InvalidAudioError, InvalidVideoError
from tavce.types import SAMPLE_RATE
from tavce.video import VideoWriter
from tavce.video_reader import VideoReader, read_video

# Grey level = LEVEL_BASE + index·LEVEL_STEP, so a decoded frame tells which source frame it shows
# (the base keeps levels clear of the black clipping of the yuv420p round trip).
LEVEL_BASE, LEVEL_STEP = 32, 3


def _counting_video(path: Path, fps: int, seconds: float, audio: Path | None = None) -> Path:
    with VideoWriter(path, fps=fps, audio=audio, crf=0) as writer:  # lossless: levels survive exactly
        for index in range(round(fps * seconds)):
            writer.write(np.full((48, 64, 3), LEVEL_BASE + index * LEVEL_STEP, np.uint8))
    return writer.path


def _source_index(frame: np.ndarray) -> int:
    return round(float(frame.mean() - LEVEL_BASE) / LEVEL_STEP)


def _tone_wav(path: Path, rate: int, seconds: float) -> Path:
    time = np.arange(round(rate * seconds)) / rate
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 440 * time) * np.sin(np.pi * time / seconds), rate)
    return path


def test_30_fps_is_resampled_to_25_by_timestamp(tmp_path: Path) -> None:
    video = _counting_video(tmp_path / "thirty.mp4", fps=30, seconds=2.0)
    with VideoReader(video) as reader:
        assert reader.info.source_fps == pytest.approx(30.0)
        indices = [_source_index(frame) for frame in reader]
    assert len(indices) == 50
    # Output frame k shows the source frame nearest to its time k/25 s: index k·30/25, to within one frame.
    expected = np.arange(50) * 30 / 25
    assert np.abs(np.array(indices) - expected).max() <= 1
    assert indices[0] == 0 and np.all(np.diff(indices) >= 1)  # every 6th source frame dropped, none repeated


def test_12_fps_repeats_frames_and_size_resizes(tmp_path: Path) -> None:
    video = _counting_video(tmp_path / "twelve.mp4", fps=12, seconds=1.0)
    clip = read_video(video, size=(32, 24), audio=False)
    assert clip.frames.shape == (25, 24, 32, 3) and clip.frames.dtype == np.uint8
    indices = [_source_index(frame) for frame in clip.frames]
    assert sorted(indices) == indices and set(indices) == set(range(12))  # each source frame shown ~twice


def test_audio_track_is_16k_mono_whatever_its_rate(tmp_path: Path) -> None:
    wav = _tone_wav(tmp_path / "tone.wav", 44_100, 1.0)
    video = _counting_video(tmp_path / "with_audio.mp4", fps=25, seconds=1.0, audio=wav)
    clip = read_video(video)
    assert clip.frames.shape[0] == 25
    assert clip.audio is not None and clip.audio.samples.dtype == np.float32
    assert abs(len(clip.audio.samples) - SAMPLE_RATE) <= 64  # 1 s (AAC frames round the end by a few samples)
    direct = load_audio(wav).samples
    overlap = min(len(direct), len(clip.audio.samples))
    assert np.corrcoef(direct[:overlap], clip.audio.samples[:overlap])[0, 1] > 0.95  # same sound, lossy codec


def test_load_audio_reads_mp4_and_m4a(tmp_path: Path) -> None:
    wav = _tone_wav(tmp_path / "tone.wav", 22_050, 1.0)
    m4a = tmp_path / "tone.m4a"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True
    )
    video = _counting_video(tmp_path / "clip.mp4", fps=25, seconds=1.0, audio=wav)
    for source in (m4a, video, video.open("rb")):
        clip = load_audio(source)
        assert abs(len(clip.samples) - SAMPLE_RATE) <= 1100  # m4a keeps AAC's padding (≤ one 1024-sample frame)
        assert 0.2 < np.abs(clip.samples).max() < 0.6


def test_bad_videos_raise_clear_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video" * 100)
    with pytest.raises(InvalidVideoError, match="corrupt.mp4: cannot be read as a video"):
        read_video(corrupt)
    with pytest.raises(InvalidVideoError, match="not found"):
        read_video(tmp_path / "absent.mp4")
    with pytest.raises(InvalidVideoError, match="no video stream"):
        read_video(_tone_wav(tmp_path / "only_audio.wav", 16_000, 0.5))
    silent = _counting_video(tmp_path / "silent.mp4", fps=25, seconds=0.4)
    with pytest.raises(InvalidAudioError, match="silent.mp4: has no audio track"):
        read_video(silent)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(silent.read_bytes()[: silent.stat().st_size // 2])
    with pytest.raises(InvalidAudioError, match="truncated.mp4: cannot be decoded"):
        load_audio(truncated)
