"""TalkingHeadPipeline end to end on tiny weights (make_tiny_checkpoint)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from tavce import TalkingHeadPipeline
from tavce.errors import InvalidArgumentError, OutputError, RenderError
from tests.helpers import PHOTO_SIZE
from tests.helpers import probe

FRAMES = 30  # ⌊1.23 s · 25⌋


@pytest.fixture(scope="module")
def pipe(tiny_weights: Path) -> TalkingHeadPipeline:
    return TalkingHeadPipeline.from_pretrained(tiny_weights)


def _frames(pipe: TalkingHeadPipeline, portrait, speech, **options) -> np.ndarray:
    photo, box = portrait
    return np.stack(list(pipe(photo, speech, face_box=box, progress=False, **options).frames))


def test_mp4_has_every_frame_and_the_audio(pipe, portrait, speech, tmp_path: Path) -> None:
    photo, box = portrait
    result = pipe(photo, speech, face_box=box, seed=0, progress=False)
    assert result.num_frames == FRAMES and pipe.has_cerl
    assert result.relationship is not None and result.relationship.differences.shape[0] == FRAMES
    # A graph held by the relationship would keep every encoder activation: memory growing with the clip.
    assert not result.relationship.differences.requires_grad
    # The windows are not held (5 KB a frame): asked for, they are those the relationship was computed from.
    assert "windows" not in vars(result) and result.windows.num_frames == FRAMES
    assert torch.equal(pipe.metric.audio_relationships(result.windows).differences, result.relationship.differences)
    path = result.save(tmp_path / "out.mp4")
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames == FRAMES and seconds == pytest.approx(FRAMES / 25, abs=0.05)
    streams = probe(path)
    assert re.search(r"Audio: aac", streams) and "256x" in streams
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


@pytest.mark.parametrize(
    ("mode", "size"),
    # (W, H): the synthetic face box is square, so crop modes stay square; resize keeps the photo's 4:3;
    # full modes paste back into the whole photo.
    [("crop", (256, 256)), ("extcrop", (256, 256)), ("resize", (256, 192)), ("full", PHOTO_SIZE), ("extfull", PHOTO_SIZE)],
)
def test_frame_size_per_mode(pipe, portrait, speech, mode: str, size) -> None:
    photo, box = portrait
    result = pipe(photo, speech, mode=mode, face_box=box, seed=0, progress=False, batch_size=8)
    first = next(iter(result.frames))
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert (first.shape[1], first.shape[0]) == size


def test_same_seed_same_frames_other_seed_other_frames(pipe, portrait, speech) -> None:
    first = _frames(pipe, portrait, speech, seed=7)
    again = _frames(pipe, portrait, speech, seed=7)
    other = _frames(pipe, portrait, speech, seed=8)
    assert first.shape == (FRAMES, 256, 256, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_batch_size_does_not_change_frames(pipe, portrait, speech) -> None:
    one = _frames(pipe, portrait, speech, seed=1, batch_size=1)
    many = _frames(pipe, portrait, speech, seed=1, batch_size=7)
    np.testing.assert_array_equal(_frames(pipe, portrait, speech, seed=1), one)  # None: chosen for the device
    # Same maths; only float summation order differs with the batch size (uint8 rounding ±1, rarely).
    difference = np.abs(one.astype(int) - many.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_stream_equals_result_frames(pipe, portrait, speech) -> None:
    photo, box = portrait
    streamed = np.stack(list(pipe.stream(photo, speech, face_box=box, seed=2, progress=False)))
    np.testing.assert_array_equal(streamed, _frames(pipe, portrait, speech, seed=2))


def test_prepared_source_is_reused(pipe, portrait, speech) -> None:
    photo, box = portrait
    source = pipe.preprocessor.prepare(photo, "crop", pipe.size, face_box=box)
    from_source = np.stack(list(pipe(source, speech, seed=4, progress=False).frames))
    np.testing.assert_array_equal(from_source, _frames(pipe, portrait, speech, seed=4))


def test_still_mode_and_options_reach_audio2coeff(pipe, portrait, speech) -> None:
    photo, box = portrait
    still = pipe(photo, speech, face_box=box, still=True, seed=0, progress=False)
    pose = still.coefficients.pose
    assert torch.equal(pose, pose[:1].expand_as(pose))
    neutral = pipe(photo, speech, face_box=box, expression_scale=0.0, seed=0, progress=False)
    assert neutral.coefficients.expression.abs().max() == 0


def test_without_cerl(tiny_weights_without_cerl: Path, portrait, speech, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="tavce"):
        pipe = TalkingHeadPipeline.from_pretrained(tiny_weights_without_cerl)
    assert not pipe.has_cerl and "CERL off" in caplog.text
    result = pipe(portrait[0], speech, face_box=portrait[1], seed=0, progress=False)
    assert result.relationship is None
    assert len(list(result.frames)) == FRAMES


def test_save_pretrained_round_trip(pipe, portrait, speech, tmp_path: Path) -> None:
    pipe.save_pretrained(tmp_path / "copy")
    again = TalkingHeadPipeline.from_pretrained(tmp_path / "copy")
    assert set(again.components) == set(pipe.components)
    for name, module in pipe.components.items():
        if module is None:  # an optional component the pipeline does not have (the enhancer here)
            assert again.components[name] is None, name
            continue
        reloaded = again.components[name].state_dict()
        assert all(torch.equal(value, reloaded[key]) for key, value in module.state_dict().items()), name
    np.testing.assert_array_equal(
        _frames(again, portrait, speech, seed=5), _frames(pipe, portrait, speech, seed=5)
    )


def test_bfloat16_renderer_on_cpu(tiny_weights: Path, portrait, speech) -> None:
    pipe = TalkingHeadPipeline.from_pretrained(tiny_weights).to("cpu", torch.bfloat16)
    assert pipe.dtype == torch.bfloat16
    frames = _frames(pipe, portrait, speech, seed=0)
    assert frames.shape == (FRAMES, 256, 256, 3)
    reference = _frames(TalkingHeadPipeline.from_pretrained(tiny_weights), portrait, speech, seed=0)
    # bfloat16 keeps 8 bits of mantissa: close to float32 on average (measured 4.7 grey levels), not equal.
    assert np.abs(frames.astype(int) - reference.astype(int)).mean() < 16


def test_bad_options_are_refused_before_work(pipe, portrait, speech, tmp_path: Path) -> None:
    photo, box = portrait
    with pytest.raises(InvalidArgumentError, match="mode='square'"):
        pipe(photo, speech, mode="square")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        pipe(photo, speech, batch_size=0)
    with pytest.raises(InvalidArgumentError, match="face_box"):
        pipe(photo, speech, face_box=(10, 10, 5, 50))
    with pytest.raises(InvalidArgumentError, match="pose_style"):
        pipe(photo, speech, face_box=box, pose_style=46)
    with pytest.raises(InvalidArgumentError, match="float16"):
        pipe.to("cpu", torch.float16)
    result = pipe(photo, speech, face_box=box, seed=0, progress=False)
    with pytest.raises(OutputError):
        result.save(tmp_path / "missing-folder" / "out.mp4")


def test_non_finite_frames_are_an_error_not_a_black_video(pipe, portrait, speech, tmp_path: Path) -> None:
    photo, box = portrait
    broken = TalkingHeadPipeline.from_pretrained(pipe_folder := _saved(pipe, tmp_path))
    with torch.no_grad():
        next(broken.renderer.generator.decoder.parameters()).fill_(float("nan"))
    result = broken(photo, speech, face_box=box, seed=0, progress=False)
    with pytest.raises(RenderError):
        result.save(tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists() and pipe_folder.exists()


def _saved(pipe: TalkingHeadPipeline, folder: Path) -> Path:
    return pipe.save_pretrained(folder / "weights")
