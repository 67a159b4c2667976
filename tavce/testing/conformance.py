"""Conformance suites: the contract of each component interface, as tests any implementation runs.

Mix a suite into a pytest test class and say how to build your component; pytest
then runs every ``test_*`` method of the suite against it::

    from tavce.testing.conformance import RendererConformance

    class TestMyRenderer(RendererConformance):
        def make_renderer(self):
            return MyRenderer(...)

One suite per interface of docs/components.md: :class:`PreprocessorConformance`,
:class:`Audio2CoeffConformance`, :class:`RendererConformance`,
:class:`TemporalCorrelationMetricConformance` and :class:`AudioEncoderConformance`.
Inputs are synthetic (a drawn portrait, random mel windows and coefficients), so a
suite checks shapes, value ranges, determinism and the invariances the pipeline
relies on — not the quality of a trained model. Needs pytest (``pip install tavce[test]``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tavce.errors import TavceError
from tavce.testing.portraits import synthetic_portrait, synthetic_source
from tavce.types import CROP_MODES, RENDER_SIZES, SOURCE_COEFF_DIM, AudioRelationship, AudioWindows, MotionCoefficients

__all__ = [
    "Audio2CoeffConformance",
    "AudioEncoderConformance",
    "PreprocessorConformance",
    "RendererConformance",
    "TemporalCorrelationMetricConformance",
    "synthetic_motion",
    "synthetic_portrait",
    "synthetic_source",
    "synthetic_windows",
]

MODES = CROP_MODES


def synthetic_windows(frames: int, seed: int = 0) -> AudioWindows:
    """(frames, 1, 80, 16) float32 mel windows, uniform in [−4, 4]."""
    generator = torch.Generator().manual_seed(seed)
    return AudioWindows(torch.rand(frames, 1, 80, 16, generator=generator) * 8 - 4)


def synthetic_motion(frames: int, seed: int = 0) -> MotionCoefficients:
    """Small random motion coefficients of ``frames`` frames, crop parameters included."""
    generator = torch.Generator().manual_seed(seed)
    values = 0.1 * torch.randn(frames, SOURCE_COEFF_DIM, generator=generator)
    return MotionCoefficients(values[:, :64], values[:, 64:70], values[:, 70:])


def _assert_tavce_error(call, *args) -> None:
    with pytest.raises(TavceError):
        call(*args)


class PreprocessorConformance:
    """The :class:`~tavce.preprocess.Preprocessor` contract, as the pipeline calls it.

    Override :meth:`make_preprocessor`; ``sizes`` / ``modes`` narrow what is checked.
    """

    sizes: tuple[int, ...] = (256,)
    modes: tuple[str, ...] = MODES

    def make_preprocessor(self):
        raise NotImplementedError("return the Preprocessor to check")

    def test_is_a_preprocessor(self) -> None:
        from tavce.preprocess import Preprocessor

        assert isinstance(self.make_preprocessor(), Preprocessor)

    def test_prepare_gives_a_source_of_the_requested_size_and_mode(self) -> None:
        preprocessor = self.make_preprocessor()
        photo, box, _ = synthetic_portrait()
        for size in self.sizes:
            for mode in self.modes:
                source = preprocessor.prepare(photo, mode, size, face_box=box)
                assert (source.size, source.mode.value) == (size, mode)
                assert tuple(source.image.shape) == (3, size, size)
                assert 0 <= float(source.image.min()) and float(source.image.max()) <= 1
                assert tuple(source.coefficients.shape) == (SOURCE_COEFF_DIM,)
                assert torch.isfinite(source.coefficients).all()

    def test_restore_frames_gives_video_frames_of_one_size(self) -> None:
        preprocessor = self.make_preprocessor()
        photo, box, _ = synthetic_portrait()
        size = self.sizes[0]
        for mode in self.modes:
            source = preprocessor.prepare(photo, mode, size, face_box=box)
            frames = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
            video = preprocessor.restore_frames(frames, source)
            assert video.dtype == np.uint8 and video.ndim == 4 and video.shape[0] == 3 and video.shape[3] == 3
            assert preprocessor.restore_frames(frames[:1], source).shape[1:] == video.shape[1:]
            if source.mode.pastes_back:
                assert video.shape[1:3] == photo.shape[:2], "full modes return frames of the whole photo"

    def test_restore_frames_refuses_non_finite_frames(self) -> None:
        preprocessor = self.make_preprocessor()
        photo, box, _ = synthetic_portrait()
        source = preprocessor.prepare(photo, self.modes[0], self.sizes[0], face_box=box)
        _assert_tavce_error(
            preprocessor.restore_frames, torch.full((1, 3, source.size, source.size), float("nan")), source
        )


class Audio2CoeffConformance:
    """The :class:`~tavce.models.audio2coeff.Audio2Coeff` contract. Override :meth:`make_audio2coeff`."""

    frames: int = 12

    def make_audio2coeff(self):
        raise NotImplementedError("return the Audio2Coeff to check")

    def _generate(self, audio2coeff, seed: int, **options) -> MotionCoefficients:
        from tavce.models.audio2coeff import Audio2CoeffOptions

        source = synthetic_source().coefficients
        with torch.inference_mode():
            return audio2coeff.generate(
                synthetic_windows(self.frames),
                source,
                Audio2CoeffOptions(**options),
                torch.Generator().manual_seed(seed),
            )

    def test_is_an_audio2coeff(self) -> None:
        from tavce.models.audio2coeff import Audio2Coeff

        assert isinstance(self.make_audio2coeff(), Audio2Coeff)

    def test_one_finite_row_per_audio_window(self) -> None:
        motion = self._generate(self.make_audio2coeff(), seed=0)
        assert isinstance(motion, MotionCoefficients) and motion.num_frames == self.frames
        assert torch.isfinite(motion.as_renderer_input()).all()

    def test_same_generator_seed_same_coefficients(self) -> None:
        audio2coeff = self.make_audio2coeff()
        first, second = self._generate(audio2coeff, seed=4), self._generate(audio2coeff, seed=4)
        torch.testing.assert_close(first.as_renderer_input(), second.as_renderer_input(), rtol=0, atol=0)

    def test_still_keeps_the_source_pose(self) -> None:
        motion = self._generate(self.make_audio2coeff(), seed=0, still=True)
        source_pose = synthetic_source().coefficients[64:70].to(motion.pose)
        torch.testing.assert_close(motion.pose, source_pose.expand_as(motion.pose))


class RendererConformance:
    """The :class:`~tavce.models.renderer.Renderer` contract. Override :meth:`make_renderer`.

    Frames must depend only on their own frame's inputs, so any split of a clip into
    batches gives the same frames (within ``batch_tolerance``).
    """

    frames: int = 5
    batch_tolerance: float = 1e-4  # float32 kernels may sum in another order per batch size; far below 1/255

    def make_renderer(self):
        raise NotImplementedError("return the Renderer to check")

    def _relationship(self, renderer, frames: int) -> AudioRelationship | None:
        if not renderer.has_cerl:
            return None
        generator = torch.Generator().manual_seed(2)
        differences = torch.randn(frames, self.relationship_dim(renderer), generator=generator)
        differences[0] = 0
        return AudioRelationship(differences)

    def relationship_dim(self, renderer) -> int:
        """D of the relationship a renderer with CERL takes; override when it is not 128."""
        return 128

    def test_is_a_renderer(self) -> None:
        from tavce.models.renderer import Renderer

        renderer = self.make_renderer()
        assert isinstance(renderer, Renderer)
        assert renderer.image_size in RENDER_SIZES

    def test_renders_every_mode_in_range(self) -> None:
        renderer = self.make_renderer()
        motion = synthetic_motion(self.frames)
        for mode in MODES:
            with torch.inference_mode():  # as the pipeline calls it
                state = renderer.prepare_source(synthetic_source(renderer.image_size, mode))
                frames = renderer.render(state, motion, 0, self.frames, self._relationship(renderer, self.frames))
            size = renderer.image_size
            assert tuple(frames.shape) == (self.frames, 3, size, size), mode
            assert torch.isfinite(frames).all() and 0 <= float(frames.min()) and float(frames.max()) <= 1

    def test_batches_do_not_change_frames(self) -> None:
        renderer = self.make_renderer()
        motion, relationship = synthetic_motion(self.frames), self._relationship(renderer, self.frames)
        with torch.inference_mode():
            state = renderer.prepare_source(synthetic_source(renderer.image_size))
            whole = renderer.render(state, motion, 0, self.frames, relationship)
            split = [
                renderer.render(state, motion, start, min(start + 2, self.frames), relationship)
                for start in range(0, self.frames, 2)
            ]
        torch.testing.assert_close(torch.cat(split).float(), whole.float(), rtol=0, atol=self.batch_tolerance)

    def test_motion_changes_frames(self) -> None:
        renderer = self.make_renderer()
        relationship = self._relationship(renderer, self.frames)
        still = MotionCoefficients(
            torch.zeros(self.frames, 64), torch.zeros(self.frames, 6), torch.zeros(self.frames, 3)
        )
        moving = synthetic_motion(self.frames)
        moving = MotionCoefficients(moving.expression * 10, moving.pose * 5, moving.crop)
        with torch.inference_mode():
            state = renderer.prepare_source(synthetic_source(renderer.image_size))
            difference = renderer.render(state, moving, 0, self.frames, relationship) - renderer.render(
                state, still, 0, self.frames, relationship
            )
        assert float(difference.abs().max()) > 0, "frames ignore the motion coefficients"


class TemporalCorrelationMetricConformance:
    """The :class:`~tavce.models.tavc.TemporalCorrelationMetric` contract. Override :meth:`make_metric`.

    ``mouth_size``: side of the mouth crops the metric's visual side takes.
    """

    frames: int = 6
    mouth_size: int = 112

    def make_metric(self):
        raise NotImplementedError("return the TemporalCorrelationMetric to check")

    def test_is_a_metric(self) -> None:
        from tavce.models.tavc import TemporalCorrelationMetric

        assert isinstance(self.make_metric(), TemporalCorrelationMetric)

    def test_audio_relationships_pair_each_frame_with_the_previous(self) -> None:
        metric = self.make_metric()
        windows = synthetic_windows(self.frames, seed=1)
        with torch.inference_mode():
            relationship = metric.audio_relationships(windows)
            current = windows.windows.float()
            previous = torch.cat([current[:1], current[:-1]])
            pairwise = metric.audio_relationship(previous, current)
        assert isinstance(relationship, AudioRelationship) and relationship.num_frames == self.frames
        assert torch.isfinite(relationship.differences).all()
        torch.testing.assert_close(relationship.differences.float(), pairwise.float(), rtol=1e-4, atol=1e-5)

    def test_visual_relationship_lives_in_the_audio_space_and_similarity_is_bounded(self) -> None:
        metric = self.make_metric()
        generator = torch.Generator().manual_seed(3)
        mouths = torch.rand(2, 2, 3, self.mouth_size, self.mouth_size, generator=generator) * 2 - 1
        windows = synthetic_windows(4, seed=2).windows.float()
        with torch.inference_mode():
            visual = metric.visual_relationship(mouths[0], mouths[1])
            audio = metric.audio_relationship(windows[:2], windows[2:])
            similarity = metric.similarity(audio, visual)
        assert visual.shape == audio.shape and visual.shape[0] == 2
        assert similarity.shape == (2,) and bool(((similarity >= -1e-6) & (similarity <= 1 + 1e-6)).all())


class AudioEncoderConformance:
    """The :class:`~tavce.models.audio_encoder.AudioEncoder` contract. Override :meth:`make_encoder`."""

    def make_encoder(self):
        raise NotImplementedError("return the AudioEncoder to check")

    def test_is_an_audio_encoder(self) -> None:
        from tavce.models.audio_encoder import AudioEncoder

        encoder = self.make_encoder()
        assert isinstance(encoder, AudioEncoder) and encoder.embedding_dim > 0

    def test_each_window_is_encoded_on_its_own(self) -> None:
        encoder = self.make_encoder()
        windows = synthetic_windows(5, seed=3).windows
        with torch.inference_mode():
            together = encoder(windows)
            alone = torch.cat([encoder(windows[index : index + 1]) for index in range(5)])
        assert tuple(together.shape) == (5, encoder.embedding_dim) and torch.isfinite(together).all()
        torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
