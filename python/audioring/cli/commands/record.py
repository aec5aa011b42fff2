"""``audioring record OUT``: record losslessly into a WAV, FLAC or AU file (or stdout), written as the audio arrives."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import numpy as np

from ..._formats import SAMPLE_DTYPES
from .. import capture, output
from ..capture import Recording
from ..display import notice
from ..errors import CliError, UsageError
from ..inputs import choose_input, start_recorder
from ..options import CaptureOptions, add_capture_options, seconds
from ..parser import Command
from ..sharing import add_from_option, open_shared


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The capture options, then the command's own."""
    add_capture_options(parser)
    parser.add_argument("out", metavar="OUT",
                        help="output file, *.wav, *.flac or *.au (replaced if it exists); - for stdout, where a "
                             "pipe takes --format au only (the summary then goes to stderr)")
    parser.add_argument("--seconds", "-s", type=seconds, metavar="S",
                        help="duration; the file gets exactly round(S * rate) frames (default: until Ctrl-C)")
    parser.add_argument("--dtype", "-t", choices=SAMPLE_DTYPES,
                        help="sample format (default: float32, or the shared recording's with --from). In the "
                             "file: float32 -> WAV/AU float, FLAC 24-bit; int32 -> WAV/AU 32-bit (not FLAC); "
                             "int16 -> 16-bit; int8, uint8 -> 8-bit")
    parser.add_argument("--format", "-f", choices=output.FORMATS, help="file format (default: from OUT's suffix)")
    add_from_option(parser)


def run(args: argparse.Namespace) -> int:
    """Record into ``args.out``, then print the file and the summary on stdout.

    Every argument is checked, and the output found writable (a FIFO
    opened, stdout found fit for the format), before the recorder starts:
    a bad command line never leaves a file behind. With ``--from NAME``
    the frames come from a shared recording, from the newest frame on.
    """
    fmt = output.file_format(args.out, args.format)
    if args.from_name is not None:
        return _record_shared(args, fmt)
    dtype = args.dtype or "float32"
    inp = choose_input(CaptureOptions.from_args(args), notice)
    subtype = output.subtype(fmt, dtype, inp.channels)
    output.import_soundfile()
    target = output.open_target(args.out, fmt)
    try:
        total = _total(args, fmt, subtype, inp.channels, inp.rate, target)
        # capture.RING_SECONDS is read now, not at import, so that tests can shorten it.
        rec, inp = start_recorder(inp, dtype, capture.RING_SECONDS, notice)
    except BaseException:
        target.close()
        raise
    notice(f"recording from {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz, "
           f"{dtype} -> {target.label} ({fmt.upper()} {output.subtype(fmt, dtype, inp.channels)}) "
           f"{capture.until_text(total, inp.rate)}")
    return _write(rec, target, fmt, subtype, total, start=None)


def _record_shared(args: argparse.Namespace, fmt: str) -> int:
    mic = open_shared(args)
    target: Optional[output.Target] = None
    try:
        if args.dtype is not None and args.dtype != mic.dtype.name:
            raise UsageError(f"argument --dtype: {args.from_name!r} is shared as {mic.dtype.name}, got {args.dtype}")
        subtype = output.subtype(fmt, mic.dtype.name, mic.channels)
        output.import_soundfile()
        target = output.open_target(args.out, fmt)
        total = _total(args, fmt, subtype, mic.channels, mic.sampling_rate, target)
        start = mic.frames_written  # from now on: a slice of the recording without gaps
    except BaseException:
        mic.close()
        if target is not None:
            target.close()
        raise
    notice(f"recording from the shared recording {mic.name!r} (pid {mic.producer_pid}): {mic.channels} ch, "
           f"{mic.sampling_rate} Hz, {mic.dtype.name} -> {target.label} ({fmt.upper()} {subtype}) "
           f"{capture.until_text(total, mic.sampling_rate)}")
    return _write(mic, target, fmt, subtype, total, start=start)


def _total(args: argparse.Namespace, fmt: str, subtype: str, channels: int, rate: int,
           target: output.Target) -> Optional[int]:
    """Frames ``--seconds`` asks for (None: until Ctrl-C), refused if the file format cannot hold them."""
    total = None if args.seconds is None else max(1, round(args.seconds * rate))
    limit = output.max_frames(fmt, subtype, channels, target.streaming)
    if total is not None and limit is not None and total > limit:
        raise UsageError(f"argument --seconds: a {fmt.upper()} file holds at most {limit / rate:.0f} s "
                         f"of this audio (4 GiB); use --format flac or record less")
    return total


def _write(rec: Recording, target: output.Target, fmt: str, subtype: str, total: Optional[int],
           start: Optional[int]) -> int:
    channels, rate = rec.channels, rec.sampling_rate
    try:
        out = output.open_output(target, fmt, subtype, channels, rate)
    except BaseException:
        rec.close()
        target.close()
        raise
    limit = output.max_frames(fmt, subtype, channels, target.streaming)

    def write(block: np.ndarray) -> None:
        try:
            out.write(output.file_samples(block, subtype))
        except (OSError, RuntimeError) as error:  # soundfile.LibsndfileError is a RuntimeError
            if target.reader_gone():  # libsndfile only says "System error."
                raise capture.OutputError(f"cannot write {target.name}: its reader closed the pipe") from None
            raise capture.OutputError(f"cannot write {target.name}: {error}") from None

    try:
        result = capture.capture(rec, f"REC {target.label}", total, limit, write, flush=out.flush, start=start)
    finally:
        closing = _close(out, target)
    # With the audio on stdout, the results go to stderr.
    results = sys.stderr if target.path == output.STDOUT else sys.stdout
    print(f"file: {target.label} ({fmt.upper()} {subtype}, {channels} ch, {rate} Hz)", file=results)
    capture.print_summary(result, rate, frames_label="frames written", file=results)
    if result.failure or closing:
        raise CliError(result.failure or closing)
    return 0


def _close(out: output.AudioFile, target: output.Target) -> Optional[str]:
    """Close the output (its header completed), then the target; what went wrong, or None."""
    try:
        try:
            out.close()
        finally:
            target.close()
    except (OSError, RuntimeError) as error:
        return f"cannot complete {target.name}: {error}"
    return None


COMMAND = Command(
    name="record",
    help="record to a WAV, FLAC or AU file",
    description="Record losslessly to a WAV, FLAC or AU file (or stdout), written as it arrives. "
                "Ctrl-C ends the recording with a complete file.",
    run=run,
    add_arguments=add_arguments,
)
