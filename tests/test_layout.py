"""The package layout: names that moved keep their old import paths."""

import importlib

import pytest

MOVED = [
    # (old module, name, new module)
    ("tavce.preprocess", "PreparedSource", "tavce.types"),
    ("tavce.preprocess", "CropGeometry", "tavce.types"),
    ("tavce.preprocess", "CropMode", "tavce.types"),
    ("tavce.preprocess.crop", "CropMode", "tavce.types"),
    ("tavce.preprocess.crop", "WORKING_SIZES", "tavce.types"),
    ("tavce.conformance", "RendererConformance", "tavce.testing.conformance"),
    ("tavce.conformance", "synthetic_source", "tavce.testing.portraits"),
    ("tavce.testing", "make_synthetic_videos", "tavce.testing.videos"),
    ("tavce.testing", "reference_state_dict", "tavce.testing.recipe"),
    ("tavce.testing", "OFFICIAL_FILES", "tavce.testing.official"),
    ("tavce.testing", "tiny_components", "tavce.testing.tiny"),
    ("tavce.testing", "face_photo", "tavce.testing.portraits"),
]


@pytest.mark.parametrize("old, name, new", MOVED)
def test_moved_names_keep_their_old_import_path(old, name, new):
    moved = getattr(importlib.import_module(new), name if name != "WORKING_SIZES" else "RENDER_SIZES")
    assert getattr(importlib.import_module(old), name) is moved


def test_conformance_reexports_every_suite():
    old, new = importlib.import_module("tavce.conformance"), importlib.import_module("tavce.testing.conformance")
    assert old.__all__ == new.__all__
    assert all(getattr(old, name) is getattr(new, name) for name in new.__all__)
