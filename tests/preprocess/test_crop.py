"""Crop geometry and modes (reference-pipeline.md §2.3–2.5, §6.2) on synthetic landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from tavce.errors import InvalidArgumentError
from tavce.preprocess.crop import (
    CropMode,
    compute_crop_geometry,
    crop_frame,
    crop_working_image,
    restore_aspect_size,
)
from tavce.testing import face_landmarks, face_photo


@pytest.fixture
def landscape():
    landmarks = face_landmarks((320, 200), 90)
    return face_photo(640, 400, landmarks), landmarks


@pytest.mark.parametrize("mode", ["crop", "extcrop", "resize", "full", "extfull"])
@pytest.mark.parametrize("size", [256, 512])
def test_every_mode_gives_a_square_working_image(landscape, mode, size):
    photo, landmarks = landscape
    geometry = compute_crop_geometry(landmarks, (640, 400), mode)
    working = crop_working_image(photo, geometry, size)
    assert working.shape == (size, size, 3) and working.dtype == np.uint8


def test_mode_regions(landscape):
    photo, landmarks = landscape
    tight = compute_crop_geometry(landmarks, (640, 400), "crop")
    bordered = compute_crop_geometry(landmarks, (640, 400), "extcrop")
    whole = compute_crop_geometry(landmarks, (640, 400), "resize")
    left, top, right, bottom = tight.crop_box
    assert crop_frame(photo, bordered).shape == (bottom - top, right - left, 3)
    tight_left, tight_top, tight_right, tight_bottom = tight.source_box
    assert crop_frame(photo, tight).shape == (tight_bottom - tight_top, tight_right - tight_left, 3)
    assert left <= tight_left < tight_right <= right and top <= tight_top < tight_bottom <= bottom
    # The face (all landmarks) lies inside the tight box.
    assert (landmarks.min(0) >= [tight_left, tight_top]).all()
    assert (landmarks.max(0) <= [tight_right, tight_bottom]).all()
    assert crop_frame(photo, whole) is photo and whole.crop_info_size == (640, 400)
    assert restore_aspect_size(whole, 256) == (256, 160)


def test_crop_box_is_quad_bbox_plus_border():
    landmarks = face_landmarks((500, 500), 100)
    geometry = compute_crop_geometry(landmarks, (1000, 1000), "crop")
    left, top, right, bottom = geometry.crop_box
    tight_width = geometry.tight_box[2] - geometry.tight_box[0]
    # Frontal face: the quad is axis-aligned, the crop adds a 10 % border on each side.
    assert right - left == pytest.approx(tight_width * 1.2, abs=3)
    assert geometry.resized_size == (1000, 1000)


def test_quirk_13_bottom_clamped_by_width_or_by_crop_height():
    # Face at the bottom of a wide photo: the quad leaves the photo at the bottom.
    landmarks = face_landmarks((300, 390), 90)
    original = compute_crop_geometry(landmarks, (640, 400), "crop")
    fixed = compute_crop_geometry(landmarks, (640, 400), "crop", clamp_bottom_by_height=True)
    crop_height = original.crop_box[3] - original.crop_box[1]
    assert original.tight_box[3] > crop_height  # clamped by the width 640 only
    assert fixed.tight_box[3] == crop_height
    # Both cut the same pixels (numpy slicing clips); only the reported size differs.
    assert original.source_box == fixed.source_box
    assert original.crop_info_size[1] > fixed.crop_info_size[1]
    assert restore_aspect_size(fixed, 256) == restore_aspect_size(original, 256, crop_aspect=True)


def test_shrink_for_very_large_faces_and_paste_box_in_full_resolution():
    landmarks = face_landmarks((3000, 3000), 1200)  # quad side ~ 2 * 2 * 1200 * 0.62 >= 2048 * 2
    geometry = compute_crop_geometry(landmarks, (6000, 6000), "full")
    shrink = 6000 / geometry.resized_size[0]
    assert shrink in (2.0, 3.0, 4.0)
    left, top, right, bottom = geometry.source_box
    # Quirk 14 fixed: the paste box is the crop region scaled back to the 6000 px photo.
    assert geometry.paste_box == pytest.approx((left * shrink, top * shrink, right * shrink, bottom * shrink))
    assert geometry.paste_box[2] - geometry.paste_box[0] == pytest.approx(shrink * (right - left))
    assert geometry.tight_box_in_image[2] <= geometry.resized_size[0]  # the original pasted these small coordinates


def test_ext_aspect_quirk_15():
    landmarks = face_landmarks((320, 200), 60)
    geometry = compute_crop_geometry(landmarks, (640, 400), "extcrop")
    left, top, right, bottom = geometry.crop_box
    tight_width, tight_height = geometry.crop_info_size
    assert restore_aspect_size(geometry, 256) == (256, int(256 * tight_height / tight_width))
    assert restore_aspect_size(geometry, 256, crop_aspect=True) == (256, int(256 * (bottom - top) / (right - left)))


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="unknown crop mode"):
        CropMode.parse("square")
    with pytest.raises(InvalidArgumentError, match=r"\(68, 2\)"):
        compute_crop_geometry(np.zeros((5, 2)), (100, 100), "crop")
    geometry = compute_crop_geometry(face_landmarks((50, 50), 20), (100, 100), "crop")
    with pytest.raises(InvalidArgumentError, match="differs from the prepared photo"):
        crop_frame(np.zeros((90, 100, 3), np.uint8), geometry)


def test_geometry_round_trips_through_dict(landscape):
    _, landmarks = landscape
    geometry = compute_crop_geometry(landmarks, (640, 400), "extfull")
    assert type(geometry).from_dict(geometry.to_dict()) == geometry
