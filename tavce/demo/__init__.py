"""The web app of ``tavce demo``: a Gradio page for people who do not write Python.

Embed it in your own server or a Hugging Face Space::

    from tavce import TalkingHeadPipeline
    from tavce.demo import build_app, request_workers
    workers = request_workers()  # requests run here; load on them too (faster on a CPU)
    pipe = workers.submit(TalkingHeadPipeline.from_pretrained).result()
    build_app(pipe, workers=workers).launch()

Needs the ``demo`` extra (``pip install 'tavce[demo]'``, which brings gradio).
"""

from __future__ import annotations

from tavce.demo.app import build_app, request_workers
from tavce.demo.limits import DemoLimits

__all__ = ["DemoLimits", "build_app", "request_workers"]
