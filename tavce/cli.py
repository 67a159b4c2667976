"""Command-line front-end: ``tavce <command> [options]`` (also ``python -m tavce``).

Each command is a :class:`Subcommand` -- a name, a one-line help, a function that
adds its arguments and a function that runs it -- defined in its own module as
``SUBCOMMAND`` and listed in :data:`SUBCOMMAND_MODULES`. Modules are imported when
the parser is built, so they must import heavy libraries inside ``run`` only.

Errors tavce raises on purpose (:class:`~tavce.errors.TavceError`) are printed as
one line on stderr with exit status 2, without a traceback (``--verbose`` adds it
to the log). Logging is configured here and nowhere else in the library.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tavce
from tavce.errors import TavceError
from tavce.constants import DTYPE_NAMES

__all__ = [
    "Subcommand",
    "SUBCOMMAND_MODULES",
    "add_device_arguments",
    "available_subcommands",
    "build_parser",
    "main",
    "parse_face_box",
]

logger = logging.getLogger(__name__)

EXIT_ERROR = 2  # same status argparse uses for bad arguments
EXIT_INTERRUPTED = 130


def parse_face_box(text: str) -> tuple[float, float, float, float]:
    """argparse type for ``--face-box X0,Y0,X1,Y1`` (photo pixels) -> a 4-tuple of floats."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: expected four numbers X0,Y0,X1,Y1 (pixels)")
    return values


def add_device_arguments(group: argparse._ActionsContainer, *, dtype_help: str | None = None) -> None:
    """``--device`` (and, with ``dtype_help``, ``--dtype``) with the library's one default rule (tavce.device)."""
    group.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1, mps or auto (default auto: cuda when torch sees a GPU, else cpu)",
    )
    if dtype_help is not None:
        group.add_argument(
            "--dtype",
            default=None,
            choices=("auto", *DTYPE_NAMES),
            help=f"{dtype_help} (default auto: float16 on CUDA, float32 elsewhere; bfloat16 is optional on CPU)",
        )


@dataclass(frozen=True)
class Subcommand:
    """One ``tavce <name>`` command.

    Attributes:
        name: the word typed after ``tavce``.
        help: one line shown by ``tavce --help``.
        add_arguments: adds the command's options to its parser.
        run: executes the command from the parsed arguments; returns the exit status.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# Modules defining ``SUBCOMMAND: Subcommand``, in the order shown by --help
# (e.g. "tavce.commands.generate", "tavce.commands.convert", "tavce.commands.push").
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "tavce.commands.generate",
    "tavce.commands.batch",
    "tavce.commands.convert",
    "tavce.commands.push",
    "tavce.commands.prepare_data",
    "tavce.commands.train",
    "tavce.commands.plot",
    "tavce.commands.evaluate",
    "tavce.commands.demo",
)


def available_subcommands() -> list[Subcommand]:
    """The commands of :data:`SUBCOMMAND_MODULES`."""
    return [importlib.import_module(module).SUBCOMMAND for module in SUBCOMMAND_MODULES]


def build_parser(subcommands: Sequence[Subcommand]) -> argparse.ArgumentParser:
    """The ``tavce`` parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="tavce",
        description="Audio-driven talking-head animation (TAVCE / SadTalker): one portrait + speech -> video.",
    )
    parser.add_argument("--version", action="version", version=f"tavce {tavce.__version__}")
    verbose_help = "log debug messages (and tracebacks of errors)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    commands = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for subcommand in subcommands:
        command_parser = commands.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help)
        # Also after the command (`tavce generate ... -v`); SUPPRESS keeps a -v given before it.
        command_parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
        subcommand.add_arguments(command_parser)
        command_parser.set_defaults(run=subcommand.run)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
        stream=sys.stderr,
        force=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser(available_subcommands())
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version and argument errors
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_ERROR
    _configure_logging(arguments.verbose)
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return arguments.run(arguments)
    except TavceError as error:
        logger.debug("traceback of the error", exc_info=True)
        print(f"tavce {arguments.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"tavce {arguments.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
