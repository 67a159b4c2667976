"""Stage-1 and stage-2 datasets over a prepared folder: shapes, value ranges, sampling rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tavce.audio import frame_windows, load_audio
from tavce.errors import InvalidArgumentError
from tavce.preprocess.mouth import crop_mouth
from tavce.training.data import (
    PreparedVideo,
    RendererDataset,
    RendererDatasetConfig,
    TAVCDataset,
    TAVCDatasetConfig,
)
from tavce.training.data.sampling import coefficient_window, sample_stage1_indices, sampling_units


@pytest.fixture(scope="module")
def prepared(prepared_clips: Path) -> Path:
    return prepared_clips


def test_stage1_items(prepared: Path) -> None:
    dataset = TAVCDataset(prepared, TAVCDatasetConfig(repeats=3, return_frames=True))
    assert len(dataset) == 6
    item = dataset[1]
    assert item["mouths"].shape == (3, 3, 112, 112) and item["mouths"].dtype == torch.float32
    assert -1 <= item["mouths"].min() and item["mouths"].max() <= 1 and item["mouths"].std() > 0.05
    assert item["mels"].shape == (3, 1, 80, 16) and -4 <= item["mels"].min() and item["mels"].max() <= 4
    assert item["frames"].shape == (3, 3, 256, 256) and 0 <= item["frames"].min() and item["frames"].max() <= 1
    i, next_i, j = item["indices"].tolist()
    assert next_i == i + 1 and abs(j - i) >= 3

    # The crops and windows are the ones of those frames.
    video = PreparedVideo.open(prepared / "talker_001")  # index 1 of 2 videos
    centre = tuple(video.annotations["mouth_centres"][j])
    np.testing.assert_allclose(item["mouths"][2].numpy(), crop_mouth(video.frame(j), centre), atol=1e-6)
    windows = frame_windows(load_audio(prepared / "talker_001" / "audio.wav")).windows
    np.testing.assert_allclose(item["mels"].numpy(), windows[[i, next_i, j]].numpy(), atol=1e-6)


def test_stage1_negatives_are_far_and_cover_both_sides() -> None:
    torch.manual_seed(0)
    draws = np.array([sample_stage1_indices(12, 3) for _ in range(2000)])
    anchors, negatives = draws[:, 0], draws[:, 2]
    assert (np.abs(negatives - anchors) >= 3).all()
    assert set(anchors) == set(range(11)) and set(negatives) == set(range(12))  # i ≤ n − 2, j anywhere
    assert (negatives < anchors).any() and (negatives > anchors).any()
    assert len({tuple(sample_stage1_indices(6, 3)) for _ in range(200)}) > 1  # the shortest allowed video works
    with pytest.raises(InvalidArgumentError, match="at least 6"):
        sample_stage1_indices(5, 3)


def test_stage1_batches_through_a_dataloader(prepared: Path) -> None:
    batch = next(iter(DataLoader(TAVCDataset(prepared), batch_size=2)))
    assert batch["mouths"].shape == (2, 3, 3, 112, 112) and batch["mels"].shape == (2, 3, 1, 80, 16)


def test_stage2_items(prepared: Path) -> None:
    dataset = RendererDataset(prepared, RendererDatasetConfig(repeats=2))
    assert len(dataset) == 4
    item = dataset[0]
    source, previous, driving = item["indices"].tolist()
    assert driving == previous + 1 and 0 <= source < 20 and driving < 20
    for key in ("source_image", "previous_image", "driving_image"):
        assert item[key].shape == (3, 256, 256) and 0 <= item[key].min() and item[key].max() <= 1
    assert item["mels"].shape == (2, 1, 80, 16)

    coefficients = torch.from_numpy(PreparedVideo.open(prepared / "talker_000").annotations["coefficients"])
    assert item["source_coefficients"].shape == (73, 27)
    assert torch.equal(item["source_coefficients"], coefficients[source][:, None].expand(73, 27))
    expected = coefficients[[min(max(driving + offset, 0), 19) for offset in range(-13, 14)]].T
    assert torch.equal(item["driving_coefficients"], expected)
    centres = PreparedVideo.open(prepared / "talker_000").annotations["mouth_centres"]
    assert item["mouth_centres"].tolist() == centres[[previous, driving]].tolist()


def test_coefficient_window_clamps_at_the_ends() -> None:
    assert coefficient_window(0, 20, 5).tolist() == [0, 0, 0, 1, 2]
    assert coefficient_window(19, 20, 5).tolist() == [17, 18, 19, 19, 19]
    assert coefficient_window(10, 20).shape == (27,)


def test_identity_sampling_groups_by_the_name_before_the_first_hash() -> None:
    videos = [PreparedVideo(Path(name), {}) for name in ("id1#a#1", "id1#b#2", "id2#c#1")]
    units = sampling_units(videos, identity_sampling=True)
    assert [[video.name for video in unit] for unit in units] == [["id1#a#1", "id1#b#2"], ["id2#c#1"]]
    assert len(sampling_units(videos, identity_sampling=False)) == 3


def test_a_folder_that_was_not_prepared_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="prepare-data"):
        TAVCDataset(tmp_path)
