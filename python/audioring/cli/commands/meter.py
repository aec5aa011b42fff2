"""``audioring meter``: a live peak meter per channel, until Ctrl-C or for ``--seconds``."""

from __future__ import annotations

import argparse

from .. import capture
from ..display import notice
from ..errors import CliError
from ..inputs import choose_input, start_recorder
from ..options import CaptureOptions, add_capture_options, seconds
from ..parser import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The capture options, then the command's own."""
    add_capture_options(parser)
    parser.add_argument("--seconds", "-s", type=seconds, metavar="S", help="stop after S seconds (default: Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    """Meter the input, then print the summary on stdout."""
    inp = choose_input(CaptureOptions.from_args(args), notice)
    total = None if args.seconds is None else max(1, round(args.seconds * inp.rate))
    # capture.RING_SECONDS is read now, not at import, so that tests can shorten it.
    rec, inp = start_recorder(inp, "float32", capture.RING_SECONDS, notice)
    notice(f"metering {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz "
           f"{capture.until_text(total, inp.rate)}")
    result = capture.capture(rec, f"METER {inp.name}", total, None, lambda block: None)
    capture.print_summary(result, inp.rate, frames_label="frames")
    if result.failure:
        raise CliError(result.failure)
    return 0


COMMAND = Command(
    name="meter",
    help="show a live level meter",
    description="Show each channel's peak level in dBFS until Ctrl-C.",
    run=run,
    add_arguments=add_arguments,
)
