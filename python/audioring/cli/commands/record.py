"""``audioring record OUT``: record losslessly into audio files (or stdout), written by a native thread."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Optional

from ... import FileWriter, SharedRecording
from ..._file_formats import COMMAND_LINE, FileChoice, choose, longest_file, split_frames
from ..._file_writer import open_writer
from ..._formats import SAMPLE_DTYPES
from .. import capture, output
from ..capture import Recording
from ..display import notice
from ..errors import EXIT_LOST, CliError, UsageError
from ..file_writing import print_summary, write_until_done
from ..inputs import choose_input, latency_text, start_recorder
from ..options import CaptureOptions, add_buffer_option, add_capture_options, seconds
from ..parser import Command
from ..sharing import add_from_option, open_shared, shared_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The capture options, then the command's own."""
    add_capture_options(parser)
    parser.add_argument("out", metavar="OUT",
                        help=f"output file, *.{', *.'.join(output.FORMATS)} (replaced if it exists); - for stdout, "
                             "where a pipe takes --format au or raw only (the summary then goes to stderr)")
    parser.add_argument("--seconds", "-s", type=seconds, metavar="S",
                        help="duration; the file gets exactly round(S * rate) frames (default: until Ctrl-C)")
    parser.add_argument("--dtype", "-t", choices=SAMPLE_DTYPES,
                        help="sample format (default: float32, or the shared recording's with --from); the file "
                             "keeps every sample exactly (FLAC: float32 as 24-bit PCM clipped to full scale, and "
                             "int32 only with --subtype PCM_24)")
    parser.add_argument("--format", "-f", choices=output.FORMATS,
                        help="file format (default: from OUT's suffix); wav turns into RF64 by itself past 4 GiB")
    parser.add_argument("--subtype", metavar="SUBTYPE",
                        help="libsndfile's sample type in the file: PCM_16, PCM_24, PCM_32, FLOAT, ... "
                             "(default: the one that keeps --dtype exactly)")
    parser.add_argument("--split", metavar="SIZE",
                        help="start a new file every SIZE of audio: a duration (90s, 30min, 1h) or a size (2GiB, "
                             "500MB); the parts OUT-0001.wav, OUT-0002.wav, ... join into exactly the recording")
    add_buffer_option(parser, "how long the disk may stall before frames are lost (with --from, the producer's "
                              "ring is the buffer: `audioring serve NAME --buffer-seconds S` sets it)",
                      capture.RING_SECONDS)
    add_from_option(parser)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What ``record`` writes, checked before any device opens: format, parts, length, target."""

    choice: FileChoice
    split: int  # frames per part; 0: one file
    total: Optional[int]  # frames in all; None: until Ctrl-C
    target: output.Target


def run(args: argparse.Namespace) -> int:
    """Record into ``args.out``, then print the file and the summary on stdout (stderr when OUT is stdout).

    Every argument is checked, and the output found writable (a FIFO
    opened, stdout found fit for the format), before the recorder starts:
    a bad command line never leaves a file behind. With ``--from NAME``
    the frames come from a shared recording, from the newest frame on.

    Returns 0, or `EXIT_LOST` if frames were lost on the way (gaps in the
    file: the frames audioring knows it lost). Input overflows the device
    reported are in the summary; they do not change the status, as a host
    API may flag one without a frame missing (JACK under load, here).
    """
    if args.from_name is not None:
        return _record_shared(args)
    dtype = args.dtype or "float32"
    inp = choose_input(CaptureOptions.from_args(args), notice)
    plan = _plan(args, dtype, inp.channels, inp.rate)
    try:
        # capture.RING_SECONDS is read now, not at import, so that tests can shorten it.
        buffer = args.buffer_seconds or capture.RING_SECONDS
        rec, inp = start_recorder(inp, dtype, buffer, notice)
    except BaseException:
        plan.target.close()
        raise
    notice(f"recording from {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz, "
           f"{dtype} -> {_described(plan)} {capture.until_text(plan.total, inp.rate)}; {latency_text(rec)}")
    return _write(rec, plan, inp.summary, start=rec.first_frame)  # every frame of the recording just started


def _record_shared(args: argparse.Namespace) -> int:
    mic = open_shared(args)
    plan: Optional[Plan] = None
    try:
        if args.dtype is not None and args.dtype != mic.dtype.name:
            raise UsageError(f"argument --dtype: {args.from_name!r} is shared as {mic.dtype.name}, got {args.dtype}")
        plan = _plan(args, mic.dtype.name, mic.channels, mic.sampling_rate)
        start = mic.frames_written  # from now on: a slice of the recording without gaps
    except BaseException:
        mic.close()
        if plan is not None:
            plan.target.close()
        raise
    notice(f"recording from the shared recording {mic.name!r} (pid {mic.producer_pid}): {mic.channels} ch, "
           f"{mic.sampling_rate} Hz, {mic.dtype.name} -> {_described(plan)} "
           f"{capture.until_text(plan.total, mic.sampling_rate)}")
    return _write(mic, plan, shared_summary(mic), start=start)


def _plan(args: argparse.Namespace, dtype: str, channels: int, rate: int) -> Plan:
    """The checked plan; the target is opened last, so a refusal before it leaves nothing open."""
    fmt = output.file_format(args.out, args.format)
    total = None if args.seconds is None else max(1, round(args.seconds * rate))
    try:
        choice = choose(args.out, fmt, args.subtype, dtype, channels, COMMAND_LINE)
        split = 0 if args.split is None else split_frames(args.split, choice, rate, COMMAND_LINE)
        if args.out != output.STDOUT and split == 0:
            longest_file(choice, total, 0, rate, COMMAND_LINE)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    target = output.open_target(args.out, choice.format)
    if split and target.fd is not None:
        target.close()
        raise UsageError("argument --split: a pipe cannot be split into files; leave --split out")
    return Plan(choice, split, total, target)


def _described(plan: Plan) -> str:
    """The output as the opening notice names it: ``take.wav (WAV PCM_32, split every 3600 s)``."""
    split = "" if not plan.split else f", a new file every {plan.split} frames"
    return f"{plan.target.label} ({plan.choice.format.upper()} {plan.choice.subtype}{split})"


def _write(rec: Recording, plan: Plan, source: str, start: int) -> int:
    """Write ``rec`` from frame ``start`` as ``plan`` says; then the summary, its ``input:`` line naming ``source``."""
    # A shared recording's counters run from its producer's start: only what they gain from here on counts.
    overflows_before = rec.overflows if isinstance(rec, SharedRecording) else 0
    target = plan.target
    try:
        writer: FileWriter = open_writer(
            rec._reader_ring, target.path if target.fd is None else target.fd, fmt=plan.choice.format,
            subtype=plan.choice.subtype, split=plan.split or None, start=start, frames=plan.total,
            spelling=COMMAND_LINE, name=target.label)
    except (OSError, ValueError) as error:
        rec.close()
        target.close()
        raise CliError(str(error)) from None  # the OS's reason, naming the file
    try:
        result = write_until_done(rec, writer, target, f"REC {target.label}", plan.total, overflows_before)
    finally:
        target.close()
    # With the audio on stdout, the results go to stderr.
    results = sys.stderr if target.path == output.STDOUT else sys.stdout
    files = result.files
    shown = target.label if len(files) <= 1 else f"{files[0]} .. {files[-1]} ({len(files)} files)"
    print(f"input: {source}", file=results)
    print(f"file: {shown} ({plan.choice.format.upper()} {plan.choice.subtype}, {rec.channels} ch, "
          f"{rec.sampling_rate} Hz)", file=results)
    print_summary(result, rec.sampling_rate, writer.gap_log if result.gaps else None, file=results)
    if result.failure:
        raise CliError(result.failure)
    return EXIT_LOST if result.frames_lost else 0


COMMAND = Command(
    name="record",
    help="record to an audio file (WAV/RF64, W64, CAF, FLAC, AU, raw)",
    description="Record losslessly to an audio file (or split parts, or stdout), written by a native thread as "
                "the audio arrives. Ctrl-C or SIGTERM ends the recording with complete files. Exit status: 0, or "
                f"{EXIT_LOST} if frames were lost (each gap written as silence and listed), 1 on "
                "an error (the files hold every frame written before it), 2 for a bad command line.",
    run=run,
    add_arguments=add_arguments,
)
