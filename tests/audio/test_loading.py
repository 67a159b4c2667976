"""load_audio: formats, sample types, channel counts, rates, and every bad-input error."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from tavce.audio import load_audio
from tavce.errors import InvalidAudioError
from tavce.types import SAMPLE_RATE, AudioClip


def tone(rate: int, seconds: float = 0.5, frequency: float = 440.0, channels: int = 1) -> np.ndarray:
    """(N, channels) float32 sine, channel c scaled by (c + 1) / channels."""
    time = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * frequency * time)
    scales = (np.arange(channels) + 1) / channels
    return (wave[:, np.newaxis] * scales).astype(np.float32)


@pytest.mark.parametrize(
    ("extension", "subtype"), [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_16"), ("ogg", "VORBIS")]
)
def test_formats_decode_to_16k_mono_float32(tmp_path: Path, extension: str, subtype: str) -> None:
    samples = tone(SAMPLE_RATE)
    path = tmp_path / f"speech.{extension}"
    soundfile.write(path, samples, SAMPLE_RATE, subtype=subtype)
    clip = load_audio(path)
    assert isinstance(clip, AudioClip) and clip.samples.dtype == np.float32
    assert clip.source == str(path)
    assert len(clip.samples) == len(samples)
    tolerance = {"PCM_16": 1 / 32768, "FLOAT": 0.0, "VORBIS": 0.02}[subtype]
    assert np.abs(clip.samples - samples[:, 0]).max() <= tolerance


def test_int16_is_scaled_like_libsndfile(tmp_path: Path) -> None:
    pcm = np.array([0, 16384, -32768, 32767] * 200, dtype=np.int16)
    path = tmp_path / "int16.wav"
    soundfile.write(path, pcm, SAMPLE_RATE, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(path).samples, pcm.astype(np.float32) / 32768)
    np.testing.assert_array_equal(load_audio(pcm, sample_rate=SAMPLE_RATE).samples, pcm / np.float32(32768))


@pytest.mark.parametrize("channels", [2, 5])
def test_channels_are_averaged(tmp_path: Path, channels: int) -> None:
    samples = tone(SAMPLE_RATE, channels=channels)
    path = tmp_path / "multi.wav"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path).samples, samples.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_rates_are_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    seconds = 0.25
    path = tmp_path / "rate.wav"
    soundfile.write(path, tone(rate, seconds), rate, subtype="FLOAT")
    clip = load_audio(path)
    assert len(clip.samples) == math.ceil(int(rate * seconds) * SAMPLE_RATE / rate)
    # Away from the edges the kaiser_best resampler reproduces the 440 Hz tone at 16 kHz.
    expected = tone(SAMPLE_RATE, seconds)[:, 0]
    middle = slice(400, len(expected) - 400)
    assert np.abs(clip.samples[middle] - expected[middle]).max() < 1e-3


def test_file_object_array_and_tensor_sources(tmp_path: Path) -> None:
    samples = tone(SAMPLE_RATE, channels=2)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="FLAC")
    buffer.seek(0)
    from_file = load_audio(buffer)
    from_array = load_audio(samples, sample_rate=SAMPLE_RATE)
    from_tensor = load_audio(torch.from_numpy(samples[:, 0].copy()), sample_rate=SAMPLE_RATE)
    np.testing.assert_allclose(from_file.samples, from_array.samples, atol=1 / 32768)
    np.testing.assert_array_equal(from_tensor.samples, samples[:, 0])
    assert load_audio(tone(48000), sample_rate=48000).samples.shape == (8000,)


def test_silence_is_valid() -> None:
    clip = load_audio(np.zeros(640, dtype=np.float32), sample_rate=SAMPLE_RATE)
    assert clip.num_frames == 1 and not clip.samples.any()


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _write_truncated(tmp_path: Path, extension: str) -> Path:
    path = tmp_path / f"truncated.{extension}"
    soundfile.write(path, tone(SAMPLE_RATE, 1.0), SAMPLE_RATE)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    ("make_source", "problem"),
    [
        (lambda tmp: tmp / "absent.wav", "not found"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: _write_bytes(tmp / "empty.wav", b""), "empty"),
        (lambda tmp: _write_bytes(tmp / "text.wav", b"hello " * 100), "cannot be decoded"),
        (lambda tmp: _write_truncated(tmp, "wav"), "truncated"),
        (lambda tmp: _write_truncated(tmp, "flac"), "truncated"),
        (lambda tmp: _write_truncated(tmp, "ogg"), "truncated"),
    ],
    ids=["missing", "folder", "empty", "not-audio", "truncated-wav", "truncated-flac", "truncated-ogg"],
)
def test_bad_files_raise_invalid_audio(tmp_path: Path, make_source, problem: str) -> None:
    source = make_source(tmp_path)
    with pytest.raises(InvalidAudioError, match=problem) as caught:
        load_audio(source)
    assert str(source) in str(caught.value)


def test_too_short_after_resampling(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    soundfile.write(path, tone(48000, 0.0395), 48000)  # 1896 samples -> 632 at 16 kHz
    with pytest.raises(InvalidAudioError, match=r"short.wav.*shorter than one 25 fps video frame"):
        load_audio(path)


def test_non_finite_samples(tmp_path: Path) -> None:
    samples = tone(SAMPLE_RATE)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match="nan.wav.*NaN or infinite"):
        load_audio(path)
    samples[100] = np.inf
    with pytest.raises(InvalidAudioError, match="NaN or infinite"):
        load_audio(samples, sample_rate=SAMPLE_RATE)


def test_array_arguments_are_checked() -> None:
    with pytest.raises(InvalidAudioError, match="sample_rate"):
        load_audio(np.zeros(1000, dtype=np.float32))
    with pytest.raises(InvalidAudioError, match=r"\(N, channels\)"):
        load_audio(np.zeros((2, 1000), dtype=np.float32), sample_rate=SAMPLE_RATE)
    with pytest.raises(InvalidAudioError, match="integers or floats"):
        load_audio(np.array(["a"] * 1000), sample_rate=SAMPLE_RATE)
    with pytest.raises(InvalidAudioError, match="only for arrays"):
        load_audio("speech.wav", sample_rate=SAMPLE_RATE)


@pytest.mark.parametrize(
    ("name", "frames"),
    [("RD_Radio31_000.wav", 200), ("bus_chinese.wav", 84), ("chinese_poem1.wav", 136), ("speech_en.wav", 216)],
)
def test_sample_media(shared_media: Path, name: str, frames: int) -> None:
    clip = load_audio(shared_media / name)
    assert clip.num_frames == frames
    assert 0.01 < np.abs(clip.samples).max() <= 1.0
