"""``audioring record OUT``: record losslessly into a WAV or FLAC file, written as the audio arrives."""

from __future__ import annotations

import argparse

from ..._formats import SAMPLE_DTYPES
from .. import capture, output
from ..display import notice
from ..errors import CliError, UsageError
from ..inputs import choose_input, start_recorder
from ..options import CaptureOptions, add_capture_options, seconds
from ..parser import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The capture options, then the command's own."""
    add_capture_options(parser)
    parser.add_argument("out", metavar="OUT", help="output file, *.wav or *.flac (replaced if it exists)")
    parser.add_argument("--seconds", "-s", type=seconds, metavar="S",
                        help="duration; the file gets exactly round(S * rate) frames (default: until Ctrl-C)")
    parser.add_argument("--dtype", "-t", choices=SAMPLE_DTYPES, default="float32",
                        help="sample format (default: float32). In the file: float32 -> WAV float / FLAC 24-bit; "
                             "int32 -> WAV 32-bit (not FLAC); int16 -> 16-bit; int8, uint8 -> 8-bit")
    parser.add_argument("--format", "-f", choices=output.FORMATS, help="file format (default: from OUT's suffix)")


def run(args: argparse.Namespace) -> int:
    """Record into ``args.out``, then print the file and the summary on stdout.

    Every argument is checked, and the file found writable, before the
    recorder starts: a bad command line never leaves a file behind.
    """
    fmt = output.file_format(args.out, args.format)
    inp = choose_input(CaptureOptions.from_args(args), notice)
    subtype = output.subtype(fmt, args.dtype, inp.channels)
    total = None if args.seconds is None else max(1, round(args.seconds * inp.rate))
    limit = output.max_frames(fmt, subtype, inp.channels)
    if total is not None and limit is not None and total > limit:
        raise UsageError(f"argument --seconds: a WAV file holds at most {limit / inp.rate:.0f} s "
                         f"of this audio (4 GiB); use --format flac or record less")
    output.import_soundfile()
    output.check_writable(args.out)
    # capture.RING_SECONDS is read now, not at import, so that tests can shorten it.
    rec, inp = start_recorder(inp, args.dtype, capture.RING_SECONDS, notice)
    try:
        out = output.open_output(args.out, fmt, subtype, inp.channels, inp.rate)
    except BaseException:
        rec.close()
        raise
    notice(f"recording from {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz, "
           f"{args.dtype} -> {args.out} ({fmt.upper()} {subtype}) {capture.until_text(total, inp.rate)}")
    with out:
        result = capture.capture(
            rec, f"REC {args.out}", total, limit, lambda block: out.write(output.file_samples(block, subtype)),
            flush=out.flush)
    print(f"file: {args.out} ({fmt.upper()} {subtype}, {inp.channels} ch, {inp.rate} Hz)")
    capture.print_summary(result, inp.rate, frames_label="frames written")
    if result.failure:
        raise CliError(result.failure)
    return 0


COMMAND = Command(
    name="record",
    help="record to a WAV or FLAC file",
    description="Record losslessly to a WAV or FLAC file, written as it arrives. "
                "Ctrl-C ends the recording with a complete file.",
    run=run,
    add_arguments=add_arguments,
)
