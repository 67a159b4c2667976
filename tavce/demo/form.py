"""The generation options on the page: one widget per :class:`~tavce.options.GenerationOptions` field.

Each offered option is a :class:`FormField` naming the field it fills, so the form's values
go through :meth:`GenerationOptions.from_mapping` as they are. A new option is added to the
page by adding a ``FormField`` here; fields a visitor should not set are listed in
:data:`NOT_OFFERED` with the reason. Every field of ``GenerationOptions`` is in one of the
two (the tests check it), so a field added to the options is never silently left off the page.
Widget defaults are the options' own defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tavce.options import NUM_POSE_STYLES, GenerationOptions

__all__ = ["FORM_FIELDS", "MODE_CHOICES", "NOT_OFFERED", "SECTIONS", "FormField", "build_form"]

MODE_CHOICES: Mapping[str, str] = {
    "crop": "Face only: a tight crop from brows to chin",
    "extcrop": "Face with hair and shoulders: a wider crop",
    "resize": "Whole photo squeezed into a square (for photos that are mostly face)",
    "full": "Whole photo at its own size, the animated face pasted back in (best with a still head)",
    "extfull": "Whole photo, the wider crop pasted back in",
}
"""Each crop mode with the one line the page shows for it."""

SECTIONS: Mapping[str, str] = {
    "Framing": "How much of the photo the video shows.",
    "Motion": "How the head and face move.",
    "Repeatability": "The same seed with the same inputs and options gives the same video.",
}
"""The groups of options on the page, in order, each with its one-line explanation."""


@dataclass(frozen=True)
class FormField:
    """One option on the page.

    Attributes:
        name: the :class:`GenerationOptions` field its value fills.
        section: the group of :data:`SECTIONS` it is shown in.
        widget: builds the Gradio component, given the gradio module, the field's default value and
            keyword arguments every widget takes (its ``elem_id``).
    """

    name: str
    section: str
    widget: Callable[..., Any]


FORM_FIELDS: tuple[FormField, ...] = (
    FormField(
        "mode", "Framing",
        lambda gr, default, **common: gr.Radio(
            choices=[(f"{label} ({mode})", mode) for mode, label in MODE_CHOICES.items()],
            value=default, label="Crop mode", **common,
        ),
    ),
    FormField(
        "face_box", "Framing",
        lambda gr, default, **common: gr.Textbox(
            value="", label="Face box (optional)", placeholder="left, top, right, bottom",
            info="Where the face is, in photo pixels. Use it when no face is found; face detection is then skipped.",
            **common,
        ),
    ),
    FormField(
        "still", "Motion",
        lambda gr, default, **common: gr.Checkbox(
            value=default, label="Keep the head still (only the face moves)", **common,
        ),
    ),
    FormField(
        "pose_style", "Motion",
        lambda gr, default, **common: gr.Slider(
            0, NUM_POSE_STYLES - 1, value=default, step=1, label="Head-motion style",
            info=f"{NUM_POSE_STYLES} styles of head movement learned from real speakers (0 to {NUM_POSE_STYLES - 1}).",
            **common,
        ),
    ),
    FormField(
        "expression_scale", "Motion",
        lambda gr, default, **common: gr.Slider(
            0.0, 3.0, value=default, step=0.1, label="Expression strength",
            info="0 keeps a neutral face, 1 is as predicted from the speech, more exaggerates.", **common,
        ),
    ),
    FormField(
        "use_blink", "Motion",
        lambda gr, default, **common: gr.Checkbox(value=default, label="Add eye blinks", **common),
    ),
    FormField(
        "seed", "Repeatability",
        # A textbox, not a number field: an empty number field sends 0, and empty must mean "draw one".
        lambda gr, default, **common: gr.Textbox(
            value="" if default is None else str(default), label="Seed",
            placeholder="empty: a new random one", info="A whole number; the seed used is shown with the video.",
            **common,
        ),
    ),
)
"""The options a visitor sets, in page order within their sections."""

NOT_OFFERED: Mapping[str, str] = {
    "batch_size": "the server chooses it for its device",
    "progress": "the page shows its own progress bar",
    "ref_pose": "a reference video (or tensor); the page takes no video uploads",
    "ref_eyeblink": "a reference video (or tensor); the page takes no video uploads",
    "yaw": "free-view head angles are a command-line and Python option (--input-yaw)",
    "pitch": "free-view head angles are a command-line and Python option (--input-pitch)",
    "roll": "free-view head angles are a command-line and Python option (--input-roll)",
    "face_index": "the largest face is animated; a face box picks another",
    "crf": "the server chooses the video quality",
    "enhance": "the server's pipeline enhances exactly when it was loaded with an enhancer (build_app(pipe))",
    "smooth_pose": "a motion-model setting for research comparisons",
    "variant": "a motion-model setting for research comparisons (TAVCE's evaluation script)",
}
"""``GenerationOptions`` fields left off the page, and why."""


def build_form(gr: ModuleType) -> dict[str, Any]:
    """Create the option widgets inside the current Gradio layout: one column per section, side by side.

    Each widget's element id is ``option-<field name>`` (``#option-seed``), for scripts that drive the page.

    Returns:
        Field name -> Gradio component, in page order.
    """
    defaults = GenerationOptions()
    widgets: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        for section, explanation in SECTIONS.items():
            with gr.Column(), gr.Group():
                gr.Markdown(f"**{section}**: {explanation}")
                for field in (field for field in FORM_FIELDS if field.section == section):
                    default = getattr(defaults, field.name)
                    widgets[field.name] = field.widget(gr, default, elem_id=f"option-{field.name}")
    return widgets
