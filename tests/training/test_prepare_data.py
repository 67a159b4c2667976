"""prepare_dataset / tavce prepare-data: layout, manifest, resume, failures, partial folders, workers, CLI."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from tavce import cli
from tavce.errors import InvalidArgumentError
from tavce.preprocess.mouth import mouth_centre
from tavce.testing import synthetic_face_landmarks
from tavce.training.data import PrepareConfig, annotate, list_videos, prepare_dataset, read_manifest
from tests.helpers import SyntheticFaceLandmarker, tiny_face_recon

RESIZE = PrepareConfig(crop_mode="resize")  # crops = whole synthetic frames, so the stand-in landmarks are exact


@pytest.fixture
def clips(synthetic_clips: Path, tmp_path: Path) -> Path:
    """The two synthetic clips plus a corrupt one, in a folder of this test's own."""
    folder = tmp_path / "videos"
    shutil.copytree(synthetic_clips, folder)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    return folder


def _prepare(clips: Path, output: Path, landmarker=None, face_recon=None, **options):
    return prepare_dataset(
        clips,
        output,
        face_recon=face_recon or tiny_face_recon(),
        landmarker=landmarker or SyntheticFaceLandmarker(),
        config=options.pop("config", RESIZE),
        progress=False,
        **options,
    )


def test_layout_manifest_and_a_corrupt_video_listed(clips: Path, tmp_path: Path) -> None:
    output = tmp_path / "data"
    report = _prepare(clips, output)
    assert report.prepared == ["talker_000", "talker_001"] and report.skipped == []
    assert list(report.failed) == ["corrupt"] and "corrupt.mp4: cannot be read as a video" in report.failed["corrupt"]

    entries = {entry["name"]: entry for entry in read_manifest(output)}
    assert entries["corrupt"]["status"] == "failed" and "corrupt.mp4" in entries["corrupt"]["error"]
    assert entries["talker_000"]["status"] == "ok" and entries["talker_000"]["num_frames"] == 20

    folder = output / "talker_000"
    frames = sorted((folder / "frames").iterdir())
    assert [frame.name for frame in frames] == [f"{index:06d}.png" for index in range(20)]
    assert Image.open(frames[0]).size == (256, 256) and Image.open(frames[0]).mode == "RGB"
    samples, rate = soundfile.read(folder / "audio.wav")
    assert rate == 16_000 and samples.ndim == 1 and abs(len(samples) - 20 * 640) <= 64
    with np.load(folder / "annotations.npz") as annotations:
        assert annotations["landmarks"].shape == (20, 68, 2)
        assert annotations["coefficients"].shape == (20, 73) and annotations["full_coefficients"].shape == (20, 257)
        assert np.isfinite(annotations["coefficients"]).all()
        assert annotations["face_detected"].all()
        expected_centre = mouth_centre(synthetic_face_landmarks(256))
        assert (annotations["mouth_centres"] == expected_centre).all()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["name"] == "talker_000" and meta["audio_frames"] == 20 and meta["landmarker"] == "synthetic"
    assert not list(output.glob(".*.partial"))


def test_rerun_skips_finished_videos_and_retries_failures(clips: Path, tmp_path: Path) -> None:
    output = tmp_path / "data"
    _prepare(clips, output)
    first_mtime = (output / "talker_000" / "meta.json").stat().st_mtime_ns
    landmarker = SyntheticFaceLandmarker()
    report = _prepare(clips, output, landmarker=landmarker)
    assert report.skipped == ["talker_000", "talker_001"] and report.prepared == []
    assert list(report.failed) == ["corrupt"]
    assert landmarker.calls == 0  # nothing recomputed for finished videos
    assert (output / "talker_000" / "meta.json").stat().st_mtime_ns == first_mtime
    names = [entry["name"] for entry in read_manifest(output)]
    assert sorted(names) == ["corrupt", "talker_000", "talker_001"]  # one line per video, no duplicates

    def must_not_load():
        raise AssertionError("weights loaded although every video is finished")

    finished_only = [clips / "talker_000.mp4", clips / "talker_001.mp4"]
    report = prepare_dataset(finished_only, output, load_face_recon=must_not_load, progress=False)
    assert report.skipped == ["talker_000", "talker_001"] and not report.prepared and not report.failed


