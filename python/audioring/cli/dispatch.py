"""Running a command line: parse it, run the command it names, turn failures into the exit status."""

from __future__ import annotations

import sys
from typing import Optional

from .commands import COMMANDS
from .errors import CliError, UsageError
from .parser import USAGE_STATUS, build_parser, print_usage_error


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see `audioring.cli`).
    """
    parser, command_parsers = build_parser(COMMANDS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or an argparse error (already printed)
        return 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1
    # required=True: argparse has already refused a command line without a command.
    command = next(c for c in COMMANDS if c.name == args.command)
    command_parser = command_parsers[command.name]
    try:
        return command.run(args)
    except UsageError as error:
        print_usage_error(command_parser.prog, str(error))
        return USAGE_STATUS
    except CliError as error:
        print(f"{command_parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
