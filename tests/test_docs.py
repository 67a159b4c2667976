"""The documentation says what the code does: every ```python snippet of README.md and docs/*.md
runs (on tiny weights), and every Markdown table is well formed.

A snippet that needs real weights or hardware the tests do not have is tagged on the line
before it with ``<!-- snippet: skip (reason) -->``. The snippets of one page run in order
in one namespace (a later snippet may use an earlier one's names), in a folder holding the
files they name; ``from_pretrained()`` without a location loads the tiny weights.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import soundfile

import tavce
from tavce.testing import make_synthetic_videos
from tavce.types import SAMPLE_RATE
from tests.helpers import speech_like

REPOSITORY = Path(__file__).resolve().parents[1]
PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
SKIP_TAG = re.compile(r"<!--\s*snippet:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
SNIPPET = re.compile(r"^```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason or None) of each ```python block of a page."""
    text = page.read_text()
    found = []
    for match in SNIPPET.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        tag = SKIP_TAG.fullmatch(before.strip())
        found.append((text.count("\n", 0, match.start()) + 1, match.group("code"), tag and tag["reason"]))
    return found


def table_problems(text: str) -> list[str]:
    """Rows of a Markdown table that GitHub would not show as one table (outside code fences)."""

    def cells(row: str) -> int:
        body = row.strip().removeprefix("|")
        body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
        return len(re.split(r"(?<!\\)\|", body))

    problems, block, fenced = [], [], False
    for number, line in enumerate([*text.split("\n"), ""], 1):
        fenced ^= line.startswith("```")
        if not fenced and line.lstrip().startswith("|"):
            block.append((number, line))
            continue
        if block:
            (first, header), *rows = block
            if not rows or not re.fullmatch(r"\s*\|?(\s*:?-+:?\s*\|)+\s*(:?-+:?)?\s*", rows[0][1]):
                problems.append(f"line {first}: table rows without a header and separator (a blank line inside a table?)")
            else:
                problems += [f"line {n}: {cells(row)} cells, the header has {cells(header)}"
                             for n, row in rows if cells(row) != cells(header)]  # fmt: skip
            if not block[-1][1].rstrip().endswith("|"):
                problems.append(f"line {block[-1][0]}: a table row broken over two lines")
            block = []
    return problems


@pytest.mark.parametrize("page", PAGES + [REPOSITORY / "examples" / "README.md"], ids=lambda page: page.name)
def test_markdown_tables_are_well_formed(page: Path) -> None:
    assert table_problems(page.read_text()) == []


def test_table_check_finds_broken_tables() -> None:
    good = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert table_problems(good) == []
    assert table_problems("| a | b |\n|---|---|\n\n| 1 | 2 |\n")  # blank line inside
    assert table_problems("| a | b |\n|---|---|\n| 1\n 2 |\n")  # row broken over two lines
    assert table_problems("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n")  # cell count


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path, portrait) -> Path:
    """A folder holding every file the snippets name, with tiny weights and short clips."""
    folder = tmp_path_factory.mktemp("docs")
    short = speech_like(0.4).samples  # 10 frames
    for name in ("speech.wav", "other.wav", "examples/speech.wav"):
        (folder / name).parent.mkdir(exist_ok=True)
        soundfile.write(folder / name, short, SAMPLE_RATE)
    shutil.copy(REPOSITORY / "examples" / "portrait.jpg", folder / "examples" / "portrait.jpg")
    shutil.copy(portrait[0], folder / "portrait.png")
    iio.imwrite(folder / "photo.jpg", iio.imread(portrait[0]))
    for name in ("tavce-weights", "weights-256", "weights-tavce", "weights"):
        shutil.copytree(tiny_weights, folder / name)
    make_synthetic_videos(folder / "videos", n=1, seconds=0.5)
    return folder


def _namespace(tiny_weights: Path, portrait) -> dict:
    """Names the fragments of the pages take as given (a pipeline, a prepared source, a renderer, ...)."""
    from typing import Any, Protocol

    import torch

    from tavce import TalkingHeadPipeline
    from tavce.models.audio2coeff import Audio2CoeffOptions
    from tavce.preprocess import Face, PreparedSource
    from tavce.types import AudioClip, AudioRelationship, AudioWindows, MotionCoefficients

    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights)
    result = pipe(portrait[0], "speech.wav", face_box=portrait[1], seed=0, progress=False)
    return {
        "torch": torch, "np": np, "Any": Any, "Protocol": Protocol, "Face": Face,
        "PreparedSource": PreparedSource, "Audio2CoeffOptions": Audio2CoeffOptions, "AudioWindows": AudioWindows,
        "MotionCoefficients": MotionCoefficients, "AudioRelationship": AudioRelationship,
        "TalkingHeadPipeline": TalkingHeadPipeline, "pipe": pipe, "source": result.source,
        "renderer": pipe.renderer, "my_renderer": pipe.renderer, "MyRenderer": type(pipe.renderer),
        "coefficients": result.coefficients, "relationship": result.relationship, "start": 0, "stop": 2,
        "clip": AudioClip(samples=speech_like(0.4).samples, source="<speech>"),
        "frames": [np.zeros((64, 64, 3), np.uint8)] * 3,
        "face_recon_net": pipe.preprocessor.face_recon,
    }  # fmt: skip


@pytest.mark.parametrize(
    "page", [page for page in PAGES if any(skip is None for _, _, skip in snippets(page))], ids=lambda page: page.name
)
def test_python_snippets_run(page: Path, workspace: Path, tiny_weights: Path, portrait, monkeypatch) -> None:
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(tavce, "DEFAULT_REPO", str(tiny_weights))  # from_pretrained() with no location
    namespace = _namespace(tiny_weights, portrait)
    for line, code, skip in snippets(page):
        if skip:
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"{page.relative_to(REPOSITORY)} snippet at line {line} fails: {type(error).__name__}: {error}")


def test_skipped_snippets_give_a_reason() -> None:
    for page in PAGES:
        for line, _, skip in snippets(page):
            assert skip is None or len(skip.split()) >= 3, f"{page.name}:{line}: say why the snippet is skipped"
