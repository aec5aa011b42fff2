"""The argument parser: what a command is (`Command`), and the parser built from the commands."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Callable

PROG = "audioring"


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """For a command without options of its own."""


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``audioring NAME`` command: its help texts, its arguments and what runs it.

    Attributes
    ----------
    name : str
        What follows ``audioring`` on the command line.
    help : str
        Its line in ``audioring --help``.
    description : str
        The paragraph of ``audioring NAME --help``.
    run : callable
        Runs the command with the parsed arguments and returns the exit
        status; raises `UsageError` or `CliError` (see `errors`) to fail.
    add_arguments : callable
        Adds the command's arguments to its (sub)parser.
    """

    name: str
    help: str
    description: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


def build_parser(commands: Sequence[Command]) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``audioring`` parser with a subcommand for each of ``commands``, in their order.

    Returns
    -------
    (parser, command_parsers)
        The parser, and each command's subparser by name (for usage errors).
        After parsing, ``args.command`` is the name of the command given.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record and meter audio through audioring's lock-free native capture.",
        epilog=f"Run `{PROG} COMMAND --help` for a command's options.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    command_parsers = {}
    for command in commands:
        command_parser = subparsers.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(command_parser)
        command_parsers[command.name] = command_parser
    return parser, command_parsers
