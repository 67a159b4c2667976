"""Official-layout files at full size -> load_official_components -> the golden outputs.

The files are written with :func:`tavce.testing.official_golden_state` (each tensor
seeded by its key inside its sub-model, as the golden cases seed theirs), laid out in
a Hugging Face cache and loaded through the Hub path with downloading off. The
golden checks in ``tests/golden/checks`` then run on the converted modules: each
check's module builder is replaced by "take this component from the converted set",
so inputs are fed and outputs compared exactly as in the golden suite.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tavce.components import load_components
from tavce.convert.official import OfficialComponents, load_official_components
from tavce.testing import official_golden_state, write_official_file
from tests.golden.harness import GoldenCase, compare_case
from tests.golden.harness import GOLDEN_DIR
from tests.helpers import lay_out_hub_cache

pytestmark = pytest.mark.slow

REPO = "vinthony/SadTalker-V002rc"
SADTALKER_FILES = ("SadTalker_V0.0.2_256.safetensors", "mapping_00229-model.pth.tar", "mapping_00109-model.pth.tar")
TAVCE_FILES = ("tavce_correlation_epoch_N.pth", "tavce_facerender_latest.pth")


def _salt() -> int:
    """The salt the golden cases were recorded with (they share one; checked per case below)."""
    return GoldenCase.load(GOLDEN_DIR, "mapping").salt


@pytest.fixture(scope="module")
def official_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(HF cache folder with the SadTalker files of REPO, folder with the TAVCE files)."""
    cache = tmp_path_factory.mktemp("hf-cache")
    snapshot = lay_out_hub_cache(cache, REPO, {".gitattributes": b""})
    for filename in SADTALKER_FILES:
        write_official_file(snapshot / filename, official_golden_state(filename, _salt()))
    tavce_folder = tmp_path_factory.mktemp("tavce-weights")
    for filename in TAVCE_FILES:
        write_official_file(tavce_folder / filename, official_golden_state(filename, _salt()))
    return cache, tavce_folder


@pytest.fixture(scope="module")
def sadtalker(official_cache) -> OfficialComponents:
    cache, _ = official_cache
    return load_official_components(REPO, full_mode=True, cache_dir=cache, local_files_only=True)


@pytest.fixture(scope="module")
def tavce_components(official_cache) -> OfficialComponents:
    cache, tavce_folder = official_cache
    return load_official_components(
        REPO,
        cache_dir=cache,
        local_files_only=True,
        tavce_correlation=tavce_folder / TAVCE_FILES[0],
        tavce_facerender=tavce_folder / TAVCE_FILES[1],
    )


# case -> (check module, check function, function replaced in that module, which converted set, what it returns).
# The replaced function is the check's module builder, or -- where the check builds the module inline --
# its converter, which then hands over the converted component's own weights.
COVERED: dict[str, tuple[str, str, str, str, Callable[[OfficialComponents], object]]] = {
    "audio2exp": (
        "audio2coeff", "check_audio2exp", "convert_audio2exp", "sadtalker",
        lambda c: dict(c.audio2coeff.expression_net.state_dict()),
    ),
    "audio2pose": (
        "audio2coeff", "check_audio2pose", "convert_audio2pose", "sadtalker",
        lambda c: dict(c.audio2coeff.pose_vae.state_dict()),
    ),
    "audio2pose_short": (
        "audio2coeff", "check_audio2pose", "convert_audio2pose", "sadtalker",
        lambda c: dict(c.audio2coeff.pose_vae.state_dict()),
    ),
    "face_recon": ("preprocess", "check_face_recon", "_face_recon_from_case", "sadtalker", lambda c: c.preprocessor.face_recon),
    "generator_small": (
        "renderer", "check_generator", "_inference_generator", "sadtalker", lambda c: c.renderer.generator
    ),
    "generator_cerl_small": (
        "renderer", "check_generator", "_inference_generator", "tavce", lambda c: c.renderer.generator
    ),
    "tavc_audio_encoder": (
        "tavc", "check_audio_encoder", "_audio_encoder", "tavce", lambda c: c.metric.audio_encoder
    ),
    "tavc_image_encoder": (
        "tavc", "check_image_encoder", "convert_mouth_encoder", "tavce",
        lambda c: dict(c.metric.mouth_encoder.state_dict()),
    ),
    "audio_correlation": (
        "tavc", "check_audio_correlation", "_audio_encoder", "tavce", lambda c: c.metric.audio_encoder
    ),
}


@pytest.mark.parametrize("case_name", sorted(COVERED))
def test_converted_components_reproduce_golden_cases(
    case_name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_name, check_name, builder, which, component = COVERED[case_name]
    case = GoldenCase.load(GOLDEN_DIR, case_name)
    if case.salt != _salt():
        pytest.skip(f"{case_name}: recorded with salt {case.salt}, the official files with {_salt()}")
    checks = importlib.import_module(f"tests.golden.checks.{module_name}")
    if not hasattr(checks, builder):
        pytest.skip(f"tests.golden.checks.{module_name}.{builder} not written yet")
    converted = request.getfixturevalue("sadtalker" if which == "sadtalker" else "tavce_components")
    monkeypatch.setattr(checks, builder, lambda *args, **kwargs: component(converted))
    errors = compare_case(case, getattr(checks, check_name)(case))
    failed = [f"{e.output}: {e.measure} {e.error:.3g} > {e.tolerance:.3g}" for e in errors if not e.ok]
    assert errors and not failed, failed


def test_cerl_is_on_exactly_with_tavce_weights(sadtalker, tavce_components) -> None:
    assert not sadtalker.cerl and not sadtalker.renderer.has_cerl and sadtalker.metric is None
    assert tavce_components.cerl and tavce_components.renderer.has_cerl
    assert sadtalker.renderer.full_mode_mapping.config.coeff_dim == 73
    assert sadtalker.renderer.mapping.config.coeff_dim == 70
    assert tavce_components.renderer.full_mode_mapping is None  # TAVCE's 70-input MappingNet serves every mode
    assert sadtalker.components["metric"] is None and tavce_components.components["metric"] is not None


def test_convert_command_writes_a_bit_exact_tavce_folder(official_cache, sadtalker, tmp_path: Path) -> None:
    from tavce.cli import main

    cache, _ = official_cache
    output = tmp_path / "weights"
    assert main(["convert", REPO, "-o", str(output), "--offline", "--cache-dir", str(cache)]) == 0
    loaded, preprocessing = load_components(output)
    assert preprocessing["sample_rate"] == 16000 and preprocessing["crop_size"] == 256
    present = {name: component for name, component in sadtalker.components.items() if component is not None}
    assert set(loaded) == set(present) == {"preprocessor", "audio2coeff", "renderer"}
    for name, component in present.items():
        ours, theirs = loaded[name].state_dict(), component.state_dict()
        assert list(ours) == list(theirs)
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs), name
    config = json.loads((output / "pipeline_config.json").read_text())
    assert config["provenance"]["cerl"] is False and config["provenance"]["source"] == REPO
    assert "SadTalker_V0.0.2_256.safetensors" in (output / "README.md").read_text()
