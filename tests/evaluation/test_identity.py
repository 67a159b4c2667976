"""CSIM: identical faces score 1, the ArcFace ONNX wrapper's colour order and normalisation, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tavce.errors import InvalidArgumentError, WeightsNotFoundError
from tavce.evaluation import ArcFaceEncoder, CSIMConfig, TorchIdentityEncoder, align_faces, csim
from tavce.testing import face_landmarks, face_photo
from tests.evaluation.backbones import write_linear_arcface_onnx


def _faces(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` 160×160 portraits (one face each, moving a little) and their (count, 68, 2) landmarks."""
    frames, landmarks = [], []
    for index in range(count):
        points = face_landmarks((80 + index, 78), 48 + index)
        frames.append(face_photo(160, 160, points, seed=seed))
        landmarks.append(points)
    return np.stack(frames), np.stack(landmarks).astype(np.float32)


def _torch_encoder(seed: int = 0) -> TorchIdentityEncoder:
    torch.manual_seed(seed)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.LazyLinear(16)
    )
    network(torch.zeros(1, 3, 112, 112))  # materialise the lazy layer
    return TorchIdentityEncoder(network)


def test_identical_faces_have_csim_one() -> None:
    frames, landmarks = _faces(3)
    score = csim(frames, frames, _torch_encoder(), generated_landmarks=landmarks, reference_landmarks=landmarks)
    assert score == pytest.approx(1.0, abs=1e-6)


def test_other_pictures_score_lower_and_one_reference_image_serves_every_frame() -> None:
    frames, landmarks = _faces(3, seed=0)
    noise = np.random.default_rng(2).integers(0, 256, size=frames.shape, dtype=np.uint8)
    encoder = _torch_encoder()
    different = csim(frames, noise, encoder, generated_landmarks=landmarks, reference_landmarks=landmarks)
    single = csim(frames[:1].repeat(3, axis=0), frames[:1], encoder, generated_landmarks=landmarks[:1].repeat(3, axis=0),
                  reference_landmarks=landmarks[:1])  # fmt: skip
    assert different < 0.99 and single == pytest.approx(1.0, abs=1e-6)


def test_alignment_brings_the_five_points_onto_insightfaces_template() -> None:
    from insightface.utils.face_align import arcface_dst

    frames, landmarks = _faces(1)
    marked = np.zeros_like(frames)
    nose = np.round(landmarks[0, 30]).astype(int)
    marked[0, nose[1] - 1 : nose[1] + 2, nose[0] - 1 : nose[0] + 2] = 255
    aligned = align_faces(marked, landmarks)
    assert aligned.shape == (1, 112, 112, 3)
    rows, columns = np.nonzero(aligned[0, :, :, 0] > 64)
    assert abs(columns.mean() - arcface_dst[2, 0]) < 3 and abs(rows.mean() - arcface_dst[2, 1]) < 3


def test_arcface_onnx_network_sees_rgb_in_minus_one_to_one(tmp_path: Path) -> None:
    # insightface's wrapper takes BGR images and swaps them back to RGB for the network.
    weight = np.random.default_rng(0).normal(size=(3 * 112 * 112, 8)).astype(np.float32)
    encoder = ArcFaceEncoder(write_linear_arcface_onnx(tmp_path / "w600k_r50.onnx", weight))
    assert encoder.input_size == 112
    faces = np.random.default_rng(1).integers(0, 256, size=(2, 112, 112, 3), dtype=np.uint8)
    expected = ((faces.astype(np.float64) - 127.5) / 127.5).transpose(0, 3, 1, 2).reshape(2, -1) @ weight
    np.testing.assert_allclose(encoder.embed(faces), expected, rtol=1e-3, atol=1e-2)

    frames, landmarks = _faces(2)
    score = csim(frames, frames, encoder, generated_landmarks=landmarks, reference_landmarks=landmarks)
    assert score == pytest.approx(1.0, abs=1e-6)


def test_csim_errors_name_the_problem(tmp_path: Path) -> None:
    frames, landmarks = _faces(3)
    encoder = _torch_encoder()
    with pytest.raises(InvalidArgumentError, match="3 generated frames but 2 reference"):
        csim(frames, frames[:2], encoder, generated_landmarks=landmarks, reference_landmarks=landmarks[:2])
    with pytest.raises(InvalidArgumentError, match="landmarks or a landmarker"):
        csim(frames, frames, encoder)
    with pytest.raises(InvalidArgumentError, match="one \\(68, 2\\) set per frame"):
        csim(frames, frames, encoder, generated_landmarks=landmarks[:2], reference_landmarks=landmarks)
    assert csim(frames, frames, encoder, config=CSIMConfig(align=False)) == pytest.approx(1.0)
    with pytest.raises(WeightsNotFoundError, match="buffalo_l"):
        ArcFaceEncoder(tmp_path / "missing.onnx")
