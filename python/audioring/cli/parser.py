"""The argument parser: what a command is (`Command`), and the parser built from the commands."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Callable, NoReturn, Optional

from .. import __version__, _core

PROG = "audioring"

#: The exit status of every argument error: argparse's own, and `UsageError` (see `errors`).
USAGE_STATUS = 2


def usage_hint(prog: str) -> str:
    """The line under an argument error that says where the usage is, e.g. ``see `audioring record -h```."""
    return f"see `{prog} -h`"


def print_usage_error(prog: str, message: str) -> None:
    """An argument error in two lines on stderr: ``PROG: error: MESSAGE``, then `usage_hint`.

    The usage block is left to ``-h``: the error is the line to read, and it
    must not scroll away behind eight lines of options.
    """
    print(f"{prog}: error: {message}", file=sys.stderr)
    print(usage_hint(prog), file=sys.stderr)


def version_text() -> str:
    """What ``audioring --version`` prints: the version, and the git revision the native module was built from.

    The revision is left out when the build did not know it (``unknown``: not
    built from a git checkout); ``+dirty`` says the tree differed from it.
    """
    revision = _core.__git_revision__
    known = f" (native module built from git {revision})" if revision and revision != "unknown" else ""
    return f"{PROG} {__version__}{known}"


class _PrintVersion(argparse.Action):
    """``--version``: `version_text` on one line (argparse's own version action wraps it to the terminal)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: Optional[str] = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: Optional[str] = None) -> NoReturn:
        print(version_text())
        raise SystemExit(0)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, reporting an argument error as `print_usage_error` does (status `USAGE_STATUS`).

    Subparsers are made of the parser's own class, so every command's errors take this form.
    """

    def error(self, message: str) -> NoReturn:
        print_usage_error(self.prog, message)
        raise SystemExit(USAGE_STATUS)


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
    parser: argparse.ArgumentParser = ArgumentParser(
        prog=PROG,
        description="Record and meter audio through audioring's lock-free native capture.",
        epilog=f"Run `{PROG} COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action=_PrintVersion,
                        help="print audioring's version (and the native module's git revision) and exit")
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    command_parsers: dict[str, argparse.ArgumentParser] = {}
    for command in commands:
        command_parser = subparsers.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(command_parser)
        command_parsers[command.name] = command_parser
    return parser, command_parsers
