"""Disk full: every write that fails for lack of space says so in one line, leaves nothing behind, and resumes.

The full disk is a small tmpfs (tests skipped where it cannot be mounted); the file-size
limit (RLIMIT_FSIZE, in a subprocess) fails writes the same way and runs anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tavce import TalkingHeadPipeline
from tavce.errors import OutputError
from tavce.training.checkpoint import LATEST_NAME, find_checkpoint, load_checkpoint, save_checkpoint
from tavce.training.data import PrepareConfig, prepare_dataset, read_manifest
from tests.helpers import SyntheticFaceLandmarker, tiny_face_recon
from tests.reliability.conftest import dataset_contents, files_under, run_python


def test_generate_on_a_full_disk_says_so_and_resumes(small_disk, portrait, short_speech, tiny_weights):
    """The case that used to end in "ffmpeg stopped while encoding (no message)"; the CLI prints the
    same message as its one error line and exits with status 2 (as for every TavceError)."""
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights)
    photo, box = portrait
    result = pipe(photo, short_speech, face_box=box, batch_size=5, progress=False)
    output = small_disk.folder / "talking.mp4"
    small_disk.resize("12k")
    with pytest.raises(OutputError) as caught:
        result.save(output)
    message = str(caught.value)
    assert message.startswith(f"{output}: the disk is full") and "free some space" in message
    assert "\n" not in message and "no message" not in message
    assert files_under(small_disk.folder) == []

    small_disk.resize("4m")
    result.save(output)
    assert files_under(small_disk.folder) == ["talking.mp4"]


WRITE_NOISE_VIDEO = """
import resource, sys
import numpy as np
from tavce.video import write_video
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
noise = np.random.default_rng(0).integers(0, 256, (40, 96, 96, 3), dtype=np.uint8)
write_video(sys.argv[1], noise)
"""


def test_file_size_limit_is_reported_like_a_full_disk(tmp_path):
    output = tmp_path / "noise.mp4"
    run = run_python("-c", WRITE_NOISE_VIDEO, str(output))
    assert run.returncode != 0
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith(f"tavce.errors.OutputError: {output}: the file-size limit of this process was reached")
    assert "ulimit -f" in message
    assert files_under(tmp_path) == []


def test_save_pretrained_on_a_full_disk_names_the_file_and_the_space_needed(small_disk, tiny_weights):
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights)
    folder = small_disk.folder / "weights"
    with pytest.raises(OutputError, match=r"the disk is full .*about [\d.]+ [KM]iB needed") as caught:
        pipe.save_pretrained(folder)
    named = Path(str(caught.value).split(": ")[0])
    assert named.parent.parent == folder and named.name == "model.safetensors"
    files = files_under(small_disk.folder)
    assert "weights/pipeline_config.json" not in files and not [name for name in files if name.endswith(".tmp")]

    small_disk.resize("64m")  # the tiny weights keep the official Wav2Lip encoders: ~22 MiB
    pipe.save_pretrained(folder)
    reloaded = TalkingHeadPipeline.from_pretrained(folder)
    for name, tensor in pipe.renderer.state_dict().items():
        assert torch.equal(reloaded.renderer.state_dict()[name], tensor), name


def test_checkpoint_on_a_full_disk_keeps_the_previous_one(small_disk):
    folder = small_disk.folder / "checkpoints"
    save_checkpoint(folder / "step_1.pt", {"step": 1, "weights": torch.ones(100)})
    with pytest.raises(OutputError, match=r"step_2.pt: the disk is full .*about 1\.1 MiB needed.*--resume"):
        save_checkpoint(folder / "step_2.pt", {"step": 2, "weights": torch.ones(300_000)})
    assert files_under(folder) == [LATEST_NAME, "step_1.pt"]
    assert (folder / LATEST_NAME).read_text().strip() == "step_1.pt"
    assert load_checkpoint(find_checkpoint(folder))["step"] == 1

    small_disk.resize("4m")
    save_checkpoint(folder / "step_2.pt", {"step": 2, "weights": torch.ones(300_000)})
    assert load_checkpoint(find_checkpoint(folder))["step"] == 2


def test_prepare_data_on_a_full_disk_stops_and_resumes_to_the_same_dataset(small_disk, synthetic_clips, tmp_path):
    face_recon = tiny_face_recon()

    def prepare(output: Path):
        return prepare_dataset(
            synthetic_clips, output, face_recon=face_recon, landmarker=SyntheticFaceLandmarker(),
            config=PrepareConfig(crop_mode="resize"), progress=False,
        )  # fmt: skip

    straight = tmp_path / "straight"
    prepare(straight)
    one_video = sum(path.stat().st_size for path in (straight / "talker_000").rglob("*") if path.is_file())

    output = small_disk.folder / "data"
    small_disk.resize(f"{(one_video * 3 // 2) // 1024}k")  # room for the first video, not the second
    with pytest.raises(OutputError, match=r"talker_001: the disk is full .*run the same command again"):
        prepare(output)
    assert [entry["name"] for entry in read_manifest(output)] == ["talker_000"]
    assert not list(output.glob(".*")), "no partial folder or temporary file is left"

    small_disk.resize("16m")
    report = prepare(output)
    assert report.skipped == ["talker_000"] and report.prepared == ["talker_001"]
    assert dataset_contents(output) == dataset_contents(straight)
