"""``audioring serve NAME``: record a device into a ring shared under NAME until Ctrl-C, for other processes."""

from __future__ import annotations

import argparse
import time

from ..._formats import SAMPLE_DTYPES
from ..._validate import as_share_name
from .. import capture
from ..display import notice
from ..errors import CliError, UsageError
from ..inputs import choose_input, latency_text, start_recorder
from ..options import CaptureOptions, add_buffer_option, add_capture_options, seconds
from ..parser import Command

#: Seconds between checks that the device still delivers.
POLL_SECONDS = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The capture options, then the command's own."""
    add_capture_options(parser)
    parser.add_argument("name", metavar="NAME",
                        help="the name readers attach to: `audioring record OUT --from NAME`, "
                             "audioring.attach(NAME) (1..64 of A-Z a-z 0-9 _ - ., not starting with .)")
    parser.add_argument("--dtype", "-t", choices=SAMPLE_DTYPES, default="float32",
                        help="sample format readers get (default: float32)")
    parser.add_argument("--seconds", "-s", type=seconds, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    add_buffer_option(parser, "how far back readers reach (pre-roll), and how long a reader may stall",
                      capture.RING_SECONDS)
    # Its name before --buffer-seconds became the one name of the ring in every command: kept, unlisted.
    parser.add_argument("--ring-seconds", dest="buffer_seconds", type=seconds, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Share the input under ``args.name`` until Ctrl-C, SIGTERM or ``--seconds``; print a summary on stdout."""
    try:
        name = as_share_name(args.name, "NAME")
    except ValueError as error:
        raise UsageError(f"argument {error}") from None
    inp = choose_input(CaptureOptions.from_args(args), notice)
    try:
        # capture.RING_SECONDS is read now, not at import, so that tests can shorten it.
        rec, inp = start_recorder(inp, args.dtype, args.buffer_seconds or capture.RING_SECONDS, notice, share=name)
    except FileExistsError as error:
        raise CliError(str(error)) from None
    try:
        notice(f"serving {inp.name} as {name!r} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz, "
               f"{args.dtype}; read it with `audioring record OUT --from {name}` or audioring.attach({name!r}) "
               f"{'until Ctrl-C' if args.seconds is None else f'for {args.seconds:g} s'}; {latency_text(rec)}")
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        failure = None
        with capture.StopOnSignal() as stop:
            while not stop.requested and (deadline is None or time.monotonic() < deadline):
                if not rec.recording:
                    failure = f"the device stopped after {rec.frames_recorded} frames"
                    break
                time.sleep(POLL_SECONDS)
        rec.stop()  # the last frame is written now: the summary counts every frame readers could get
        stats = rec.stats
    finally:
        rec.close()
    print(f"served: {name}")
    print(f"input: {inp.summary}")
    print(f"frames: {stats.frames}")
    print(f"duration: {stats.frames / inp.rate:.3f} s")
    print(f"overflows: {stats.input_overflows}")
    if failure:
        raise CliError(failure)
    return 0


COMMAND = Command(
    name="serve",
    help="share a device's recording with other processes, by name",
    description="Record a device into a ring shared under NAME until Ctrl-C. Other processes of this user "
                "read it zero-copy: `audioring record OUT --from NAME`, `audioring meter --from NAME`, "
                "audioring.attach(NAME).",
    run=run,
    add_arguments=add_arguments,
)
