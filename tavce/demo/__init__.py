"""The web app of ``tavce demo``: a Gradio page for people who do not write Python.

Embed it in your own server or a Hugging Face Space::

    from tavce import TalkingHeadPipeline
    from tavce.demo import build_app
    build_app(TalkingHeadPipeline.from_pretrained()).launch()

Needs the ``demo`` extra (``pip install 'tavce[demo]'``, which brings gradio).
"""

from __future__ import annotations

from tavce.demo.app import build_app
from tavce.demo.limits import DemoLimits

__all__ = ["DemoLimits", "build_app"]
