"""The evaluation report: one row of scores per video, the means, and FID over all frames; JSON and a text table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tavce.errors import OutputError

__all__ = ["METRIC_COLUMNS", "EvaluationReport", "VideoScores"]

METRIC_COLUMNS = ("csim", "lse_d", "lse_c", "tavc")
"""Per-video scores averaged into the report's means (None where a metric was not computed)."""

_HEADERS = {"csim": "CSIM↑", "lse_d": "LSE-D↓", "lse_c": "LSE-C↑", "tavc": "TAVC↑", "sync_offset": "offset"}


@dataclass(frozen=True)
class VideoScores:
    """Scores of one generated video against its reference.

    Attributes:
        name: the video's file stem (the same in both folders).
        frames: frames compared (both videos cut to the shorter one and to the frame cap).
        csim: mean ArcFace cosine similarity, generated vs real frame by frame, in [−1, 1].
        lse_d, lse_c: SyncNet distance and confidence of the generated video with its audio.
        sync_offset: SyncNet's AV offset in frames (0 when in sync).
        tavc: mean TAVC similarity of the generated video's consecutive frame pairs, in [0, 1].
    """

    name: str
    frames: int
    csim: float | None = None
    lse_d: float | None = None
    lse_c: float | None = None
    sync_offset: int | None = None
    tavc: float | None = None


@dataclass(frozen=True)
class EvaluationReport:
    """Per-video rows, their means, and FID between all generated and all real frames.

    Attributes:
        videos: one :class:`VideoScores` per evaluated video, in name order.
        fid: FID of the pooled frames (the paper's protocol), None when not computed.
        backbones: which weights each metric used (for the record), e.g. ``{"fid": "pt_inception-....pth"}``.
        settings: evaluation settings worth keeping next to the numbers (frame cap, offsets searched, ...).
    """

    videos: tuple[VideoScores, ...]
    fid: float | None = None
    backbones: dict[str, str] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)

    def means(self) -> dict[str, float | None]:
        """Mean of each metric over the videos that have it (None where none has)."""
        result: dict[str, float | None] = {}
        for column in METRIC_COLUMNS:
            values = [getattr(video, column) for video in self.videos if getattr(video, column) is not None]
            result[column] = sum(values) / len(values) if values else None
        return result

    def to_dict(self) -> dict:
        """The JSON form: ``{"summary": {"videos", "frames", "fid", <means>}, "videos": [...], "backbones", "settings"}``."""
        summary = {"videos": len(self.videos), "frames": sum(video.frames for video in self.videos), "fid": self.fid}
        return {
            "summary": summary | self.means(),
            "videos": [asdict(video) for video in self.videos],
            "backbones": dict(self.backbones),
            "settings": dict(self.settings),
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as indented JSON (NaN written as null)."""
        path = Path(path)
        text = json.dumps(_without_nan(self.to_dict()), indent=2, ensure_ascii=False) + "\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as error:
            raise OutputError(f"{path}: cannot write the report ({error.strerror}); choose a writable path") from error
        return path

    def format_table(self) -> str:
        """A plain-text table: one row per video, then the means and FID."""
        columns = ["frames", *METRIC_COLUMNS, "sync_offset"]
        header = ["video", *(_HEADERS.get(column, column) for column in columns)]
        rows = [[video.name, *(_cell(getattr(video, column)) for column in columns)] for video in self.videos]
        means = self.means()
        rows.append(["mean", str(sum(video.frames for video in self.videos)),
                     *(_cell(means[column]) for column in METRIC_COLUMNS), ""])  # fmt: skip
        widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(cell.ljust(width) if index == 0 else cell.rjust(width)
                             for index, (cell, width) in enumerate(zip(cells, widths))).rstrip()  # fmt: skip

        rule = "-" * len(line(header))
        body = [line(header), rule, *(line(row) for row in rows[:-1]), rule, line(rows[-1])]
        body.append(f"FID↓ (all frames): {_cell(self.fid)}")
        return "\n".join(body)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _without_nan(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value
