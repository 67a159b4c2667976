"""Official SadTalker / TAVCE checkpoint files -> ready tavce components.

:func:`load_official_components` is what ``TalkingHeadPipeline.from_pretrained`` and
``tavce convert`` call for a folder or Hub repository in the official layout
(``SadTalker_V0.0.2_<size>.safetensors`` + ``mapping_*.pth.tar``). It fetches only
the files the chosen size and mode need, converts them (:mod:`tavce.convert.files`)
and loads every component strictly. TAVCE's two checkpoints are optional local
files: with them the renderer runs CERL, without them it is SadTalker's renderer.

A tavce folder or repository (``pipeline_config.json``) is recognised by
:func:`~tavce.convert.layout.locate_weights` and read with
:func:`tavce.components.load_components` instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tavce import DEFAULT_REPO
from tavce.convert.assemble import build_audio2coeff, build_enhancer, build_metric, build_preprocessor, build_renderer
from tavce.convert.files import FILE_CONVERTERS, StateDict
from tavce.convert.layout import detect_layout, is_tavce_folder, locate_weights
from tavce.components import COMPONENT_NAMES
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, WeightsNotFoundError
from tavce.hub import load_legacy_checkpoint, load_safetensors, resolve_weights
from tavce.models.base import TavceModule
from tavce.types import RENDER_SIZES

__all__ = [
    "SIZES",
    "OfficialComponents",
    "detect_layout",
    "is_tavce_folder",
    "locate_weights",
    "official_filenames",
    "load_official_file",
    "load_official_components",
    "ENHANCER_FILES",
    "load_enhancer",
    "check_official_arguments",
    "load_full_mode_mapping",
]

logger = logging.getLogger(__name__)

SIZES = RENDER_SIZES  # the official renderers exist at these sizes only
MAPPING_CROP_FILE = "mapping_00229-model.pth.tar"  # 70-dim MappingNet: crop, extcrop, resize
MAPPING_FULL_FILE = "mapping_00109-model.pth.tar"  # 73-dim MappingNet: full, extfull
TAVCE_CORRELATION_FILE = "tavce_correlation_epoch_N.pth"  # manifest name; the real file name varies
TAVCE_FACERENDER_FILE = "tavce_facerender_latest.pth"
ENHANCER_FILES = ("GFPGANv1.4.pth", "parsing_parsenet.pth")
"""The face enhancer's official files: GFPGAN v1.4 (TencentARC/GFPGAN release v1.3.0) and facexlib's ParseNet."""


def sadtalker_filename(size: int) -> str:
    """``SadTalker_V0.0.2_<size>.safetensors``; size is 256 or 512."""
    if size not in SIZES:
        raise InvalidArgumentError(f"size={size}: the official renderers exist at 256 and 512 pixels only")
    return f"SadTalker_V0.0.2_{size}.safetensors"


def official_filenames(size: int = 256, full_mode: bool = False, tavce: bool = False) -> list[str]:
    """The official files one size / mode needs.

    The full-mode MappingNet only when ``full_mode``; the 70-dim MappingNet only without
    TAVCE weights (the TAVCE face-render checkpoint brings its own).
    """
    return (
        [sadtalker_filename(size)]
        + ([] if tavce else [MAPPING_CROP_FILE])
        + ([MAPPING_FULL_FILE] if full_mode else [])
    )


def check_official_arguments(
    size: int | None, tavce_correlation: str | Path | None, tavce_facerender: str | Path | None
) -> None:
    """Refuse a size the renderers lack, one TAVCE file without the other, a missing TAVCE file, or TAVCE at 512.

    Raises:
        InvalidArgumentError: naming the argument and the fix (nothing is read or downloaded).
    """
    if size is not None and size not in SIZES:
        raise InvalidArgumentError(f"size={size!r}: the official renderers exist at 256 and 512 pixels only")
    if (tavce_correlation is None) != (tavce_facerender is None):
        given, absent = ("tavce_correlation", "tavce_facerender")
        if tavce_correlation is None:
            given, absent = absent, given
        raise InvalidArgumentError(
            f"{given} without {absent}: TAVCE weights come in pairs (the correlation checkpoint and the "
            "face-render checkpoint); give both to switch CERL on, or neither to render without CERL"
        )
    if tavce_facerender is not None and size not in (None, 256):
        raise InvalidArgumentError(
            f"size={size}: the TAVCE face renderer was trained at 256x256 only; use size=256 with the TAVCE "
            "weights, or leave them out to render at 512 with SadTalker's renderer (no CERL)"
        )
    for path in (tavce_correlation, tavce_facerender):
        if path is not None and not Path(path).expanduser().is_file():
            raise InvalidArgumentError(f"{path}: TAVCE weights file not found; check the path")


def load_full_mode_mapping(
    location: str | Path = DEFAULT_REPO,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> TavceModule:
    """The 73-coefficient MappingNet of the full / extfull modes (``mapping_00109``), fetched when first needed.

    Raises:
        WeightsNotFoundError: the file is missing (locally, in the cache when offline, or on the Hub).
    """
    from tavce.convert.assemble import build_mapping

    folder = resolve_weights(
        location, MAPPING_FULL_FILE, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
    )
    return build_mapping(load_official_file(folder / MAPPING_FULL_FILE)["mapping"], "full-mode MappingNet")


def load_official_file(path: str | Path, filename: str | None = None) -> dict[str, StateDict]:
    """Read one official file safely and convert it: ``{part: tavce state dict}``.

    Args:
        path: the file; ``.safetensors`` files are read as tensors, every other file with
            ``torch.load(weights_only=True)`` (a pickle that would run code is refused).
        filename: which official file it is (a key of :data:`tavce.convert.files.FILE_CONVERTERS`);
            default: the file's own name.
    """
    path = Path(path)
    filename = filename or path.name
    if filename not in FILE_CONVERTERS:
        raise InvalidArgumentError(
            f"{path}: unknown official file {filename!r}; pass filename= one of {', '.join(FILE_CONVERTERS)}"
        )
    checkpoint = load_safetensors(path) if path.suffix == ".safetensors" else load_legacy_checkpoint(path)
    try:
        return FILE_CONVERTERS[filename](checkpoint, filename)
    except IncompatibleWeightsError as error:
        raise IncompatibleWeightsError(f"{path}: {error}") from error


@dataclass
class OfficialComponents:
    """The pipeline's components built from official files.

    Attributes:
        preprocessor: ``FacePreprocessor`` holding the 3DMM coefficient network.
        audio2coeff: ExpNet + PoseVAE (``SadTalkerAudio2Coeff``).
        renderer: ``CERLRenderer``; CERL is on only with TAVCE face-render weights, and its
            73-input full-mode MappingNet is present only when loaded (and never with TAVCE).
        metric: the TAVC metric (``TAVCMetric``) of the TAVCE correlation checkpoint, or None.
        sources: the files the components came from (recorded in the tavce folder's provenance).
    """

    preprocessor: TavceModule
    audio2coeff: TavceModule
    renderer: TavceModule
    metric: TavceModule | None = None
    enhancer: TavceModule | None = None
    sources: tuple[str, ...] = ()

    @property
    def cerl(self) -> bool:
        """Whether the renderer runs CERL (TAVCE weights were given)."""
        return self.metric is not None

    @property
    def components(self) -> dict[str, TavceModule | None]:
        """Pipeline component name -> module (``TalkingHeadPipeline(**official.components)``)."""
        return {name: getattr(self, name) for name in COMPONENT_NAMES}


def load_official_components(
    location: str | Path = DEFAULT_REPO,
    *,
    size: int = 256,
    full_mode: bool = False,
    tavce_correlation: str | Path | None = None,
    tavce_facerender: str | Path | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> OfficialComponents:
    """Build every component from official files.

    Args:
        location: folder holding the official files, or Hub repository id (default
            ``vinthony/SadTalker-V002rc``; downloaded once into the Hugging Face cache).
        size: face render resolution, 256 or 512 (picks ``SadTalker_V0.0.2_<size>.safetensors``).
        full_mode: also load the 73-dim MappingNet (``mapping_00109``) of the full / extfull modes
            (ignored with TAVCE weights: TAVCE's renderer was fine-tuned with its own 70-dim one).
        tavce_correlation: TAVCE correlation checkpoint (the TAVC metric; its audio encoder drives CERL).
        tavce_facerender: TAVCE face-render checkpoint (MappingNet, keypoint detector and
            generator with the CERL fusion layers). Give both TAVCE files or neither.
        revision, cache_dir, local_files_only: Hub options, see :func:`tavce.hub.resolve_weights`.

    Raises:
        WeightsNotFoundError: a file is missing (locally, in the cache when offline, or on the Hub).
        IncompatibleWeightsError: a file is unsafe, of another layout, or does not fit its component.
        InvalidArgumentError: size is not 256/512, only one TAVCE file is given, or TAVCE
            weights are combined with size 512 (TAVCE was trained at 256 only).
    """
    check_official_arguments(size, tavce_correlation, tavce_facerender)
    full_mode = full_mode and tavce_facerender is None
    filenames = official_filenames(size, full_mode, tavce=tavce_facerender is not None)
    folder = resolve_weights(
        location, filenames, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
    )
    local = Path(str(location)).expanduser().is_dir()
    sources = [str(folder / name) if local else f"{location}/{name}" for name in filenames]
    # Small files first, so that a bad one fails before the 700 MB safetensors is read.
    full_mode_mapping = load_official_file(folder / MAPPING_FULL_FILE)["mapping"] if full_mode else None
    metric = None
    if tavce_facerender is not None and tavce_correlation is not None:  # both or neither, checked above
        metric = build_metric(load_official_file(tavce_correlation, TAVCE_CORRELATION_FILE))
        renderer_parts = load_official_file(tavce_facerender, TAVCE_FACERENDER_FILE)
        sources += [str(tavce_correlation), str(tavce_facerender)]
    else:
        logger.info(
            "no TAVCE weights given: rendering with SadTalker's renderer, CERL off "
            "(pass tavce_correlation= and tavce_facerender= to switch it on)"
        )
        renderer_parts = load_official_file(folder / MAPPING_CROP_FILE)
    sadtalker = load_official_file(folder / filenames[0])
    if tavce_facerender is None:
        renderer_parts |= {part: sadtalker[part] for part in ("kp_detector", "generator")}
    return OfficialComponents(
        preprocessor=build_preprocessor(sadtalker["face_recon"]),
        audio2coeff=build_audio2coeff(sadtalker["audio2exp"], sadtalker["audio2pose"]),
        renderer=build_renderer(renderer_parts, full_mode_mapping=full_mode_mapping, image_size=size),
        metric=metric,
        sources=tuple(sources),
    )


def load_enhancer(
    location: str | Path,
    *,
    upscale: int = 2,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> TavceModule:
    """The face enhancer (:class:`~tavce.models.enhancer.FaceEnhancer`) from its weights.

    Args:
        location: a folder holding ``GFPGANv1.4.pth`` and ``parsing_parsenet.pth``; the
            ``GFPGANv1.4.pth`` file itself (``parsing_parsenet.pth`` beside it); an enhancer
            folder written by ``save_pretrained``; or a Hub repository id holding the two files.
        upscale: the enhanced frames are ``upscale`` times larger (1 or 2).
        revision, cache_dir, local_files_only: Hub options, see :func:`tavce.hub.resolve_weights`.

    Raises:
        WeightsNotFoundError: a file is missing (the message says where the official files are published).
        IncompatibleWeightsError: a file is unsafe, holds something other than tensors, or does not fit.
    """
    from tavce.models.base import CONFIG_NAME
    from tavce.models.enhancer import FaceEnhancer

    local = Path(str(location)).expanduser()
    restorer_file = ENHANCER_FILES[0]
    if local.is_file():
        local, restorer_file = local.parent, local.name
    if (local / CONFIG_NAME).is_file():
        return FaceEnhancer.from_pretrained(local).with_upscale(upscale)
    try:
        folder = resolve_weights(
            local if local.is_dir() else location,
            [restorer_file, ENHANCER_FILES[1]],
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
    except WeightsNotFoundError as error:
        raise WeightsNotFoundError(
            f"{error}. The enhancer's official files are GFPGANv1.4.pth (github.com/TencentARC/GFPGAN, release "
            "v1.3.0) and parsing_parsenet.pth (github.com/xinntao/facexlib, release v0.2.2); download them into "
            "one folder and pass that folder"
        ) from error
    restorer = load_official_file(folder / restorer_file, ENHANCER_FILES[0])["restorer"]
    parser = load_official_file(folder / ENHANCER_FILES[1])["parser"]
    return build_enhancer(restorer, parser, upscale=upscale, source=str(folder))
