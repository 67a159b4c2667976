"""Golden checks for the face enhancer: GFPGAN v1.4, ParseNet, and the alignment / paste-back geometry.

Weights go original names -> :mod:`tavce.convert.enhancer` -> strict load; sizes come
from each case's recorded constructor arguments. The GFPGAN cases were recorded with
the registered noise buffers, which is what ``generator=None`` uses.
"""

from __future__ import annotations

import numpy as np
import torch

from tavce.convert.enhancer import (
    convert_gfpgan,
    convert_parsenet,
    gfpgan_config_from_original,
    parsenet_config_from_original,
)
from tavce.models.base import load_state_dict_strict
from tavce.models.enhancer import GFPGAN, ParseNet
from tavce.models.enhancer.face_geometry import BORDER_RGB, align_face, alignment_matrix, inverse_alignment, paste_face
from tests.golden.harness import CaseResult, GoldenCase

LABEL_MARGIN = 1e-3
"""Labels are compared where the recorded top-two logit margin exceeds this (smaller margins are float32 ties)."""


def check_gfpgan(case: GoldenCase) -> CaseResult:
    """GFPGANv1Clean(face, return_rgb=True, randomize_noise=False): image, style code, U-Net RGB read-outs."""
    module = case.meta["modules"]["gfpgan"]
    network = GFPGAN(gfpgan_config_from_original(module["constructor_kwargs"]))
    load_state_dict_strict(network, convert_gfpgan(case.only_state_dict(), source=case.name), source=case.name)
    faces = (case.inputs["face_uint8"].float() / 255 - 0.5) / 0.5
    with torch.inference_mode():
        output = network.eval()(faces, intermediate_rgb=True)
    outputs = {"image": output.image, "style_code": output.style_code}
    outputs |= {f"rgb_{level}": rgb for level, rgb in enumerate(output.intermediate_rgb)}
    return CaseResult(outputs={name: outputs[name] for name in case.outputs})


def check_parsenet(case: GoldenCase) -> CaseResult:
    """ParseNet(face): parsing logits, image, and argmax labels where the recorded logits are not tied."""
    module = case.meta["modules"]["parsenet"]
    network = ParseNet(parsenet_config_from_original(module["constructor_kwargs"]))
    load_state_dict_strict(network, convert_parsenet(case.only_state_dict(), source=case.name), source=case.name)
    with torch.inference_mode():
        logits, image = network.eval()(case.inputs["face"])
    top_two = case.outputs["parse_map"].topk(2, dim=1).values
    untied = (top_two[:, 0] - top_two[:, 1]) > LABEL_MARGIN
    return CaseResult(
        outputs={"parse_map": logits, "image": image, "labels": logits.argmax(dim=1)},
        compared_where={"labels": (untied, f"top-two logit margin > {LABEL_MARGIN}")},
    )


def check_face_restore_geometry(case: GoldenCase) -> CaseResult:
    """Alignment matrix, aligned crop, inverse matrix and the square-mask paste-back (BGR frames)."""
    upscale = case.outputs["pasted_bgr"].shape[0] // case.inputs["image_bgr"].shape[0]
    frame = case.inputs["image_bgr"].numpy()
    face = case.inputs["restored_face_bgr"].numpy()
    size = face.shape[0]
    matrix = alignment_matrix(case.inputs["landmarks_5"].numpy(), size)
    return CaseResult(
        outputs={
            "affine_matrix": torch.from_numpy(matrix),
            "cropped_face_bgr": torch.from_numpy(align_face(frame, matrix, size, border=BORDER_RGB[::-1])),
            "inverse_affine": torch.from_numpy(inverse_alignment(matrix, upscale)),
            "pasted_bgr": torch.from_numpy(np.ascontiguousarray(paste_face(frame, face, matrix, upscale))),
        }
    )
