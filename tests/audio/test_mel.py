"""Mel spectrogram: float64 path against the recorded golden intermediates, shapes and ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tavce.audio import amplitude_to_db, mel_basis, mel_spectrogram, normalize, preemphasis, stft_magnitude
from tavce.errors import InvalidArgumentError
from tests.golden.harness import GoldenCase

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"


def relative_error(ours: torch.Tensor, golden: torch.Tensor) -> float:
    return ((ours.double() - golden.double()).abs().max() / golden.double().abs().max()).item()


@pytest.mark.parametrize("case_name", ["mel_spectrogram", "mel_spectrogram_odd_length"])
def test_float64_path_matches_the_original_to_rounding(case_name: str) -> None:
    case = GoldenCase.load(GOLDEN, case_name)
    emphasized = preemphasis(case.inputs["wav"], dtype=torch.float64)
    magnitude = stft_magnitude(emphasized)
    mel_db = amplitude_to_db(mel_basis().double() @ magnitude)
    assert relative_error(emphasized, case.outputs["preemphasized"]) == 0.0
    assert relative_error(magnitude, case.outputs["stft_magnitude"]) < 1e-13
    assert relative_error(mel_db, case.outputs["mel_db"]) < 1e-12
    mel = mel_spectrogram(case.inputs["wav"], dtype=torch.float64)
    assert mel.dtype == torch.float64
    assert relative_error(mel, case.outputs["mel"]) < 1e-12
    assert torch.equal(normalize(mel_db), mel)


def test_mel_basis_is_slaney_shaped() -> None:
    basis = mel_basis()
    assert basis.shape == (80, 401) and basis.dtype == torch.float32
    bin_hz = 16000 / 800
    lowest = basis.nonzero()[:, 1].min().item()
    highest = basis.nonzero()[:, 1].max().item()
    assert 55 / bin_hz - 1 <= lowest <= 55 / bin_hz + 1 and 7600 / bin_hz - 1 <= highest <= 7600 / bin_hz + 1
    # Slaney normalisation: every triangle has unit area over frequency in Hz (up to the bin grid).
    areas = basis.double().sum(dim=1) * bin_hz
    assert torch.allclose(areas[20:], torch.ones(60, dtype=torch.float64), atol=0.05)


def test_shape_range_and_silence() -> None:
    waveform = np.random.default_rng(0).normal(0, 0.1, 16_123).astype(np.float32)
    mel = mel_spectrogram(waveform)
    assert mel.shape == (80, 1 + 16_123 // 200) and mel.dtype == torch.float32
    assert mel.min() >= -4 and mel.max() <= 4
    silence = mel_spectrogram(np.zeros(6400, dtype=np.float32))
    assert torch.equal(silence, torch.full((80, 33), -4.0))


def test_preemphasis_formula() -> None:
    emphasized = preemphasis(torch.tensor([1.0, 2.0, 0.0, -1.0]))
    assert torch.allclose(emphasized, torch.tensor([1.0, 2.0 - 0.97, -1.94, -1.0]))


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="1-D"):
        mel_spectrogram(np.zeros((2, 800), dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="floats"):
        mel_spectrogram(np.zeros(800, dtype=np.int16))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        mel_spectrogram(np.zeros(800, dtype=np.float32), dtype=torch.float16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mel_in_chunks_equals_the_whole_clip_at_once(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    from tavce.audio import mel as mel_module

    samples = np.random.default_rng(5).uniform(-0.5, 0.5, 16000 * 9 + 123).astype(np.float32)
    # The whole clip at once, through the public steps: pre-emphasis, |STFT|, mel, dB, normalisation.
    whole = normalize(amplitude_to_db(mel_basis().to(dtype) @ stft_magnitude(preemphasis(samples, dtype=dtype))))
    monkeypatch.setattr(mel_module, "MEL_CHUNK_FRAMES", 301)  # chunk edges fall anywhere
    chunked = mel_module.mel_spectrogram(samples, dtype=dtype)
    assert chunked.shape == whole.shape == (80, 1 + len(samples) // 200)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-5)


def test_float64_mel_returned_as_float32_equals_the_float64_result_cast():
    samples = np.random.default_rng(7).normal(0, 0.1, 16_000 * 45).astype(np.float32)  # 3 chunks of 20 s
    precise = mel_spectrogram(samples, dtype=torch.float64)
    stored = mel_spectrogram(samples, dtype=torch.float64, out_dtype=torch.float32)
    assert stored.dtype == torch.float32 and torch.equal(stored, precise.to(torch.float32))
    with pytest.raises(InvalidArgumentError, match="out_dtype must be a floating-point dtype"):
        mel_spectrogram(samples, out_dtype=torch.int16)
