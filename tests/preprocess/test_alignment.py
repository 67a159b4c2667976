"""3DMM alignment: POS fit and the 224 crop (reference-pipeline.md §2.6 steps 1–7)."""

from __future__ import annotations

import numpy as np
import pytest

from tavce.errors import InvalidArgumentError
from tavce.preprocess.alignment import (
    RECON_SIZE,
    align_for_reconstruction,
    fit_similarity,
    flip_landmarks_y,
)
from tavce.preprocess.standard_landmarks import STANDARD_LANDMARKS_3D, five_points, standard_five_points
from tavce.testing import face_landmarks, face_photo


def test_standard_five_points_match_the_spec_table():
    expected = [
        [-0.311487, 0.290361, 0.133780],
        [0.309799, 0.289720, 0.131795],
        [0.003253, -0.046179, 0.552442],
        [-0.252169, -0.381339, 0.224057],
        [0.248466, -0.381282, 0.222358],
    ]
    np.testing.assert_allclose(standard_five_points(), expected, atol=1e-6)
    assert STANDARD_LANDMARKS_3D.shape == (68, 3) and not STANDARD_LANDMARKS_3D.flags.writeable


def test_pos_recovers_a_known_similarity():
    standard = standard_five_points().astype(np.float64)
    points = standard[:, :2] * 87.5 + [40.0, -12.0]
    scale, translation = fit_similarity(points, standard)
    assert scale == pytest.approx(87.5, rel=1e-9)
    np.testing.assert_allclose(translation, [40.0, -12.0], atol=1e-9)


def test_flip_is_its_own_inverse():
    landmarks = face_landmarks((128, 100), 50)
    flipped = flip_landmarks_y(landmarks, 256)
    assert flipped[:, 1] == pytest.approx(255 - landmarks[:, 1])
    np.testing.assert_allclose(flip_landmarks_y(flipped, 256), landmarks, atol=1e-4)


def test_aligned_face_is_centred_at_the_standard_scale():
    landmarks = face_landmarks((128, 128), 60)
    photo = face_photo(256, 256, landmarks)
    aligned = align_for_reconstruction(photo, flip_landmarks_y(landmarks, 256))
    assert aligned.image.shape == (RECON_SIZE, RECON_SIZE, 3) and aligned.image.dtype == np.uint8
    width, height, scale, _, _ = aligned.trans_params
    assert (width, height) == (256, 256)
    assert scale == pytest.approx(102 / 60, rel=1e-4)
    # After alignment the five points sit where the standard face puts them (102 px per unit).
    expected = standard_five_points()[:, :2] * 102 + RECON_SIZE / 2
    np.testing.assert_allclose(five_points(aligned.landmarks), expected, atol=1.0)


def test_out_of_image_areas_are_black_and_fallback_without_landmarks():
    landmarks = face_landmarks((250, 250), 40)  # face in the bottom-right corner
    photo = face_photo(256, 256, landmarks)
    aligned = align_for_reconstruction(photo, flip_landmarks_y(landmarks, 256))
    assert (aligned.image[-20:, -20:] == 0).all()
    fallback = align_for_reconstruction(photo, None)
    assert fallback.image.shape == (RECON_SIZE, RECON_SIZE, 3)
    assert fallback.trans_params[2] == pytest.approx(102 / 128, rel=1e-4)  # standard face spans (W, H)/2
    with pytest.raises(InvalidArgumentError):
        align_for_reconstruction(photo, np.zeros((10, 2)))
