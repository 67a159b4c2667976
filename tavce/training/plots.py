"""Curves of a training run: ``RUN/curves.png`` from the run's figure logs (``tavce plot RUN``).

Read from ``RUN/metrics.jsonl`` (one record every ``log_every`` steps) and
``RUN/validation.jsonl`` (one record per validation); nested figures (stage 2's
``losses`` and ``learning_rates``) are drawn under dotted names. Four panels over the
step: losses, learning rates, the other training figures (similarities), the
validation figures. Drawing needs matplotlib, part of the ``tavce[train]`` extra.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tavce._extras import require
from tavce.errors import InvalidArgumentError

__all__ = ["CURVES_NAME", "METRICS_LOG", "VALIDATION_LOG", "flatten_figures", "plot_run", "read_figures"]

CURVES_NAME = "curves.png"
METRICS_LOG = "metrics.jsonl"
VALIDATION_LOG = "validation.jsonl"
_NOT_PLOTTED = {"step", "epoch", "seconds", "car_skipped", "car_skipped_total"}


def flatten_figures(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a log record under dotted names (``losses.l1``); None and text left out."""
    figures: dict[str, float] = {}
    for name, value in record.items():
        if isinstance(value, dict):
            figures.update(flatten_figures(value, f"{prefix}{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            figures[f"{prefix}{name}"] = float(value)
    return figures


def read_figures(log: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, flattened figures) of every record in a JSON-lines log (empty if there is none)."""
    if not log.is_file():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [(int(record["step"]), flatten_figures(record)) for record in records]


def _series(records: list[tuple[int, dict[str, float]]], names: list[str]) -> dict[str, tuple[list[int], list[float]]]:
    return {
        name: ([step for step, figures in records if name in figures], [figures[name] for _, figures in records if name in figures])
        for name in names
    }


def plot_run(run: str | Path, output: str | Path | None = None) -> Path:
    """Draw a run's curves (also while it trains) to ``output`` (default ``RUN/curves.png``).

    Raises:
        InvalidArgumentError: ``run`` has no ``metrics.jsonl`` (not a training run folder, or no step logged yet).
        MissingExtraError: matplotlib is not installed (``pip install 'tavce[train]'``).
    """
    run = Path(run)
    training = read_figures(run / METRICS_LOG)
    validation = read_figures(run / VALIDATION_LOG)
    if not training and not validation:
        raise InvalidArgumentError(
            f"{run}: no {METRICS_LOG} with figures; pass the run folder of `tavce train tavc|renderer` "
            "(figures are logged every --log-every steps)"
        )
    require("matplotlib", "train")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = sorted({name for _, figures in training for name in figures} - _NOT_PLOTTED)
    panels = {
        "losses": [name for name in names if "loss" in name],
        "learning rate": [name for name in names if "learning_rate" in name],
    }
    panels["similarities and other figures"] = [
        name for name in names if name not in panels["losses"] and name not in panels["learning rate"]
    ]
    shown = [(title, _series(training, members)) for title, members in panels.items() if members]
    if validation:
        members = sorted({name for _, figures in validation for name in figures} - _NOT_PLOTTED)
        shown.append(("validation", _series(validation, members)))
    figure, axes = pyplot.subplots(len(shown), 1, figsize=(9, 3 * len(shown)), sharex=True, squeeze=False)
    for axis, (title, series) in zip(axes[:, 0], shown):
        for name, (steps, values) in series.items():
            axis.plot(steps, values, label=name, marker="." if len(steps) < 20 else None)
        axis.set_title(title)
        if title == "learning rate":
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small", loc="best", ncol=2)
    axes[-1, 0].set_xlabel("step")
    figure.suptitle(str(run))
    figure.tight_layout()
    output = Path(output) if output is not None else run / CURVES_NAME
    partial = output.with_name(output.stem + ".partial.png")
    figure.savefig(partial, dpi=100)
    pyplot.close(figure)
    os.replace(partial, output)
    return output
