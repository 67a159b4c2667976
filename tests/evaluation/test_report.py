"""The report: means over the videos that have a score, JSON, the printed table; video pairing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tavce.errors import InvalidArgumentError
from tavce.evaluation import EvaluationReport, VideoScores, pair_videos


def _report() -> EvaluationReport:
    return EvaluationReport(
        videos=(
            VideoScores("a", 10, csim=0.8, lse_d=7.0, lse_c=6.0, sync_offset=0, tavc=None),
            VideoScores("bb", 20, csim=0.6, lse_d=9.0, lse_c=float("nan"), sync_offset=-2, tavc=None),
        ),
        fid=12.5,
        backbones={"feature_extractor": "pt_inception.pth"},
    )


def test_means_skip_missing_scores() -> None:
    means = _report().means()
    assert means["csim"] == pytest.approx(0.7) and means["lse_d"] == pytest.approx(8.0) and means["tavc"] is None


def test_json_and_table(tmp_path: Path) -> None:
    data = json.loads(_report().save(tmp_path / "out" / "report.json").read_text())
    assert data["summary"]["fid"] == 12.5 and data["summary"]["frames"] == 30
    assert data["videos"][1]["lse_c"] is None  # NaN is not JSON
    lines = _report().format_table().splitlines()
    assert lines[0].split()[:3] == ["video", "frames", "CSIM↑"]
    assert lines[2].split() == ["a", "10", "0.8000", "7.0000", "6.0000", "-", "0"]
    assert lines[-2].split()[:3] == ["mean", "30", "0.7000"] and lines[-1].endswith("12.5000")


def test_pairing_by_name(tmp_path: Path) -> None:
    for folder, names in (("gen", ["x", "y"]), ("ref", ["y", "x", "z"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.mp4").write_bytes(b"")
    (tmp_path / "ref" / "notes.txt").write_text("not a video")
    pairs = pair_videos(tmp_path / "gen", tmp_path / "ref")
    assert [(pair.name, pair.reference.name) for pair in pairs] == [("x", "x.mp4"), ("y", "y.mp4")]
    with pytest.raises(InvalidArgumentError, match="z"):
        pair_videos(tmp_path / "ref", tmp_path / "gen")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        pair_videos(tmp_path / "nowhere", tmp_path / "ref")
