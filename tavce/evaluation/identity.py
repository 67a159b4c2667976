"""CSIM: cosine similarity of face-identity embeddings between generated and real frames (paper §IV-A).

Faces are aligned as insightface aligns them for its recognition models (five points from the
68 landmarks, :func:`insightface.utils.face_align.norm_crop` to the encoder's input size), then
embedded by an :class:`IdentityEncoder`. The default, :class:`ArcFaceEncoder`, runs one of
insightface's ArcFace ONNX models (e.g. ``w600k_r50.onnx`` of the ``buffalo_l`` pack) through
insightface's own ``ArcFaceONNX`` wrapper and onnxruntime; any other network fits the interface
(:class:`TorchIdentityEncoder` wraps a PyTorch module).
"""

from __future__ import annotations

import functools

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, WeightsNotFoundError
from tavce.evaluation.frames import check_frames
from tavce.evaluation.landmarks import check_landmarks, five_point_landmarks, video_landmarks
from tavce.models.base import module_device
from tavce.preprocess.landmarks import FaceLandmarker

__all__ = [
    "ArcFaceEncoder",
    "CSIMConfig",
    "IdentityEncoder",
    "TorchIdentityEncoder",
    "align_faces",
    "csim",
    "identity_embeddings",
]

logger = logging.getLogger(__name__)

ARCFACE_INPUT_SIZE = 112


@runtime_checkable
class IdentityEncoder(Protocol):
    """Face-identity embeddings of aligned face crops.

    Attributes:
        input_size: side of the square aligned crop the encoder expects (112 for ArcFace).
    """

    input_size: int

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 RGB aligned faces, S = ``input_size`` → (B, D) embeddings (any scale)."""
        ...


class ArcFaceEncoder:
    """insightface's ArcFace ONNX recognition model (``w600k_r50.onnx``, ``glintr100.onnx``, ...).

    Args:
        model_file: the ``.onnx`` file (from an insightface model pack, e.g. ``~/.insightface/models/buffalo_l/``).
        providers: onnxruntime execution providers (default: the CPU).

    insightface's wrapper reads the input size and normalisation from the model and expects
    BGR faces; :meth:`embed` takes RGB like every tavce function and converts.
    """

    def __init__(self, model_file: str | Path, *, providers: list[str] | None = None) -> None:
        import onnxruntime
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        path = Path(model_file).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"{path}: ArcFace model not found; use w600k_r50.onnx from insightface's buffalo_l pack "
                "(docs/evaluation.md) or another insightface recognition model"
            )
        try:
            session = onnxruntime.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
            self._model = ArcFaceONNX(model_file=str(path), session=session)
        except Exception as error:  # onnx / onnxruntime raise their own types for corrupt or foreign files
            raise IncompatibleWeightsError(
                f"{path}: cannot be used as an ArcFace recognition model ({error}); give an insightface "
                "recognition .onnx (one image input, one embedding output)"
            ) from error
        self.input_size = int(self._model.input_size[0])
        self.path = path
        self.providers = providers

    def __reduce__(self):
        # An onnxruntime session cannot be pickled: a worker process or Ray actor opens the file again.
        return functools.partial(type(self), providers=self.providers), (self.path,)

    def embed(self, faces: np.ndarray) -> np.ndarray:
        bgr = [np.ascontiguousarray(face[:, :, ::-1]) for face in faces]
        return np.asarray(self._model.get_feat(bgr), dtype=np.float64).reshape(len(bgr), -1)


class TorchIdentityEncoder:
    """A PyTorch face-recognition network as an :class:`IdentityEncoder`.

    The network receives (B, 3, S, S) RGB scaled to [−1, 1] ((x / 255 − 0.5) / 0.5, the
    convention of insightface's arcface_torch backbones) and returns (B, D).
    """

    def __init__(self, network: torch.nn.Module, input_size: int = ARCFACE_INPUT_SIZE) -> None:
        self.network = network.eval()
        self.input_size = input_size

    def embed(self, faces: np.ndarray) -> np.ndarray:
        device = module_device(self.network)
        batch = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).to(device, torch.float32)
        with torch.inference_mode():
            return self.network((batch / 255.0 - 0.5) / 0.5).double().cpu().numpy()


@dataclass(frozen=True)
class CSIMConfig:
    """align: align each face on five landmarks (insightface's ArcFace alignment); False resizes the
    whole frame instead (for frames that are already aligned face crops). batch_size: faces per
    encoder call."""

    align: bool = True
    batch_size: int = 32


def align_faces(frames: np.ndarray, landmarks: np.ndarray, size: int = ARCFACE_INPUT_SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8 frames + (T, 68, 2) landmarks → (T, size, size, 3) aligned uint8 faces.

    ``size`` must be a multiple of 112 or 128 (insightface's alignment templates).
    """
    from insightface.utils.face_align import norm_crop

    points = five_point_landmarks(landmarks)
    with warnings.catch_warnings():  # scikit-image's deprecation notice inside insightface, not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        return np.stack([norm_crop(frame, kps, image_size=size) for frame, kps in zip(frames, points)])


def identity_embeddings(
    frames: np.ndarray,
    encoder: IdentityEncoder,
    *,
    landmarks: np.ndarray | None = None,
    landmarker: FaceLandmarker | None = None,
    config: CSIMConfig | None = None,
    name: str = "frames",
) -> np.ndarray:
    """(T, D) unit-norm identity embeddings of T frames.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        encoder: the :class:`IdentityEncoder`.
        landmarks: (T, 68, 2) landmarks for the alignment; else found with ``landmarker``.
        landmarker: detects faces when ``landmarks`` is None and ``config.align`` is set.
    """
    config = config or CSIMConfig()
    frames = check_frames(frames, name)
    size = int(encoder.input_size)
    if config.align:
        if landmarks is None:
            if landmarker is None:
                raise InvalidArgumentError(
                    f"{name}: face alignment needs landmarks or a landmarker; pass one, or CSIMConfig(align=False) "
                    "for frames that are already aligned face crops"
                )
            landmarks = video_landmarks(frames, landmarker, name=name)
        faces = align_faces(frames, check_landmarks(landmarks, len(frames), name), size)
    else:
        faces = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in frames])
    batches = range(0, len(faces), config.batch_size)
    embeddings = np.concatenate(
        [np.asarray(encoder.embed(faces[start : start + config.batch_size]), dtype=np.float64) for start in batches]
    )
    if embeddings.ndim != 2 or len(embeddings) != len(faces):
        raise InvalidArgumentError(
            f"identity encoder {type(encoder).__name__}: returned shape {embeddings.shape} for {len(faces)} faces; "
            "it must return (B, D)"
        )
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


