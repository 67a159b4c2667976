"""Golden checks for face preprocessing (reference-pipeline.md §2.4–2.6, §6): crop math, 3DMM alignment, network."""

from __future__ import annotations

import numpy as np
import torch

from tavce.convert.common import select_prefix
from tavce.convert.face_recon import FACE_RECON_PREFIX, convert_face_recon
from tavce.models.base import load_state_dict_strict
from tavce.models.face_recon.network import HEAD_NAMES
from tavce.models.face_recon import FaceReconConfig, FaceReconNet, source_coefficients, split_coefficients
from tavce.preprocess.alignment import align_for_reconstruction, flip_landmarks_y
from tavce.preprocess.crop import (
    CropMode,
    compute_crop_geometry,
    crop_frame,
    crop_working_image,
    restore_aspect_size,
)
from tavce.preprocess.standard_landmarks import STANDARD_LANDMARKS_3D, five_points, standard_five_points
from tests.golden.harness import CaseResult, GoldenCase


def _ints(values) -> torch.Tensor:
    return torch.tensor([int(v) for v in values], dtype=torch.int64)


def check_crop_align(case: GoldenCase) -> CaseResult:
    """Shrunk size, crop box, tight box, crop images and the paste/output sizes derived from them."""
    image = case.inputs["image"].numpy()
    landmarks = case.inputs["lm68"].numpy()
    image_size = (image.shape[1], image.shape[0])
    working_size = case.outputs["crop_image_256"].shape[0]
    crop = compute_crop_geometry(landmarks, image_size, CropMode.FULL)
    extended = compute_crop_geometry(landmarks, image_size, CropMode.EXTFULL)
    paste_box = crop.tight_box_in_image
    return CaseResult(
        outputs={
            "rsize": _ints(crop.resized_size),
            "crop": _ints(crop.crop_box),
            "quad": torch.tensor(crop.tight_box_float, dtype=torch.float64),
            "quad_int": _ints(crop.tight_box),
            "crop_image": torch.from_numpy(crop_frame(image, crop)),
            "crop_image_256": torch.from_numpy(crop_working_image(image, crop, working_size)),
            "ext_crop_image": torch.from_numpy(crop_frame(image, extended)),
            "crop_info_size": _ints(crop.crop_info_size),
            "paste_box": _ints(paste_box),
            # seamlessClone's centre in the original: the paste box centre, rounded down (we feather instead).
            "paste_location": _ints(((paste_box[0] + paste_box[2]) // 2, (paste_box[1] + paste_box[3]) // 2)),
            "paste_box_ext": _ints(extended.crop_box),
            "output_video_size": _ints(restore_aspect_size(crop, working_size)),
        }
    )


def check_align_img(case: GoldenCase) -> CaseResult:
    """Standard landmarks, y flip, five points, POS fit and the 224 crop."""
    image = case.inputs["image"].numpy()
    detected = case.inputs["lm68"].numpy()
    flipped = flip_landmarks_y(detected, image.shape[0])
    # A failed detection is recorded as all -1: the original then places the standard face instead.
    aligned = align_for_reconstruction(image, None if np.mean(detected) == -1 else flipped)
    return CaseResult(
        outputs={
            "lm3d_std": torch.from_numpy(standard_five_points()),
            "lm3d_all_68": torch.from_numpy(STANDARD_LANDMARKS_3D.copy()),
            "lm_flipped": torch.from_numpy(flipped),
            "lm5p": torch.from_numpy(five_points(flipped)),
            "trans_params": torch.from_numpy(aligned.trans_params),
            "trans_params_f32": torch.from_numpy(aligned.trans_params.astype(np.float32)),
            "aligned_image": torch.from_numpy(aligned.image),
            "lm_aligned": torch.from_numpy(aligned.landmarks),
        }
    )


def _face_recon_from_case(case: GoldenCase) -> FaceReconNet:
    """Recipe weights under the original names, through the converter (as from the SadTalker file)."""
    original = {FACE_RECON_PREFIX + key: value for key, value in case.only_state_dict().items()}
    converted = convert_face_recon(select_prefix(original, FACE_RECON_PREFIX))
    # Sizes read from the weights: blocks per stage, stem width and head sizes.
    stages = sorted({key.split(".")[1] for key in converted if key.startswith("backbone.layer")})
    blocks = tuple(
        1 + max(int(key.split(".")[2]) for key in converted if key.startswith(f"backbone.{stage}.")) for stage in stages
    )
    config = FaceReconConfig(
        blocks_per_stage=blocks,
        base_width=int(converted["backbone.conv1.weight"].shape[0]),
        head_dims=tuple(int(converted[f"heads.{name}.bias"].shape[0]) for name in HEAD_NAMES),
    )
    network = FaceReconNet(config)
    load_state_dict_strict(network, converted, source=case.name)
    return network.eval()


def check_face_recon(case: GoldenCase) -> CaseResult:
    """257 coefficients, their named slices and the stored 73/70-dim vectors."""
    network = _face_recon_from_case(case)
    with torch.no_grad():
        coefficients = network(case.inputs["image"])
    parts = split_coefficients(coefficients)
    stored = source_coefficients(coefficients, case.inputs["trans_params"])
    return CaseResult(
        outputs={
            "coeffs_257": coefficients,
            "id": parts["identity"],
            "exp": parts["expression"],
            "tex": parts["texture"],
            "angle": parts["angle"],
            "gamma": parts["lighting"],
            "trans": parts["translation"],
            "coeff_73": stored,
            "coeff_70": stored[:, :70],
        }
    )
