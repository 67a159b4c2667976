"""``tavce evaluate`` end to end: self-reconstruction with tiny weights, random backbones, report and table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from tavce.cli import main
from tavce.evaluation import SyncNet, SyncNetConfig
from tavce.testing import make_synthetic_videos
from tests.evaluation.backbones import TinyFaceNetwork, TinyFeatureExtractor
from tests.helpers import SyntheticFaceLandmarker

TINY_SYNCNET = SyncNetConfig(
    lip_channels=(4, 4, 4, 4, 4, 8), audio_channels=(4, 4, 4, 4, 4, 8), hidden_dim=8, embedding_dim=6
)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("references")
    make_synthetic_videos(folder, n=2, seconds=0.6, seed=7)  # 15 frames each
    return folder


@pytest.fixture(scope="module")
def backbones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    paths = {"inception": folder / "features", "arcface": folder / "face", "syncnet": folder / "syncnet"}
    TinyFeatureExtractor().save_pretrained(paths["inception"])
    TinyFaceNetwork().save_pretrained(paths["arcface"])
    SyncNet(TINY_SYNCNET).save_pretrained(paths["syncnet"])
    return paths


@pytest.fixture(autouse=True)
def synthetic_landmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tavce.commands.evaluate.make_landmarker", lambda name: SyntheticFaceLandmarker())


def _backbone_options(backbones: dict[str, Path]) -> list[str]:
    return ["--inception-weights", str(backbones["inception"]), "--arcface-model", str(backbones["arcface"]),
            "--syncnet-weights", str(backbones["syncnet"]), "--no-progress"]  # fmt: skip


def test_self_reconstruction_end_to_end(
    references: Path, backbones, tiny_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generated, report_path = tmp_path / "generated", tmp_path / "report.json"
    status = main(["evaluate", "--generated", str(generated), "--reference", str(references), "--self-reconstruction",
                   "--weights", str(tiny_weights), "--offline", "-o", str(report_path), *_backbone_options(backbones)])  # fmt: skip
    assert status == 0
    videos = sorted(generated.glob("*.mp4"))
    assert [video.name for video in videos] == ["talker_000.mp4", "talker_001.mp4"]
    assert imageio_ffmpeg.count_frames_and_secs(str(videos[0]))[0] == 15

    report = json.loads(report_path.read_text())
    assert [row["name"] for row in report["videos"]] == ["talker_000", "talker_001"]
    for row in report["videos"]:
        assert row["frames"] == 15 and -1 <= row["csim"] <= 1 and row["lse_c"] >= 0 and 0 <= row["tavc"] <= 1
        assert np.isfinite(row["lse_d"]) and isinstance(row["sync_offset"], int)
    summary = report["summary"]
    assert summary["videos"] == 2 and summary["frames"] == 30 and summary["fid"] >= 0
    assert summary["csim"] == pytest.approx(np.mean([row["csim"] for row in report["videos"]]))
    assert report["settings"]["max_frames"] == 200 and "metric" in report["backbones"]  # the pipeline's TAVC metric

    table = capsys.readouterr().out
    assert re.search(r"^talker_000\s+15\s", table, re.MULTILINE) and re.search(r"^mean\s+30\s", table, re.MULTILINE)
    assert "FID" in table and "LSE-D" in table and "TAVC" in table


def test_real_videos_against_themselves_score_fid_zero_and_csim_one(
    references: Path, backbones, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copies = tmp_path / "copies"
    shutil.copytree(references, copies)
    report_path = tmp_path / "self.json"
    assert main(["evaluate", "--generated", str(copies), "--reference", str(references), "-o", str(report_path),
                 *_backbone_options(backbones)]) == 0  # fmt: skip
    summary = json.loads(report_path.read_text())["summary"]
    assert abs(summary["fid"]) < 1e-4 and summary["csim"] == pytest.approx(1.0, abs=1e-6)
    assert summary["tavc"] is None  # no metric given, none from a pipeline


def test_clear_errors(references: Path, backbones, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strangers = tmp_path / "strangers"
    make_synthetic_videos(strangers, n=1, seconds=0.3, seed=1)
    (strangers / "talker_000.mp4").rename(strangers / "someone_else.mp4")
    assert (
        main(["evaluate", "--generated", str(strangers), "--reference", str(references), *_backbone_options(backbones)])
        == 2
    )
    assert "someone_else" in capsys.readouterr().err
    assert main(["evaluate", "--generated", str(references), "--reference", str(references)]) == 2
    assert "--inception-weights" in capsys.readouterr().err
    assert main(["evaluate", "--generated", str(references), "--reference", str(references),
                 "--syncnet-weights", str(tmp_path / "missing.model")]) == 2  # fmt: skip
    assert "syncnet_v2.model" in capsys.readouterr().err


def test_evaluate_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--generated", "--reference", "--output", "--inception-weights", "--arcface-model",
                   "--syncnet-weights", "--tavc-metric", "--landmarker", "--no-align", "--max-frames", "--max-offset",
                   "--self-reconstruction", "--weights", "--offline", "--mode", "--seed", "--device", "--batch-size",
                   "--no-progress"):  # fmt: skip
        assert re.search(rf"{option}\b[^\n]*\n?\s+\S", text), option
