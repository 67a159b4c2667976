"""SadTalker's everyday options (reference videos, head angles, face choice, quality) and the
refusal of bad values before any model is built or any network call is made."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from tavce import TalkingHeadPipeline
from tavce.cli import main
from tavce.errors import InvalidArgumentError
from tavce.models.audio2coeff import camera_degrees
from tavce.testing import make_synthetic_videos

FRAMES = 30  # ⌊1.23 s · 25⌋, the speech fixture


@pytest.fixture(scope="module")
def talking_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.6 s (15 frames): shorter than the speech, so the reference is repeated."""
    return make_synthetic_videos(tmp_path_factory.mktemp("talking"), n=1, seconds=0.6)[0]


@pytest.fixture(scope="module")
def pipe(tiny_weights: Path) -> TalkingHeadPipeline:
    return TalkingHeadPipeline.from_pretrained(tiny_weights, landmarker="dlib")


def test_reference_video_gives_the_motion_of_its_coefficients(pipe, portrait, speech, talking_video) -> None:
    photo, box = portrait
    measured = pipe.reference_coefficients(talking_video)
    assert measured.shape == (15, 73) and torch.isfinite(measured).all()
    plain = pipe(photo, speech, face_box=box, seed=2, progress=False).coefficients
    by_path = pipe(photo, speech, face_box=box, seed=2, progress=False, ref_pose=talking_video,
                   ref_eyeblink=str(talking_video)).coefficients  # fmt: skip
    by_tensor = pipe(photo, speech, face_box=box, seed=2, progress=False, ref_pose=measured[:, 64:70],
                     ref_eyeblink=measured[:, :64]).coefficients  # fmt: skip
    assert torch.equal(by_path.pose, by_tensor.pose) and torch.equal(by_path.expression, by_tensor.expression)
    # The reference's motion relative to its first frame is added, repeated over the 30 frames.
    pose_only = pipe(photo, speech, face_box=box, seed=2, progress=False, ref_pose=talking_video).coefficients
    motion = measured[:, 64:70] - measured[:1, 64:70]
    torch.testing.assert_close(pose_only.pose, plain.pose + torch.cat([motion, motion]))
    assert not torch.equal(by_path.expression, plain.expression)


def test_reference_video_is_measured_once(tiny_weights, portrait, speech, talking_video, monkeypatch) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights, landmarker="dlib")
    calls = []
    measure = pipe.preprocessor.video_coefficients
    monkeypatch.setattr(pipe.preprocessor, "video_coefficients", lambda *a: calls.append(a) or measure(*a))
    photo, box = portrait
    for _ in range(2):
        pipe(photo, speech, face_box=box, ref_pose=talking_video, ref_eyeblink=talking_video, progress=False)
    assert len(calls) == 1


def test_head_angles_are_interpolated_and_rendered(pipe, portrait, speech) -> None:
    photo, box = portrait
    turned = pipe(photo, speech, face_box=box, seed=1, yaw=[-20, 20], roll=5, progress=False)
    coefficients = turned.coefficients
    assert torch.equal(coefficients.yaw, camera_degrees([-20, 20], FRAMES))
    assert torch.equal(coefficients.roll, torch.full((FRAMES,), 5.0)) and coefficients.pitch is None
    plain = pipe(photo, speech, face_box=box, seed=1, progress=False)
    first_turned, first_plain = next(iter(turned.frames)), next(iter(plain.frames))
    assert (first_turned != first_plain).any()


def test_full_mode_mapping_is_fetched_once_when_first_needed(tiny_weights_without_cerl, portrait, speech) -> None:
    import dataclasses
    import threading

    photo, box = portrait
    reference = TalkingHeadPipeline.from_pretrained(tiny_weights_without_cerl)
    expected = reference(photo, speech, face_box=box, mode="full", seed=3, progress=False).coefficients
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights_without_cerl)
    mapping = pipe.renderer.full_mode_mapping
    pipe.renderer.full_mode_mapping = None  # as from_official leaves it
    pipe.renderer.config = dataclasses.replace(pipe.renderer.config, full_mode_mapping=None)
    fetches = []
    pipe._full_mode_fetch = lambda: fetches.append(1) or time.sleep(0.2) or mapping

    pipe(photo, speech, face_box=box, mode="crop", seed=3, progress=False)
    assert fetches == []  # crop modes never fetch it
    threads = [threading.Thread(target=pipe, args=(photo, speech), kwargs=dict(face_box=box, mode="full",
               progress=False)) for _ in range(2)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetches == [1] and pipe.renderer.full_mode_mapping is mapping
    assert pipe.renderer.config.full_mode_mapping == mapping.config
    result = pipe(photo, speech, face_box=box, mode="full", seed=3, progress=False)
    assert torch.equal(result.coefficients.crop, expected.crop)
    np.testing.assert_array_equal(next(iter(result.frames)), next(iter(reference(
        photo, speech, face_box=box, mode="full", seed=3, progress=False).frames)))


def test_done_when_command(tiny_weights: Path, portrait, speech: Path, talking_video: Path, tmp_path: Path,
                           capsys, restore_root_logging) -> None:  # fmt: skip
    output = tmp_path / "new" / "dir" / "out.mp4"
    status = main(["generate", str(portrait[0]), str(speech), "-o", str(output), "--weights", str(tiny_weights),
                   "--ref-pose", str(talking_video), "--ref-eyeblink", str(talking_video), "--input-yaw", "-20", "20",
                   "--face-index", "0", "--crf", "18", "--landmarker", "dlib", "--no-progress", "-v"])  # fmt: skip
    assert status == 0
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(output))
    assert frames == FRAMES
    assert "-crf 18" in capsys.readouterr().err  # -v after the command: debug logs (the encoder's command line)


