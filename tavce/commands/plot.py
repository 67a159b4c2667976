"""``tavce plot RUN``: draw a training run's curves (also while it trains) to ``RUN/curves.png``."""

from __future__ import annotations

import argparse

from tavce.cli import Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", metavar="RUN", help="run folder of `tavce train tavc` or `tavce train renderer` (holds metrics.jsonl)"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="the picture to write (default RUN/curves.png)"
    )


def run(arguments: argparse.Namespace) -> int:
    import logging

    from tavce.training.plots import plot_run

    written = plot_run(arguments.folder, arguments.output)
    logging.getLogger("tavce.commands.plot").info("curves drawn to %s", written)
    return 0


SUBCOMMAND = Subcommand(
    name="plot",
    help="draw a training run's losses, similarities, learning rate and validation figures to RUN/curves.png "
    "(needs pip install 'tavce[train]')",
    add_arguments=add_arguments,
    run=run,
)
