"""Face detection + 68 landmarks behind one small interface.

Two backends ship with tavce:

* :class:`InsightFaceLandmarker`: insightface ``FaceAnalysis`` restricted to its
  detector and 68-point 3D landmark model. Its model pack lives in insightface's
  own root (``~/.insightface/models/<name>``, downloaded by insightface when
  online) or in an explicit folder; the files are checked before insightface is
  touched, so a missing pack is a :class:`~tavce.errors.WeightsNotFoundError`,
  not a connection error.
* :class:`DlibLandmarker`: offline fallback, dlib's HOG detector + the 68-point
  shape predictor of ``face_recognition_models``.

Both models' licences restrict commercial use (see docs/preprocess.md). Any
object with ``name``, ``detect`` and ``landmarks_in_box`` can be plugged in
instead (:class:`FaceLandmarker`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import cv2
import numpy as np

from tavce.errors import InvalidArgumentError, LandmarkerError, WeightsNotFoundError
from tavce.constants import LANDMARKER_NAMES

__all__ = [
    "Face",
    "FaceLandmarker",
    "LandmarkerError",
    "DlibLandmarker",
    "InsightFaceLandmarker",
    "default_landmarker",
    "insightface_pack_folder",
    "landmarker_class",
]

logger = logging.getLogger(__name__)

DEFAULT_INSIGHTFACE_PACK = "buffalo_l"
DEFAULT_INSIGHTFACE_ROOT = "~/.insightface"
DLIB_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: (left, top, right, bottom) float pixels.
        landmarks: (68, 2) float32 iBUG-layout points (x right, y down, pixels).
        score: detector confidence (backend-specific scale; only used to rank).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


@runtime_checkable
class FaceLandmarker(Protocol):
    """Detects faces with 68 landmarks in an (H, W, 3) uint8 RGB image."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces found, in any order (an empty list when there is none)."""
        ...

    def landmarks_in_box(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) float32 landmarks of the face inside ``box`` (left, top, right, bottom), no detection."""
        ...


def _dlib_predictor_path() -> Path:
    # Located without importing face_recognition_models: its __init__ needs pkg_resources,
    # which recent setuptools no longer ship.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            "face_recognition_models is not installed; `pip install face-recognition-models` "
            "for the dlib 68-point predictor, or pass landmarks= / a different landmarker"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / DLIB_PREDICTOR_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: dlib 68-point predictor missing; reinstall face-recognition-models")
    return path


class _DetectorPool:
    """dlib HOG detectors lent to one caller at a time.

    One dlib detector object must never run in two threads at once: concurrent
    ``run`` calls on the same detector corrupt the C++ heap (the interpreter aborts),
    whereas the shape predictor is safe to share (see docs/preprocess.md, "Threads").
    Building a detector takes about a second, so idle ones are kept: a caller borrows
    an idle detector, and a new one is built only while all are busy. The pool never
    holds more detectors than callers ever detected at once.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._idle = [build()]
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Any]:
        with self._lock:
            detector = self._idle.pop() if self._idle else None
        if detector is None:
            detector = self._build()
        try:
            yield detector
        finally:
            with self._lock:
                self._idle.append(detector)


class DlibLandmarker:
    """dlib HOG frontal-face detector + 68-point shape predictor (offline, CPU).

    The detector runs without upsampling first and once more with one upsampling
    step when nothing is found (faces under ~80 px). Photos larger than
    ``max_detection_side`` are searched at that size (HOG cost grows with the
    pixel count) and the landmarks are then predicted at full resolution.
    dlib's CNN detector is not used.

    Safe to share between threads: each concurrent detection borrows its own
    detector object (dlib's detector is not thread-safe); the shape predictor is shared.
    """

    name = "dlib"

    def __init__(self, predictor_path: str | Path | None = None, *, max_detection_side: int = 1600) -> None:
        self.max_detection_side = max_detection_side
        try:
            import dlib
        except ImportError as error:
            raise LandmarkerError("dlib is not installed; `pip install dlib-bin`") from error
        path = Path(predictor_path) if predictor_path is not None else _dlib_predictor_path()
        if not path.is_file():
            raise WeightsNotFoundError(f"{path}: dlib shape predictor file not found")
        self._dlib = dlib
        self._detectors = _DetectorPool(dlib.get_frontal_face_detector)
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as error:
            raise WeightsNotFoundError(f"{path}: not a dlib shape predictor ({error})") from error

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)
        factor = min(1.0, self.max_detection_side / max(image.shape[:2]))
        searched = image
        if factor < 1.0:
            size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
            searched = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        with self._detectors.borrow() as detector:
            for upsample in (0, 1):
                rectangles, scores, _ = detector.run(searched, upsample, 0.0)
                if rectangles:
                    break
        faces = []
        for rectangle, score in zip(rectangles, scores):
            box = tuple(v / factor for v in (rectangle.left(), rectangle.top(), rectangle.right(), rectangle.bottom()))
            faces.append(Face(box=box, landmarks=self.landmarks_in_box(image, box), score=float(score)))
        return faces

    def landmarks_in_box(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        left, top, right, bottom = (int(round(v)) for v in box)
        shape = self._predictor(np.ascontiguousarray(image), self._dlib.rectangle(left, top, right, bottom))
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float32)