@pytest.fixture
def no_model_no_network(monkeypatch):
    """Fails the test if a component is built or the Hub is asked."""
    import huggingface_hub

    import tavce.components
    import tavce.convert.official
    import tavce.hub

    def forbidden(*args, **kwargs):
        raise AssertionError("a model was built or the network was used before the value was refused")

    for module, name in ((tavce.components, "load_components"), (tavce.convert.official, "load_official_components"),
                         (tavce.hub, "_hub_snapshot"), (huggingface_hub, "hf_hub_download"),
                         (huggingface_hub, "snapshot_download")):  # fmt: skip
        monkeypatch.setattr(module, name, forbidden)


BAD_VALUES = [
    (["--pose-style", "46"], "pose_style"),
    (["--expression-scale", "nan"], "expression_scale"),
    (["--face-box", "400,300,500,400"], "outside the 320x240"),
    (["--size", "512"], "size=512"),
    (["--tavce-correlation", "corr.pth"], "tavce_correlation without tavce_facerender"),
    (["--crf", "60"], "crf"),
    (["--input-yaw", "left"], "yaw"),
    (["--face-index", "-1"], "face_index"),
    (["--ref-pose", "missing.mp4"], "missing.mp4"),
]


@pytest.mark.parametrize(("extra", "named"), BAD_VALUES, ids=[case[1] for case in BAD_VALUES])
def test_bad_values_fail_before_any_model_or_download(
    extra, named, tiny_weights, portrait, speech, tmp_path, no_model_no_network, capsys
) -> None:
    output = tmp_path / "out.mp4"
    (tmp_path / "corr.pth").write_bytes(b"")
    extra = [str(tmp_path / value) if value.endswith(".pth") else value for value in extra]
    status = main(["generate", str(portrait[0]), str(speech), "-o", str(output), "--weights", str(tiny_weights),
                   "--no-progress", *extra])  # fmt: skip
    assert status == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tavce generate: error:")]
    assert len(errors) == 1 and named in errors[0]
    assert not output.exists()


def test_unknown_keyword_names_the_tavce_equivalent(pipe, portrait, speech) -> None:
    with pytest.raises(InvalidArgumentError, match="SadTalker's preprocess is mode here"):
        pipe(portrait[0], speech, preprocess="full")
    with pytest.raises(InvalidArgumentError, match="from_pretrained"):
        pipe(portrait[0], speech, size=512)


def test_size_the_weights_cannot_render_is_refused_when_their_config_is_read(tiny_weights, no_model_no_network):
    with pytest.raises(InvalidArgumentError, match="render at 256x256 only"):
        TalkingHeadPipeline.from_pretrained(tiny_weights, size=512)


def test_without_network_and_cache_the_failure_takes_seconds(portrait, speech, tmp_path) -> None:
    import socket

    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    environment = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "hf"),
                   "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}  # fmt: skip
    environment.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "tavce", "generate", str(portrait[0]), str(speech), "-o", str(tmp_path / "o.mp4")],
        capture_output=True, text=True, env=environment, timeout=300,
    )  # fmt: skip
    import_and_fail = time.monotonic() - started
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("tavce generate: error: vinthony/SadTalker-V002rc")
    assert "Retrying" not in run.stderr  # no backoff of huggingface_hub
    baseline_started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import tavce.pipeline, tavce.convert.official"], env=environment, check=True)
    import_only = time.monotonic() - baseline_started
    # Without the probe each file took about a minute of retries; now failing costs little more than importing.
    assert import_and_fail < import_only + 15
