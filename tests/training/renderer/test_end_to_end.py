"""Synthetic videos → prepared data → RendererDataset batches → training steps → tavce folder → pipeline frames."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from tavce import TalkingHeadPipeline
from tavce.models.renderer import CERLRenderer
from tavce.training.data import RendererDataset, RendererDatasetConfig
from tavce.training.renderer import RendererTrainer, VGG19Features
from tests.helpers import SyntheticFaceLandmarker
from tests.training.renderer.tiny import TINY_VGG, cached_tiny_components, tiny_training_config


def test_trained_folder_renders_through_the_pipeline(prepared_clips: Path, portrait, speech: Path, tmp_path: Path) -> None:
    components = cached_tiny_components(0)
    config = tiny_training_config()
    trainer = RendererTrainer.from_renderer(
        components["renderer"], components["metric"], config,
        landmarker=SyntheticFaceLandmarker(), perceptual_network=VGG19Features(TINY_VGG),
    )  # fmt: skip
    torch.manual_seed(0)
    loader = DataLoader(RendererDataset(prepared_clips, RendererDatasetConfig(repeats=2)), batch_size=1, shuffle=True)
    for batch in itertools.islice(loader, 2):
        losses = trainer.train_step(batch)
        assert "car" in losses and all(math.isfinite(value) for value in losses.values())
    folder = trainer.save_pretrained(tmp_path / "trained", base=components)

    provenance = json.loads((folder / "pipeline_config.json").read_text())["provenance"]
    assert provenance["variant"] == "full" and provenance["step"] == 2
    pipe = TalkingHeadPipeline.from_pretrained(folder)
    assert pipe.has_cerl and pipe.size == 256
    exported = trainer.export_renderer()
    saved = pipe.renderer.state_dict()
    assert all(torch.equal(saved[key], value) for key, value in exported.state_dict().items())
    # Training changed the renderer it started from.
    assert not torch.equal(
        saved["mapping.input_conv.weight"], components["renderer"].state_dict()["mapping.input_conv.weight"]
    )

    photo, box = portrait
    result = pipe(photo, speech, face_box=box, seed=0, batch_size=2, progress=False)
    frames = np.stack(list(itertools.islice(result.frames, 2)))
    assert frames.shape[0] == 2 and frames.dtype == np.uint8 and frames.std() > 0
    assert isinstance(pipe.renderer, CERLRenderer)
