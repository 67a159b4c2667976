"""TAVC similarity: frame pairs meet the audio relationship of the same frame; errors; the tiny TAVC metric."""

from __future__ import annotations

import numpy as np
import pytest

from tavce.audio import frame_windows
from tavce.errors import InvalidArgumentError
from tavce.evaluation import mouth_crops, tavc_similarity
from tavce.models.tavc.metric import TemporalCorrelationMetric
from tavce.testing import synthetic_face_landmarks, tiny_components
from tavce.video_reader import read_video
from tests.helpers import SyntheticFaceLandmarker


class MeanMetric(TemporalCorrelationMetric):
    """Embeddings are means (of the mel window / the mouth crop); similarity is the signed product."""

    def audio_relationship(self, previous_windows, current_windows):
        return previous_windows.mean(dim=(1, 2, 3))[:, None] - current_windows.mean(dim=(1, 2, 3))[:, None]

    def visual_relationship(self, previous_mouths, current_mouths):
        return previous_mouths.mean(dim=(1, 2, 3))[:, None] - current_mouths.mean(dim=(1, 2, 3))[:, None]

    def similarity(self, audio_relationship, visual_relationship):
        return (audio_relationship * visual_relationship)[:, 0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    from tavce.testing import make_synthetic_videos

    path = make_synthetic_videos(tmp_path_factory.mktemp("tavc"), n=1, seconds=0.6, seed=4)[0]
    return read_video(path)


def test_pair_t_meets_the_audio_relationship_of_frame_t(clip) -> None:
    landmarks = np.stack([synthetic_face_landmarks(128)] * len(clip.frames))
    result = tavc_similarity(clip.frames, clip.audio, MeanMetric(), landmarks=landmarks)
    windows = frame_windows(clip.audio).windows
    count = min(len(clip.frames), len(windows))
    audio_means = windows[:count].mean(dim=(1, 2, 3)).double()
    mouth_means = mouth_crops(clip.frames[:count], landmarks[:count]).mean(dim=(1, 2, 3)).double()
    expected = (audio_means[:-1] - audio_means[1:]) * (mouth_means[:-1] - mouth_means[1:])
    assert result.per_pair.shape == (count - 1,)
    np.testing.assert_allclose(result.per_pair, expected.numpy(), rtol=1e-4, atol=1e-7)
    assert result.mean == pytest.approx(float(expected.mean()), rel=1e-4, abs=1e-7)
    assert np.abs(result.per_pair).max() > 0  # the mouth moves with the audio in these clips


def test_tiny_tavc_metric_with_a_landmarker(clip) -> None:
    metric = tiny_components(seed=1)["metric"]
    result = tavc_similarity(clip.frames, clip.audio, metric, landmarker=SyntheticFaceLandmarker())
    assert result.per_pair.shape == (min(len(clip.frames), clip.audio.num_frames) - 1,)
    assert np.all((result.per_pair >= 0) & (result.per_pair <= 1 + 1e-6)) and np.isfinite(result.mean)


def test_errors_name_the_fix(clip) -> None:
    with pytest.raises(InvalidArgumentError, match="landmarker"):
        tavc_similarity(clip.frames, clip.audio, MeanMetric())
    with pytest.raises(InvalidArgumentError, match="one \\(68, 2\\) set per frame"):
        tavc_similarity(clip.frames, clip.audio, MeanMetric(), landmarks=np.zeros((2, 68, 2)))
    with pytest.raises(InvalidArgumentError, match="at least 2"):
        tavc_similarity(clip.frames[:1], clip.audio, MeanMetric(), landmarks=np.zeros((1, 68, 2)))
