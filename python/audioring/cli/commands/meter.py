"""``audioring meter``: a live peak meter per channel, until Ctrl-C or for ``--seconds``."""

from __future__ import annotations

import argparse
from typing import Optional

from .. import capture
from ..capture import Recording
from ..display import notice
from ..errors import CliError
from ..inputs import choose_input, latency_text, start_recorder
from ..options import CaptureOptions, add_buffer_option, add_capture_options, seconds
from ..parser import Command
from ..sharing import add_from_option, open_shared, shared_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The capture options, then the command's own."""
    add_capture_options(parser)
    parser.add_argument("--seconds", "-s", type=seconds, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    add_buffer_option(parser, "how long the display may stall before frames go unmetered (counted as lost)",
                      capture.RING_SECONDS)
    add_from_option(parser)


def run(args: argparse.Namespace) -> int:
    """Meter the input (or the shared recording ``--from`` names), then print the summary on stdout."""
    if args.from_name is not None:
        mic = open_shared(args)
        total = None if args.seconds is None else max(1, round(args.seconds * mic.sampling_rate))
        notice(f"metering the shared recording {mic.name!r} (pid {mic.producer_pid}): {mic.channels} ch, "
               f"{mic.sampling_rate} Hz {capture.until_text(total, mic.sampling_rate)}")
        return _meter(mic, f"METER {mic.name}", shared_summary(mic), total, start=mic.frames_written)
    inp = choose_input(CaptureOptions.from_args(args), notice)
    total = None if args.seconds is None else max(1, round(args.seconds * inp.rate))
    # capture.RING_SECONDS is read now, not at import, so that tests can shorten it.
    rec, inp = start_recorder(inp, "float32", args.buffer_seconds or capture.RING_SECONDS, notice)
    notice(f"metering {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz "
           f"{capture.until_text(total, inp.rate)}; {latency_text(rec)}")
    return _meter(rec, f"METER {inp.name}", inp.summary, total, start=None)


def _meter(rec: Recording, title: str, source: str, total: Optional[int], start: Optional[int]) -> int:
    result = capture.capture(rec, title, total, None, lambda block: None, start=start)
    print(f"input: {source}")
    capture.print_summary(result, rec.sampling_rate, frames_label="frames")
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