def test_interrupted_run_keeps_finished_videos_and_redoes_the_partial_one(
    clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "data"
    original = annotate._reconstruct
    calls = []

    def crash_on_second_video(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the run were killed while writing talker_001
        return original(*args, **kwargs)

    monkeypatch.setattr(annotate, "_reconstruct", crash_on_second_video)
    with pytest.raises(KeyboardInterrupt):
        _prepare(clips, output)
    assert (output / "talker_000" / "meta.json").is_file()
    assert (output / ".talker_001.partial" / "frames").is_dir() and not (output / "talker_001").exists()

    monkeypatch.setattr(annotate, "_reconstruct", original)
    report = _prepare(clips, output)
    assert report.skipped == ["talker_000"] and report.prepared == ["talker_001"]
    assert not (output / ".talker_001.partial").exists()
    assert len(list((output / "talker_001" / "frames").iterdir())) == 20


def test_videos_without_face_or_audio_fail_with_their_reason(clips: Path, tmp_path: Path) -> None:
    report = _prepare(clips, tmp_path / "noface", landmarker=SyntheticFaceLandmarker(faces=False),
                      config=PrepareConfig(face_search_frames=5))  # fmt: skip
    assert "no face found" in report.failed["talker_000"] and "first 5 frames" in report.failed["talker_000"]

    silent = tmp_path / "silent"
    silent.mkdir()
    from tavce.video import write_video

    write_video(silent / "mute.mp4", [np.zeros((64, 64, 3), np.uint8)] * 10)
    report = _prepare(silent, tmp_path / "mute")
    assert "has no audio track" in report.failed["mute"]


def test_crop_mode_crops_the_face_and_max_frames_limits(clips: Path, tmp_path: Path) -> None:
    report = _prepare(clips, tmp_path / "data", config=PrepareConfig(crop_mode="crop", max_frames=8))
    assert report.prepared == ["talker_000", "talker_001"]
    meta = json.loads((tmp_path / "data" / "talker_000" / "meta.json").read_text())
    assert meta["num_frames"] == 8 and meta["crop_geometry"]["mode"] == "crop"
    assert meta["crop_geometry"]["tight_box"] != [0, 0, 128, 128]  # a face box, not the whole frame


class LateFaceLandmarker(SyntheticFaceLandmarker):
    """Finds no face on the first three frames (as when a speaker turns towards the camera)."""

    def detect(self, image):
        faces = super().detect(image)
        return faces if self.calls > 3 else []


def test_frames_before_the_face_is_found_are_kept(clips: Path, tmp_path: Path) -> None:
    output = tmp_path / "data"
    report = _prepare(clips, output, landmarker=LateFaceLandmarker(), config=PrepareConfig(crop_mode="crop"))
    assert "talker_000" in report.prepared
    assert len(list((output / "talker_000" / "frames").iterdir())) == 20  # all frames, cropped with one box
    with np.load(output / "talker_000" / "annotations.npz") as annotations:
        assert annotations["face_detected"].all()  # the crops themselves are all detected


def test_two_workers_give_the_same_folders(clips: Path, tmp_path: Path) -> None:
    face_recon = tiny_face_recon()
    _prepare(clips, tmp_path / "one", face_recon=face_recon)
    report = _prepare(clips, tmp_path / "two", face_recon=face_recon, workers=2)
    assert sorted(report.prepared) == ["talker_000", "talker_001"] and list(report.failed) == ["corrupt"]
    for name in report.prepared:
        with (
            np.load(tmp_path / "one" / name / "annotations.npz") as a,
            np.load(tmp_path / "two" / name / "annotations.npz") as b,
        ):
            assert np.array_equal(a["mouth_centres"], b["mouth_centres"])
            np.testing.assert_allclose(a["coefficients"], b["coefficients"], rtol=1e-4, atol=1e-5)


def test_list_videos_names_nested_files_and_refuses_clashes(tmp_path: Path) -> None:
    for relative in ("id1/vidA/00001.mp4", "id1/vidA/00002.MOV", "id2/x.mp4", "notes.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    assert list(list_videos(tmp_path)) == ["id1#vidA#00001", "id1#vidA#00002", "id2#x"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.mp4").write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match="two videos named 'x'"):
        list_videos([tmp_path / "id2" / "x.mp4", tmp_path / "other" / "x.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="empty: no video files"):
        list_videos(tmp_path / "empty")
    with pytest.raises(InvalidArgumentError, match="absent.mp4: video not found"):
        list_videos(tmp_path / "absent.mp4")
    listing = tmp_path / "list.txt"
    listing.write_text("id2/x.mp4\nother/x.mp4\n")
    with pytest.raises(InvalidArgumentError, match="two videos named"):
        list_videos(listing)


@pytest.fixture
def _restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_cli_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prepare-data", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("VIDEOS", "OUT", "--workers", "--size", "--crop-mode", "--max-frames", "--min-frames",
                   "--landmarker", "--weights", "--revision", "--cache-dir", "--offline", "--device",
                   "--batch-size", "--no-progress", "manifest.jsonl", "Exit status"):  # fmt: skip
        assert option in text, option


def test_cli_prepares_with_dlib_and_reports_the_failure(
    clips: Path, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str], _restore_root_logging
) -> None:
    output = tmp_path / "data"
    arguments = ["prepare-data", str(clips), str(output), "--weights", str(tiny_weights), "--landmarker", "dlib",
                 "--no-progress", "--max-frames", "10"]  # fmt: skip
    assert cli.main(arguments) == 1  # the corrupt clip failed; the others are ready
    assert capsys.readouterr().out.strip() == str(output / "manifest.jsonl")
    statuses = {entry["name"]: entry["status"] for entry in read_manifest(output)}
    assert statuses == {"corrupt": "failed", "talker_000": "ok", "talker_001": "ok"}
    with np.load(output / "talker_000" / "annotations.npz") as annotations:
        assert annotations["face_detected"].all()  # dlib finds the drawn face on every crop
