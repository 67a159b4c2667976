"""What a stage-2 run leaves: an inference renderer from the trained networks, in a tavce weights folder.

``OUT/weights`` holds the trained ``renderer`` (spectral norm folded, eval mode), the frozen
stage-1 ``metric`` and, from a base folder, the ``preprocessor`` and ``audio2coeff``: then
``tavce generate --weights OUT/weights`` and ``TalkingHeadPipeline.from_pretrained`` render
with CERL on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from tavce.models.renderer.generator import load_inference_generator
from tavce.models.renderer.keypoint_detector import KeypointDetector
from tavce.models.renderer.mapping_net import MappingNet
from tavce.models.renderer.renderer import CERLRenderer

__all__ = ["WEIGHTS_DIR", "inference_renderer", "save_trained_weights"]

logger = logging.getLogger(__name__)

WEIGHTS_DIR = "weights"
"""The trained weights folder in a stage-2 run folder."""


def inference_renderer(modules: Any, image_size: int) -> CERLRenderer:
    """A :class:`CERLRenderer` (eval mode, spectral norm folded) with copies of the training modules' weights.

    Args:
        modules: :class:`~tavce.training.renderer.RendererTrainingModules` (keypoint detector, MappingNet, generator).
        image_size: S of the frames the renderer was trained on.
    """
    keypoint_detector = KeypointDetector(modules.keypoint_detector.config)
    keypoint_detector.load_state_dict(modules.keypoint_detector.state_dict())
    mapping = MappingNet(modules.mapping.config)
    mapping.load_state_dict(modules.mapping.state_dict())
    generator_state = {key: value.detach().clone() for key, value in modules.generator.state_dict().items()}
    generator = load_inference_generator(generator_state, modules.generator.config, source="trained generator")
    return CERLRenderer.from_modules(keypoint_detector, mapping, generator, image_size=image_size)


def save_trained_weights(
    folder: str | Path,
    renderer: CERLRenderer,
    metric: nn.Module | None,
    image_size: int,
    *,
    base: str | Path | Mapping[str, Any] | None,
    provenance: Mapping[str, Any],
) -> Path:
    """Write a tavce weights folder with ``renderer`` and ``metric`` (+ ``base``'s preprocessor and Audio2Coeff).

    Args:
        base: a tavce folder or a mapping of components; None stores the renderer and metric only
            (a warning says how to load such a folder).
    """
    from tavce.components import load_components, save_components
    from tavce.convert.export import preprocessing_constants

    preprocessing = preprocessing_constants(image_size)
    others: dict[str, Any] = {}
    if isinstance(base, (str, Path)):
        others, preprocessing = load_components(base, skip={"renderer", "metric"})
        preprocessing = {**preprocessing, "crop_size": image_size}
    elif base is not None:
        others = {name: base[name] for name in ("preprocessor", "audio2coeff") if base.get(name) is not None}
    else:
        logger.warning(
            "no base weights folder: %s holds the renderer and metric only; pass --base WEIGHTS (a tavce weights "
            "folder whose preprocessor and Audio2Coeff to store beside them) so that `tavce generate --weights` "
            "can use it",
            folder,
        )
    components = {**others, "renderer": renderer}
    if metric is not None:
        components["metric"] = metric
    written = save_components(folder, components, preprocessing, provenance=dict(provenance))
    logger.info("trained renderer written to %s: render with `tavce generate PHOTO AUDIO -o OUT.mp4 --weights %s`", written, written)
    return written
