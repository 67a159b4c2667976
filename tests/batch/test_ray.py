"""The Ray executor on a local Ray instance: isolation and retries, batch videos identical to local workers,
``prepare-data --ray`` preparing the same dataset as without."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from tavce.cli import main
from tests.batch.conftest import GOOD_OUTPUTS
from tests.batch.runners import check_isolation_and_retry

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_instance():
    """A two-CPU Ray instance with a small object store, shut down after the module."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, logging_level="WARNING")
    yield
    ray.shutdown()


def test_ray_executor_isolates_tasks_and_retries_a_killed_actor(ray_instance, tmp_path: Path) -> None:
    from tavce.batch import RayExecutor

    check_isolation_and_retry(RayExecutor(), tmp_path)


def test_batch_on_ray_gives_the_videos_of_local_workers(
    ray_instance, local_batch, job_folder: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    _, local_out = local_batch
    out = tmp_path / "out"
    status = main(["batch", str(job_folder / "jobs.csv"), str(out), "--weights", str(tiny_weights), "--ray",
                   "--no-progress"])  # fmt: skip
    assert status == 1
    records = {r["output"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert records["faceless.mp4"]["error_type"] == "FaceNotDetectedError"
    for name in GOOD_OUTPUTS:
        assert records[name]["status"] == "ok" and records[name]["worker"].startswith("ray ")
        np.testing.assert_array_equal(iio.imread(out / name), iio.imread(local_out / name))


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in ("manifest.jsonl", "meta.json", "annotations.npz")
    }


def _entries(folder: Path) -> dict[str, dict]:
    entries = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    return {entry["name"]: {k: v for k, v in entry.items() if k != "seconds"} for entry in entries}


def test_prepare_data_on_ray_prepares_the_same_dataset(ray_instance, tiny_weights: Path, tmp_path: Path) -> None:
    from tavce.testing import make_synthetic_videos

    videos = tmp_path / "videos"
    make_synthetic_videos(videos, n=2, seconds=0.4, seed=0)
    (videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    common = ["--weights", str(tiny_weights), "--landmarker", "dlib", "--no-progress"]
    assert main(["prepare-data", str(videos), str(tmp_path / "here"), *common]) == 1  # the corrupt video failed
    assert main(["prepare-data", str(videos), str(tmp_path / "ray"), *common, "--ray"]) == 1
    here, on_ray = tmp_path / "here", tmp_path / "ray"
    assert _entries(on_ray) == _entries(here) and set(_entries(here)) == {"talker_000", "talker_001", "corrupt"}
    assert _tree(on_ray) == _tree(here)  # frames and audio, byte for byte
    for name in ("talker_000", "talker_001"):
        with np.load(here / name / "annotations.npz") as a, np.load(on_ray / name / "annotations.npz") as b:
            assert a.files == b.files
            for key in a.files:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5)
        meta_here, meta_ray = (json.loads((root / name / "meta.json").read_text()) for root in (here, on_ray))
        meta_here.pop("seconds"), meta_ray.pop("seconds")
        assert meta_ray == meta_here


@pytest.mark.slow  # beyond the default suite's time budget; the executor and prepare-data tests cover the path
def test_evaluate_on_ray_gives_the_same_report(ray_instance, tmp_path: Path) -> None:
    import torch

    from tavce.evaluation import SyncNet
    from tavce.testing import make_synthetic_videos
    from tests.evaluation.backbones import TinyFeatureExtractor
    from tests.evaluation.test_evaluate_cli import TINY_SYNCNET

    generated, reference = tmp_path / "generated", tmp_path / "reference"
    make_synthetic_videos(generated, n=2, seconds=0.6, seed=8)
    make_synthetic_videos(reference, n=2, seconds=0.6, seed=7)
    torch.manual_seed(0)
    TinyFeatureExtractor().save_pretrained(tmp_path / "features")
    SyncNet(TINY_SYNCNET).save_pretrained(tmp_path / "syncnet")
    common = ["evaluate", "--generated", str(generated), "--reference", str(reference), "--no-progress",
              "--inception-weights", str(tmp_path / "features"), "--syncnet-weights", str(tmp_path / "syncnet")]  # fmt: skip
    assert main([*common, "-o", str(tmp_path / "here.json")]) == 0
    assert main([*common, "-o", str(tmp_path / "ray.json"), "--ray"]) == 0
    here, on_ray = (json.loads((tmp_path / name).read_text()) for name in ("here.json", "ray.json"))
    assert [row["name"] for row in on_ray["videos"]] == [row["name"] for row in here["videos"]]
    for row_here, row_ray in zip(here["videos"], on_ray["videos"]):
        assert row_ray == pytest.approx(row_here, rel=1e-5, abs=1e-6)
    assert on_ray["summary"]["fid"] == pytest.approx(here["summary"]["fid"], rel=1e-5)
