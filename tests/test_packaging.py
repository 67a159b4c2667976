"""What a fresh install relies on: light imports for `tavce --help` and `import tavce`, extras that
match their names, one version source, typed package data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import tavce
from tavce import _extras, cli

ROOT = Path(__file__).resolve().parents[1]

# torch and the base install's other large libraries (seconds to import), and every extra's modules.
HEAVY_MODULES = ("torch", "cv2", "insightface", "onnxruntime", "dlib", "numba", "scipy")
EXTRA_MODULES = ("gradio", "ray", "tensorboard", "matplotlib", "playwright")


def _modules_imported_by(code: str) -> dict[str, list[str]]:
    """Run ``code`` in a fresh interpreter; it fills ``found[label]`` with heavy modules then loaded."""
    prelude = (
        "import contextlib, io, json, sys\n"
        f"WATCHED = {HEAVY_MODULES + EXTRA_MODULES!r}\n"
        "found = {}\n"
        "def loaded(): return sorted(name for name in WATCHED if name in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", prelude + code + "\nprint(json.dumps(found))"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_import_tavce_loads_no_heavy_library_or_extra() -> None:
    # The package's public names are imported on first use (tavce.__getattr__).
    found = _modules_imported_by("import tavce\nfound['import tavce'] = loaded()")
    assert found == {"import tavce": []}


def test_help_of_tavce_and_every_command_loads_neither_torch_nor_an_extra() -> None:
    # Each command's --help in turn, so a failure names the command whose module imports too much.
    names = [subcommand.name for subcommand in cli.available_subcommands()]
    code = (
        "from tavce import cli\n"
        f"for argv in [['--help']] + [[name, '--help'] for name in {names!r}]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert cli.main(argv) == 0, argv\n"
        "    found['tavce ' + ' '.join(argv)] = loaded()\n"
    )
    found = _modules_imported_by(code)
    assert len(found) == len(names) + 1
    assert {argv: modules for argv, modules in found.items() if modules} == {}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_extra_has_a_missing_extra_message_and_all_brings_every_one() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    user_extras = set(extras) - {"all", "test"}
    assert set(_extras.EXTRAS) == user_extras
    assert extras["all"] == [f"tavce[{','.join(sorted(user_extras))}]"]


def test_one_opencv_distribution_is_required() -> None:
    requirements = _pyproject()["project"]["dependencies"]
    opencv = [requirement for requirement in requirements if requirement.lower().startswith("opencv")]
    # insightface requires the GUI build; requiring -headless as well would install two cv2 copies.
    assert [re.split(r"[<>=!~ ;\[]", requirement)[0] for requirement in opencv] == ["opencv-python"]


def test_version_has_one_source_and_the_changelog_has_sections_by_version() -> None:
    project = _pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tavce.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", tavce.__version__)
    headings = re.findall(r"^## (.*)$", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert headings[0] == "[Unreleased]"
    assert all(re.fullmatch(r"\[\d+\.\d+\.\d+\S*\] - \d{4}-\d{2}-\d{2}", heading) for heading in headings[1:])


def test_py_typed_marker_is_package_data() -> None:
    assert (ROOT / "tavce" / "py.typed").is_file()
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["tavce"]
