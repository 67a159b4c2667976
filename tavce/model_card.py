"""The model card (``README.md``) written beside converted weights and pushed to the Hub.

It names where every weight came from and under which terms, because a tavce
folder mixes weights with different licences: SadTalker's (Apache-2.0), TAVCE's,
and -- at run time, not inside the folder -- the face-analysis models of
insightface and dlib, whose terms restrict commercial use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tavce

__all__ = ["MODEL_CARD_NAME", "model_card"]

MODEL_CARD_NAME = "README.md"

_LICENCES = """\
## Sources and licences

| part | source | terms |
|---|---|---|
| Audio2Coeff (ExpNet, PoseVAE), face renderer (keypoint detector, MappingNet, generator), 3DMM face reconstruction | SadTalker, Zhang et al., CVPR 2023 (github.com/OpenTalker/SadTalker; weights from the Hugging Face repository `vinthony/SadTalker-V002rc`) | Apache-2.0 |
| CERL fusion layers of the generator, the TAVC metric (audio and mouth encoders; present only when converted with TAVCE weights) | TAVCE (github.com/ZH-Xu410/TAVCE) | the licence of the TAVCE authors' release; check it before redistributing |
| Face enhancer: GFPGAN v1.4 restorer (present only when converted with enhancer weights) | GFPGAN, Wang et al., CVPR 2021 (github.com/TencentARC/GFPGAN, release v1.3.0, `GFPGANv1.4.pth`) | Apache-2.0 |
| Face enhancer: ParseNet face parser (present only when converted with enhancer weights) | facexlib (github.com/xinntao/facexlib, release v0.2.2, `parsing_parsenet.pth`) | published with facexlib (MIT-licensed code); check the release's terms before redistributing |
| Face detection and 68-point landmarks (downloaded separately at run time, not part of this folder) | insightface model packs (buffalo_l / antelopev2) | non-commercial research use only, per the insightface model-pack terms |
| Fallback 68-point landmark model (not part of this folder) | dlib `shape_predictor_68_face_landmarks` | trained on the iBUG 300-W dataset, whose licence excludes commercial use |

Using this folder for a commercial product needs, at least, another face
detector/landmarker than the two above and a check of the TAVCE terms.
"""


def _component_rows(components: Mapping[str, str]) -> str:
    rows = ["| component | class |", "|---|---|"]
    rows += [f"| `{name}` | `{path}` |" for name, path in components.items()]
    return "\n".join(rows)


def _provenance_lines(provenance: Mapping[str, Any]) -> str:
    lines = []
    source = provenance.get("source")
    if source:
        revision = provenance.get("revision")
        lines.append(f"- converted from `{source}`" + (f" at revision `{revision}`" if revision else ""))
    for filename in provenance.get("files", []):
        lines.append(f"- official file `{filename}`")
    if "size" in provenance:
        lines.append(f"- face render resolution: {provenance['size']}x{provenance['size']}")
    if "cerl" in provenance:
        lines.append(
            "- CERL (TAVCE audio-relationship fusion): "
            + ("on" if provenance["cerl"] else "off (SadTalker renderer; no TAVCE weights were given)")
        )
    return "\n".join(lines) or "- provenance not recorded"


def model_card(pipeline_config: Mapping[str, Any], *, repo_id: str | None = None) -> str:
    """The Markdown model card of a tavce folder, from its ``pipeline_config.json`` content.

    Args:
        pipeline_config: the parsed ``pipeline_config.json`` (``components``, ``preprocessing``,
            optional ``provenance`` written by ``tavce convert``).
        repo_id: the Hub repository the card will live in (used in the usage example).
    """
    provenance = pipeline_config.get("provenance", {})
    name = repo_id or "path/to/this/folder"
    cerl = provenance.get("cerl")
    tags = ["talking-head", "audio-driven", "sadtalker"] + (["tavce"] if cerl else [])
    front_matter = "\n".join(
        ["---", "library_name: tavce", "license: other", "license_name: mixed (see Sources and licences)"]
        + ["tags:"]
        + [f"- {tag}" for tag in tags]
        + ["---"]
    )
    return f"""{front_matter}

# tavce weights{f": {repo_id}" if repo_id else ""}

Audio-driven talking-head animation weights in the tavce format (one portrait + speech -> video),
written by tavce {pipeline_config.get("version", tavce.__version__)}.

## Use

```python
from tavce.pipeline import TalkingHeadPipeline

pipe = TalkingHeadPipeline.from_pretrained("{name}")
```

or on the command line: `tavce generate face.png speech.wav -o out.mp4 --weights {name}`.

## Provenance

{_provenance_lines(provenance)}

## Components

{_component_rows(pipeline_config.get("components", {}))}

{_LICENCES}"""