def csim(
    generated: np.ndarray,
    reference: np.ndarray,
    encoder: IdentityEncoder,
    *,
    generated_landmarks: np.ndarray | None = None,
    reference_landmarks: np.ndarray | None = None,
    landmarker: FaceLandmarker | None = None,
    config: CSIMConfig | None = None,
) -> float:
    """Mean cosine similarity of identity embeddings, frame t of ``generated`` against frame t of ``reference``.

    Args:
        generated, reference: (T, H, W, 3) uint8 RGB frames; the same count T, or a single
            reference frame (e.g. the source portrait) compared with every generated frame.
            Frame sizes may differ between the two.
        encoder: the :class:`IdentityEncoder` (ArcFace for the paper's CSIM).
        generated_landmarks, reference_landmarks: optional (T, 68, 2) landmarks for the alignment.
        landmarker: finds the landmarks that are not given.

    Returns:
        CSIM in [−1, 1] (1 for identical faces; higher is better).

    Raises:
        InvalidArgumentError: different frame counts, or alignment without landmarks or a landmarker.
    """
    generated = check_frames(generated, "csim generated")
    reference = check_frames(reference, "csim reference")
    if len(reference) not in (1, len(generated)):
        raise InvalidArgumentError(
            f"csim: {len(generated)} generated frames but {len(reference)} reference frames; give the same number "
            "(cut both to the shorter video) or one reference image"
        )
    kwargs = {"encoder": encoder, "landmarker": landmarker, "config": config}
    generated_embeddings = identity_embeddings(
        generated, landmarks=generated_landmarks, name="csim generated", **kwargs
    )
    reference_embeddings = identity_embeddings(
        reference, landmarks=reference_landmarks, name="csim reference", **kwargs
    )
    if generated_embeddings.shape[1] != reference_embeddings.shape[1]:
        raise InvalidArgumentError("csim: the encoder returned embeddings of different sizes for the two inputs")
    return float(np.mean(np.sum(generated_embeddings * reference_embeddings, axis=1)))
