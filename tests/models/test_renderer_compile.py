"""torch.compile of the render step: few graphs, frames equal to eager (slow: compilation takes minutes on 2 cores)."""

from __future__ import annotations

import pytest
import torch

from tavce.testing import tiny_components

MAX_GRAPHS = 5
"""Left after the derived-weights cache stays out of traced code: the three data-dependent finite checks split it."""


@pytest.mark.slow
def test_compiled_render_step_has_few_graphs_and_eager_frames():
    renderer = tiny_components(0)["renderer"].eval()
    generator = torch.Generator().manual_seed(0)
    size = renderer.image_size
    image = torch.rand(1, 3, size, size, generator=generator)
    semantics = torch.randn(70, generator=generator) * 0.1
    windows = torch.randn(2, 70, 27, generator=generator) * 0.1
    relationship = torch.randn(2, renderer.generator.config.relationship_dim, generator=generator)
    with torch.inference_mode():
        state = renderer.prepare_image(image, semantics)
        eager = renderer.render_windows(state, windows, relationship)

    def step(driving: torch.Tensor, differences: torch.Tensor) -> torch.Tensor:
        return renderer.render_windows(state, driving, differences)

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(step)(windows, relationship)
    assert explanation.graph_count <= MAX_GRAPHS, [str(reason.reason)[:120] for reason in explanation.break_reasons]
    compiled = torch.compile(step, backend="aot_eager")(windows, relationship)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)