def insightface_pack_folder(pack: str = DEFAULT_INSIGHTFACE_PACK, root: str | Path = DEFAULT_INSIGHTFACE_ROOT) -> Path:
    """Where insightface keeps model pack ``pack``: ``<root>/models/<pack>``, or ``pack`` itself if it is a folder."""
    direct = Path(pack).expanduser()
    if direct.is_dir():
        return direct
    return Path(root).expanduser() / "models" / pack


def _pack_present(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.onnx"))


class InsightFaceLandmarker:
    """insightface detection + ``landmark_3d_68`` (x, y of the 68 3D landmarks), onnxruntime on CPU by default.

    Args:
        pack: model pack name (``buffalo_l``) or a local folder holding its ``.onnx`` files.
        root: insightface's root folder (packs in ``<root>/models/<pack>``).
        providers: onnxruntime execution providers, e.g. ``["CUDAExecutionProvider", "CPUExecutionProvider"]``.
        detection_size: detector input size (square).

    Raises:
        WeightsNotFoundError: the pack folder has no ``.onnx`` files (checked before insightface runs,
            so nothing is downloaded implicitly).
        LandmarkerError: insightface failed to load the pack, or it lacks one of the two models.
    """

    name = "insightface"

    def __init__(
        self,
        pack: str | Path = DEFAULT_INSIGHTFACE_PACK,
        root: str | Path = DEFAULT_INSIGHTFACE_ROOT,
        *,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        detection_size: int = 640,
    ) -> None:
        folder = insightface_pack_folder(str(pack), root)
        if not _pack_present(folder):
            raise WeightsNotFoundError(
                f"{folder}: insightface model pack {Path(str(pack)).name!r} not found (no .onnx files). Download "
                f"it once with `python -c \"from insightface.app import FaceAnalysis; FaceAnalysis(name='{pack}')\"` "
                "while online, pass root=/pack= pointing at a local copy, or use DlibLandmarker()"
            )
        try:
            from insightface.app import FaceAnalysis

            self._app = FaceAnalysis(
                name=str(folder), allowed_modules=["detection", "landmark_3d_68"], providers=list(providers)
            )
            self._app.prepare(ctx_id=-1, det_size=(detection_size, detection_size))
        except Exception as error:  # insightface raises bare asserts / onnxruntime errors
            raise LandmarkerError(f"{folder}: insightface could not load the model pack ({error!r})") from error
        missing = {"detection", "landmark_3d_68"} - set(self._app.models)
        if missing:
            raise LandmarkerError(f"{folder}: the model pack lacks the {sorted(missing)} model(s); use buffalo_l")

    def detect(self, image: np.ndarray) -> list[Face]:
        try:
            found = self._app.get(np.ascontiguousarray(image[..., ::-1]))  # insightface expects BGR
        except Exception as error:
            raise LandmarkerError(f"insightface detection failed ({error!r})") from error
        return [
            Face(
                box=cast(tuple[float, float, float, float], tuple(float(v) for v in face.bbox)),
                landmarks=np.asarray(face.landmark_3d_68[:, :2], dtype=np.float32),
                score=float(face.det_score),
            )
            for face in found
        ]

    def landmarks_in_box(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        from insightface.app.common import Face as InsightFace

        face = InsightFace(bbox=np.asarray(box, dtype=np.float32))
        try:
            self._app.models["landmark_3d_68"].get(np.ascontiguousarray(image[..., ::-1]), face)
        except Exception as error:
            raise LandmarkerError(f"insightface landmarks failed ({error!r})") from error
        return np.asarray(face.landmark_3d_68[:, :2], dtype=np.float32)


def default_landmarker(
    pack: str = DEFAULT_INSIGHTFACE_PACK, root: str | Path = DEFAULT_INSIGHTFACE_ROOT
) -> FaceLandmarker:
    """insightface when its model pack is present locally, otherwise dlib (offline fallback)."""
    folder = insightface_pack_folder(pack, root)
    if _pack_present(folder):
        return InsightFaceLandmarker(pack, root)
    logger.debug("no insightface model pack in %s; using dlib", folder)
    return DlibLandmarker()


def landmarker_class(name: str) -> Callable[[], FaceLandmarker]:
    """The factory of a landmark backend named in :data:`LANDMARKER_NAMES` (nothing is built yet).

    Raises:
        InvalidArgumentError: an unknown name.
    """
    factories: dict[str, Callable[[], FaceLandmarker]] = {
        "auto": default_landmarker, "insightface": InsightFaceLandmarker, "dlib": DlibLandmarker,
    }  # fmt: skip
    if name not in factories:
        raise InvalidArgumentError(f"landmarker={name!r}: choose one of {', '.join(LANDMARKER_NAMES)}")
    return factories[name]


def select_face(faces: list[Face], face_index: int | None, image_size: tuple[int, int]) -> Face:
    """The largest face, or faces sorted left to right when ``face_index`` is given."""
    if face_index is None:
        return max(faces, key=lambda face: face.area)
    ordered = sorted(faces, key=lambda face: face.box[0])
    if not -len(ordered) <= face_index < len(ordered):
        raise InvalidArgumentError(
            f"face_index={face_index}: only {len(ordered)} face(s) found in the {image_size[0]}x{image_size[1]} "
            f"image; use 0..{len(ordered) - 1} (faces are numbered left to right)"
        )
    return ordered[face_index]
