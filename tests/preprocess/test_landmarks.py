"""Landmark backends: dlib fallback, insightface pack checks, face selection."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tavce.errors import InvalidArgumentError, TavceError, WeightsNotFoundError
from tavce.preprocess.landmarks import (
    Face,
    FaceLandmarker,
    InsightFaceLandmarker,
    default_landmarker,
    insightface_pack_folder,
    select_face,
)


def _face(left: float, size: float) -> Face:
    return Face(box=(left, 10.0, left + size, 10.0 + size), landmarks=np.full((68, 2), left, np.float32), score=1.0)


def test_insightface_missing_pack_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="buffalo_l.*not found.*DlibLandmarker"):
        InsightFaceLandmarker(root=tmp_path)
    with pytest.raises(WeightsNotFoundError, match="not found"):
        InsightFaceLandmarker(pack=str(tmp_path))  # an explicit but empty folder


def test_insightface_broken_pack_is_wrapped(tmp_path):
    pack = tmp_path / "models" / "broken"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(TavceError, match="insightface could not load"):
        InsightFaceLandmarker(pack="broken", root=tmp_path)


def test_pack_folder_rules(tmp_path):
    assert insightface_pack_folder("buffalo_l", tmp_path) == tmp_path / "models" / "buffalo_l"
    assert insightface_pack_folder(str(tmp_path), "/nowhere") == tmp_path


def test_default_falls_back_to_dlib_and_the_choice_is_logged_once(tmp_path, caplog, monkeypatch, dlib_landmarker):
    from tavce.preprocess import FacePreprocessor, landmarks

    monkeypatch.setattr(landmarks, "DlibLandmarker", lambda: dlib_landmarker)
    landmarker = default_landmarker(root=tmp_path)
    assert landmarker.name == "dlib" and isinstance(landmarker, FaceLandmarker)
    monkeypatch.setattr(landmarks.default_landmarker, "__defaults__", ("buffalo_l", str(tmp_path)))
    preprocessor = FacePreprocessor(face_recon=None)
    with caplog.at_level(logging.INFO, logger="tavce.preprocess.preprocessor"):
        assert preprocessor.landmarker.name == "dlib"
        assert preprocessor.landmarker is preprocessor.landmarker
    assert caplog.text.count("face landmarks: dlib backend") == 1


def test_dlib_finds_nothing_in_a_faceless_image(dlib_landmarker):
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert dlib_landmarker.detect(flat) == []


def test_dlib_landmarks_in_a_box_need_no_detection(dlib_landmarker):
    image = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    points = dlib_landmarker.landmarks_in_box(image, (50, 40, 150, 140))
    assert points.shape == (68, 2) and points.dtype == np.float32
    # The predictor places its mean shape inside the box it is given.
    assert (points.mean(0) > [50, 40]).all() and (points.mean(0) < [150, 140]).all()


def test_face_selection():
    faces = [_face(200, 50), _face(10, 80), _face(100, 60)]
    assert select_face(faces, None, (300, 200)).box[0] == 10  # largest
    assert select_face(faces, 2, (300, 200)).box[0] == 200  # left to right
    with pytest.raises(InvalidArgumentError, match="only 3 face"):
        select_face(faces, 3, (300, 200))


def test_dlib_searches_large_photos_downscaled(shared_media, dlib_landmarker, monkeypatch):
    from tavce.image import load_image

    photo = load_image(shared_media / "full_body_1.png")  # 800 x 1200
    full = dlib_landmarker.detect(photo)
    monkeypatch.setattr(dlib_landmarker, "max_detection_side", 600)
    reduced = dlib_landmarker.detect(photo)
    assert len(full) == len(reduced) == 1
    # Box found at half size, landmarks still predicted at full resolution.
    assert np.abs(np.subtract(full[0].box, reduced[0].box)).max() < 0.15 * (full[0].box[2] - full[0].box[0])
    assert np.abs(full[0].landmarks - reduced[0].landmarks).mean() < 3


def test_dlib_on_sample_portraits(dlib_landmarker, shared_media):
    from tavce.image import load_image

    for name in ("art_1.png", "art_6.png", "full_body_1.png"):
        photo = load_image(shared_media / name)
        faces = dlib_landmarker.detect(photo)
        assert len(faces) == 1, name
        left, top, right, bottom = faces[0].box
        eyes = faces[0].landmarks[36:48].mean(0)
        assert left < eyes[0] < right and top < eyes[1] < bottom, name


class _FakeFaceAnalysis:
    """Stands in for insightface.app.FaceAnalysis (no model pack is available offline)."""

    seen = {}

    def __init__(self, name, allowed_modules, providers):
        _FakeFaceAnalysis.seen = {"name": name, "allowed_modules": allowed_modules, "providers": providers}
        self.models = {"detection": object(), "landmark_3d_68": self}

    def prepare(self, ctx_id, det_size):
        _FakeFaceAnalysis.seen["det_size"] = det_size

    def _face(self, bbox):
        from insightface.app.common import Face as InsightFace

        points = np.zeros((68, 3), np.float32)
        points[:, 0], points[:, 1], points[:, 2] = np.arange(68), bbox[1], 99.0
        return InsightFace(bbox=np.asarray(bbox, np.float32), det_score=np.float32(0.9), landmark_3d_68=points)

    def get(self, image, face=None):
        _FakeFaceAnalysis.seen["first_pixel"] = image[0, 0].tolist()
        if face is not None:  # the landmark model's get(img, face)
            face["landmark_3d_68"] = self._face(face.bbox).landmark_3d_68
            return None
        return [self._face([10, 20, 50, 60])]


def test_insightface_wrapper_with_a_stand_in_model(tmp_path, monkeypatch):
    import insightface.app

    pack = tmp_path / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"stand-in")
    monkeypatch.setattr(insightface.app, "FaceAnalysis", _FakeFaceAnalysis)
    landmarker = InsightFaceLandmarker(root=tmp_path, providers=("CPUExecutionProvider",), detection_size=320)
    assert _FakeFaceAnalysis.seen["allowed_modules"] == ["detection", "landmark_3d_68"]
    assert _FakeFaceAnalysis.seen["providers"] == ["CPUExecutionProvider"]
    assert _FakeFaceAnalysis.seen["name"] == str(pack) and _FakeFaceAnalysis.seen["det_size"] == (320, 320)

    image = np.zeros((80, 80, 3), np.uint8)
    image[0, 0] = (1, 2, 3)  # RGB
    (face,) = landmarker.detect(image)
    assert _FakeFaceAnalysis.seen["first_pixel"] == [3, 2, 1]  # insightface is given BGR
    assert face.box == (10.0, 20.0, 50.0, 60.0) and face.score == pytest.approx(0.9)
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
    assert face.landmarks[5].tolist() == [5.0, 20.0]  # x, y of the 3D landmarks
    in_box = landmarker.landmarks_in_box(image, (4, 8, 40, 44))
    assert in_box.shape == (68, 2) and in_box[0, 1] == 8.0
