"""FacePreprocessor.prepare, PreparedSource save/load and paste-back, on synthetic photos (tiny 3DMM net)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tavce.errors import FaceNotDetectedError, InvalidArgumentError, InvalidImageError
from tavce.models.face_recon import FaceReconConfig, FaceReconNet
from tavce.preprocess import FacePreprocessor, PreparedSource, Preprocessor, paste_back
from tavce.preprocess.landmarks import Face
from tavce.preprocess.preprocessor import map_landmarks_to_working_image
from tavce.testing import face_landmarks, face_photo

MODES = ("crop", "extcrop", "resize", "full", "extfull")


class StubLandmarker:
    """Returns fixed faces; counts calls; can forbid being used at all."""

    name = "stub"

    def __init__(self, faces=(), forbid=False):
        self.faces = list(faces)
        self.forbid = forbid
        self.calls = []

    def detect(self, image):
        assert not self.forbid, "detector must not run"
        self.calls.append("detect")
        return self.faces

    def landmarks_in_box(self, image, box):
        assert not self.forbid, "landmark predictor must not run"
        self.calls.append(("box", tuple(box)))
        left, top, right, bottom = box
        return face_landmarks(((left + right) / 2, (top + bottom) / 2), (right - left) / 1.6)


@pytest.fixture(scope="module")
def tiny_net():
    return FaceReconNet(FaceReconConfig(blocks_per_stage=(1, 1, 1, 1), base_width=4)).eval()


@pytest.fixture(scope="module")
def scene():
    landmarks = face_landmarks((330, 210), 80, roll_degrees=8)
    return face_photo(640, 420, landmarks), landmarks


@pytest.fixture
def preprocessor(tiny_net, scene):
    _, landmarks = scene
    face = Face(box=(250.0, 130.0, 410.0, 290.0), landmarks=landmarks, score=1.0)
    return FacePreprocessor(face_recon=tiny_net, landmarker=StubLandmarker([face]))


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_prepares_a_source(preprocessor, scene, mode):
    photo, landmarks = scene
    source = preprocessor.prepare(photo, mode, 256)
    assert isinstance(preprocessor, Preprocessor)
    assert source.image.shape == (3, 256, 256) and source.image.dtype == torch.float32
    assert 0 <= source.image.min() and source.image.max() <= 1
    assert source.coefficients.shape == (73,) and source.motion_coefficients.shape == (70,)
    assert source.reconstruction.shape == (257,)
    assert source.image_size == (640, 420) and source.mode.value == mode and source.landmarker == "stub"
    np.testing.assert_array_equal(source.landmarks, landmarks)
    assert (source.original_image is not None) == (mode in ("full", "extfull"))


def test_size_512_and_landmark_mapping(preprocessor, scene):
    photo, landmarks = scene
    source = preprocessor.prepare(photo, "crop", 512)
    assert source.image.shape == (3, 512, 512)
    mapped = map_landmarks_to_working_image(landmarks, source.geometry, 512)
    left, top, right, bottom = source.geometry.source_box
    # Nose tip mapped into the working image keeps its relative position in the crop.
    expected = (landmarks[30] + 0.5 - [left, top]) * [512 / (right - left), 512 / (bottom - top)] - 0.5
    np.testing.assert_allclose(mapped[30], expected, atol=1e-3)
    with pytest.raises(InvalidArgumentError, match="256 or 512"):
        preprocessor.prepare(photo, "crop", 300)


def test_coefficient_crop_parameters_come_from_the_alignment(preprocessor, scene):
    photo, _ = scene
    source = preprocessor.prepare(photo, "crop")
    scale, translation_x, translation_y = source.coefficients[70:].tolist()
    # 102 px per standard-face unit after rescaling; the face fills a good part of the 256 crop.
    assert 0.3 < scale < 3 and 0 < translation_x < 256 and 0 < translation_y < 256


def test_faceless_image_raises_face_not_detected(tiny_net):
    preprocessor = FacePreprocessor(face_recon=tiny_net, landmarker=StubLandmarker([]))
    with pytest.raises(FaceNotDetectedError, match=r"320x200.*face_box="):
        preprocessor.prepare(np.full((200, 320, 3), 127, np.uint8))


def test_faceless_image_with_the_real_dlib_detector(tiny_net, dlib_landmarker):
    with pytest.raises(FaceNotDetectedError, match="dlib detector"):
        FacePreprocessor(face_recon=tiny_net, landmarker=dlib_landmarker).prepare(np.full((200, 320, 3), 90, np.uint8))


def test_explicit_landmarks_need_no_detector(tiny_net, scene):
    photo, landmarks = scene
    preprocessor = FacePreprocessor(face_recon=tiny_net.train(), landmarker=StubLandmarker(forbid=True))
    assert not tiny_net.training  # batch norm must use its running statistics
    source = preprocessor.prepare(photo, "full", landmarks=landmarks)
    assert source.landmarker == "explicit"
    with pytest.raises(InvalidArgumentError, match=r"\(68, 2\)"):
        preprocessor.prepare(photo, landmarks=np.zeros((5, 2)))


def test_face_box_runs_only_the_landmark_predictor(tiny_net, scene):
    photo, _ = scene
    landmarker = StubLandmarker()
    source = FacePreprocessor(face_recon=tiny_net, landmarker=landmarker).prepare(photo, "crop", face_box=(250, 130, 410, 290))
    assert landmarker.calls == [("box", (250.0, 130.0, 410.0, 290.0))]
    np.testing.assert_array_equal(source.landmarks, face_landmarks((330, 210), 100))  # the stub's answer
    # A box reaching past the photo is clipped to it.
    FacePreprocessor(face_recon=tiny_net, landmarker=landmarker).prepare(photo, "crop", face_box=(-20, 300, 120, 500))
    assert landmarker.calls[-1] == ("box", (0.0, 300.0, 120.0, 420.0))
    for bad in [(300, 100, 200, 50), (700, 10, 800, 90), (1, 2, 3), "box"]:
        with pytest.raises(InvalidArgumentError, match="face_box"):
            FacePreprocessor(face_recon=tiny_net, landmarker=landmarker).prepare(photo, face_box=bad)


def test_face_index_picks_faces_left_to_right(tiny_net, scene):
    photo, landmarks = scene
    small = face_landmarks((100, 100), 40)
    faces = [
        Face(box=(250.0, 130.0, 410.0, 290.0), landmarks=landmarks, score=1.0),
        Face(box=(70.0, 70.0, 130.0, 130.0), landmarks=small, score=1.0),
    ]
    preprocessor = FacePreprocessor(face_recon=tiny_net, landmarker=StubLandmarker(faces))
    np.testing.assert_array_equal(preprocessor.prepare(photo).landmarks, landmarks)  # largest
    np.testing.assert_array_equal(preprocessor.prepare(photo, face_index=0).landmarks, small)


def test_prepared_source_save_and_load(preprocessor, scene, tmp_path):
    photo, _ = scene
    source = preprocessor.prepare(photo, "extfull")
    path = source.save(tmp_path / "photo.safetensors")
    loaded = PreparedSource.load(path)
    assert torch.equal(loaded.image, source.image) and torch.equal(loaded.coefficients, source.coefficients)
    assert torch.equal(loaded.reconstruction, source.reconstruction)
    np.testing.assert_array_equal(loaded.landmarks, source.landmarks)
    np.testing.assert_array_equal(loaded.original_image, photo)
    assert loaded.geometry == source.geometry and loaded.landmarker == "stub"

    crop_only = preprocessor.prepare(photo, "crop").save(tmp_path / "crop.safetensors")
    assert PreparedSource.load(crop_only).original_image is None


def test_loading_something_else_fails_clearly(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(InvalidImageError, match="not found"):
        PreparedSource.load(tmp_path / "missing.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(InvalidImageError, match="not a tavce prepared source"):
        PreparedSource.load(tmp_path / "weights.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(InvalidImageError, match="not a readable"):
        PreparedSource.load(tmp_path / "junk.safetensors")


def _working_uint8(source: PreparedSource) -> np.ndarray:
    return (source.image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.mark.parametrize("mode", ["full", "extfull"])
def test_paste_back_of_an_unchanged_crop_reproduces_the_photo(preprocessor, scene, mode):
    photo, _ = scene
    source = preprocessor.prepare(photo, mode)
    pasted = preprocessor.paste_back(_working_uint8(source), source)
    assert pasted.shape == photo.shape and pasted.dtype == np.uint8
    left, top, right, bottom = (int(round(v)) for v in source.geometry.paste_box)
    outside = np.ones(photo.shape[:2], bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(pasted[outside], photo[outside])
    inside = np.abs(pasted[top:bottom, left:right].astype(int) - photo[top:bottom, left:right])
    assert inside.mean() < 3.0  # two bilinear resamplings of a noisy photo


def test_paste_back_blends_without_a_visible_edge(preprocessor, scene):
    photo, _ = scene
    source = preprocessor.prepare(photo, "full")
    white = np.full((4, 256, 256, 3), 255, np.uint8)
    pasted = paste_back(white, source)
    assert pasted.shape == (4, *photo.shape)
    left, top, right, bottom = (int(round(v)) for v in source.geometry.paste_box)
    # At the box edge the photo is kept; at the centre the frame is fully pasted.
    np.testing.assert_array_equal(pasted[0, top, left:right], photo[top, left:right])
    assert (pasted[:, (top + bottom) // 2, (left + right) // 2] == 255).all()
    row = pasted[0, (top + bottom) // 2, left:right, 0].astype(int)
    assert np.abs(np.diff(row)).max() < 40  # no jump across the blend band


def test_paste_back_refuses_crop_modes_and_bad_frames(preprocessor, scene):
    photo, _ = scene
    with pytest.raises(InvalidArgumentError, match="'full' or 'extfull'"):
        paste_back(np.zeros((256, 256, 3), np.uint8), preprocessor.prepare(photo, "crop"))
    with pytest.raises(InvalidArgumentError, match="uint8"):
        paste_back(np.zeros((256, 256, 3), np.float32), preprocessor.prepare(photo, "full"))


def test_sample_portraits_in_every_mode_with_dlib(tiny_net, shared_media, dlib_landmarker):
    preprocessor = FacePreprocessor(face_recon=tiny_net, landmarker=dlib_landmarker)
    for name in ("art_1.png", "art_6.png", "full_body_1.png"):
        for mode in MODES:
            source = preprocessor.prepare(shared_media / name, mode)
            assert source.image.shape == (3, 256, 256), (name, mode)
            assert torch.isfinite(source.coefficients).all()
            if source.mode.pastes_back:
                pasted = preprocessor.paste_back(_working_uint8(source), source)
                assert pasted.shape[:2] == source.image_size[::-1]
