"""The ``audioring`` command line (``python -m audioring``): devices, record, meter, doctor.

Exit status: 0 on success, including a recording or meter ended with Ctrl-C
(SIGINT) or SIGTERM; 1 when something fails while running (the output file
cannot be written, PortAudio is missing for a named device, a device fails
or stops delivering); 2 for bad arguments, an unknown ``--device`` among
them; 130 when a second Ctrl-C aborts.
"""

from __future__ import annotations

import argparse
import math
import platform
import signal
import sys
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from . import _cli_input, _cli_output, _devices
from ._cli_display import format_db, make_display
from ._cli_errors import CliError, UsageError
from ._errors import OverrunError
from ._formats import SAMPLE_DTYPES

DTYPES = SAMPLE_DTYPES
#: The most --rate takes: the highest rate of any real audio hardware.
MAX_RATE = 768_000
#: Seconds of audio the ring keeps for the file writer (AudioRecord adds one second of headroom):
#: how long writing may stall before frames are lost.
RING_SECONDS = 3.0
#: Seconds without a block after which a device counts as dead.
NO_AUDIO_TIMEOUT = 5.0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or an argparse error (already printed)
        return 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1
    try:
        return int(args.run(args))
    except UsageError as error:
        args.parser.print_usage(sys.stderr)
        print(f"{args.parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except CliError as error:
        print(f"{args.parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# ---- arguments --------------------------------------------------------------------


def _positive_int(most: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be an integer in 1..{most}, got {text!r}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audioring",
        description="Record and meter audio through audioring's lock-free native capture.",
        epilog="Run `audioring COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    capture = argparse.ArgumentParser(add_help=False)
    capture.add_argument(
        "--device", "-d", metavar="D",
        help="input device: index or name substring (see `audioring devices`), or the built-in "
             "virtual input: virtual, virtual:sine:HZ[,HZ...], virtual:noise, virtual:ramp "
             "(default: the default input device; the virtual input if there is none)",
    )
    capture.add_argument("--channels", "-c", type=_positive_int(65536), metavar="C",
                         help="number of channels, 1..the device's maximum (default: 2, or 1 if the device has 1)")
    capture.add_argument("--rate", "-r", type=_positive_int(MAX_RATE), metavar="R",
                         help="sampling rate in Hz (default: the device's default rate; 48000 for the virtual input)")

    devices = commands.add_parser("devices", help="list input devices", description="List the input devices.")
    devices.set_defaults(run=_devices_command, parser=devices)

    record = commands.add_parser(
        "record", parents=[capture], help="record to a WAV or FLAC file",
        description="Record losslessly to a WAV or FLAC file, written as it arrives. "
                    "Ctrl-C ends the recording with a complete file.",
    )
    record.add_argument("out", metavar="OUT", help="output file, *.wav or *.flac (replaced if it exists)")
    record.add_argument("--seconds", "-s", type=_seconds, metavar="S",
                        help="duration; the file gets exactly round(S * rate) frames (default: until Ctrl-C)")
    record.add_argument("--dtype", "-t", choices=DTYPES, default="float32",
                        help="sample format (default: float32). In the file: float32 -> WAV float / FLAC 24-bit; "
                             "int32 -> WAV 32-bit (not FLAC); int16 -> 16-bit; int8, uint8 -> 8-bit")
    record.add_argument("--format", "-f", choices=_cli_output.FORMATS, help="file format (default: from OUT's suffix)")
    record.set_defaults(run=_record_command, parser=record)

    meter = commands.add_parser("meter", parents=[capture], help="show a live level meter",
                                description="Show each channel's peak level in dBFS until Ctrl-C.")
    meter.add_argument("--seconds", "-s", type=_seconds, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    meter.set_defaults(run=_meter_command, parser=meter)

    doctor = commands.add_parser("doctor", help="check the audio set-up and say what to install",
                                 description="Check PortAudio, input devices and the native callback driver.")
    doctor.set_defaults(run=_doctor_command, parser=doctor)
    return parser


# ---- devices and doctor --------------------------------------------------------------


def _devices_command(args: argparse.Namespace) -> int:
    try:
        sd = _devices.import_sounddevice()
    except (OSError, ImportError) as error:
        raise CliError(str(error)) from None
    devices = _devices.input_devices(sd)
    default = _default_input_index(sd)
    if devices:
        print(f"  {'index':>5}  {'name':<32} {'host API':<20} {'in ch':>5} {'default rate':>12}")
        for d in devices:
            mark = "*" if d["index"] == default else " "
            print(f"{mark} {d['index']:>5}  {d['name']:<32} {d['hostapi_name']:<20} "
                  f"{d['max_input_channels']:>5} {d['default_samplerate']:>12g}")
        print("* default input device")
    else:
        print(f"no input devices: {_NO_DEVICE_FIX}")
    print("built-in: --device virtual[:sine:HZ[,HZ...]|:noise|:ramp] (works without any device)")
    return 0


_NO_DEVICE_FIX = (
    "start a sound server (PulseAudio: `pulseaudio --start`, or JACK) or connect a sound card, "
    "then check again; `--device virtual` records from the built-in virtual input meanwhile"
)


def _doctor_command(args: argparse.Namespace) -> int:
    from . import __version__

    problems: List[str] = []
    print(f"audioring {__version__} (Python {platform.python_version()}, {platform.platform()})")
    try:
        sd = _devices.import_sounddevice()
    except (OSError, ImportError) as error:
        sd = None
        print("PortAudio: missing")
        problems.append(str(error))
    if sd is not None:
        print(f"PortAudio: {sd.get_portaudio_version()[1]} (sounddevice {sd.__version__})")
        hostapis = sd.query_hostapis()
        print("host APIs: " + (", ".join(f"{h['name']} ({len(h['devices'])} devices)" for h in hostapis) or "none"))
        devices = _devices.input_devices(sd)
        print(f"input devices: {len(devices)}")
        default = _default_input_index(sd)
        if not devices:
            print("default input device: none")
            problems.append(f"no input device: {_NO_DEVICE_FIX}")
        elif default is None:
            print("default input device: none")
            problems.append("no default input device: name one with --device (see `audioring devices`)")
        else:
            info = sd.query_devices(default)
            try:
                sd.check_input_settings(device=default)
                opens = "opens"
            except sd.PortAudioError as error:
                opens = f"does NOT open: {error}"
                problems.append(f"the default input device does not open ({error}): is its sound server running?")
            print(f"default input device: {default} {info['name']!r} ({hostapis[info['hostapi']]['name']}, "
                  f"{info['max_input_channels']} ch, {info['default_samplerate']:g} Hz), {opens}")
        if _devices.has_native_callback_support(sd):
            print("native callback driver: available (capture runs without the GIL)")
        else:
            print(f"native callback driver: NOT available in sounddevice {sd.__version__}; "
                  "capture uses a Python callback (`pip install -U sounddevice`)")
    try:
        import soundfile

        print(f"soundfile: {soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__})")
    except (ImportError, OSError) as error:
        print(f"soundfile: missing ({error})")
        problems.append("`record` needs soundfile: pip install 'audioring[cli]'")
    try:
        import rich  # noqa: F401
        from importlib.metadata import version

        print(f"rich: {version('rich')}")
    except ImportError:
        print("rich: missing (terminal display falls back to plain lines; pip install 'audioring[cli]')")
    if problems:
        print("\nto fix:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("\nall good")
    return 0


def _default_input_index(sd: Any) -> Optional[int]:
    try:
        return int(sd.query_devices(kind="input")["index"])
    except (ValueError, sd.PortAudioError):
        return None


# ---- record and meter -------------------------------------------------------------------


def _record_command(args: argparse.Namespace) -> int:
    fmt = _cli_output.file_format(args.out, args.format)
    inp = _cli_input.choose_input(args.device, args.channels, args.rate, _notice)
    subtype = _cli_output.subtype(fmt, args.dtype, inp.channels)
    total = None if args.seconds is None else max(1, round(args.seconds * inp.rate))
    limit = _cli_output.max_frames(fmt, subtype, inp.channels)
    if total is not None and limit is not None and total > limit:
        raise UsageError(f"argument --seconds: a WAV file holds at most {limit / inp.rate:.0f} s "
                         f"of this audio (4 GiB); use --format flac or record less")
    _cli_output.import_soundfile()
    _cli_output.check_writable(args.out)
    rec, inp = _cli_input.start_recorder(inp, args.dtype, RING_SECONDS, _notice)
    try:
        out = _cli_output.open_output(args.out, fmt, subtype, inp.channels, inp.rate)
    except BaseException:
        rec.close()
        raise
    until = "until Ctrl-C" if total is None else f"for {total / inp.rate:g} s (Ctrl-C stops early)"
    _notice(f"recording from {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz, "
            f"{args.dtype} -> {args.out} ({fmt.upper()} {subtype}) {until}")
    with out:
        written, lost, overflows, levels, failure = _capture(
            rec, f"REC {args.out}", total, limit, lambda block: out.write(_cli_output.file_samples(block, subtype)),
            flush=out.flush)
    print(f"file: {args.out} ({fmt.upper()} {subtype}, {inp.channels} ch, {inp.rate} Hz)")
    _summary(written, inp.rate, overflows, lost, levels, frames_label="frames written")
    if failure:
        raise CliError(failure)
    return 0


def _meter_command(args: argparse.Namespace) -> int:
    inp = _cli_input.choose_input(args.device, args.channels, args.rate, _notice)
    total = None if args.seconds is None else max(1, round(args.seconds * inp.rate))
    rec, inp = _cli_input.start_recorder(inp, "float32", RING_SECONDS, _notice)
    until = "until Ctrl-C" if total is None else f"for {total / inp.rate:g} s (Ctrl-C stops early)"
    _notice(f"metering {inp.name} with the {rec.driver} driver: {inp.channels} ch, {inp.rate} Hz {until}")
    frames, lost, overflows, levels, failure = _capture(rec, f"METER {inp.name}", total, None, lambda block: None)
    _summary(frames, inp.rate, overflows, lost, levels, frames_label="frames")
    if failure:
        raise CliError(failure)
    return 0


def _capture(
    rec: Any, title: str, total: Optional[int], limit: Optional[int], write: Callable[[Any], None],
    flush: Callable[[], None] = lambda: None,
) -> Tuple[int, int, int, Any, Optional[str]]:
    """Stream ``rec`` block by block into ``write`` until ``total`` frames, Ctrl-C or SIGTERM; close ``rec``.

    Returns
    -------
    (frames, frames_lost, overflows, peak_levels_dbfs, failure)
        ``failure`` is a message if the device stopped delivering, else None.
    """
    rate = rec.sampling_rate
    block = max(1, rate // 10)
    display = make_display(title, rec.channels, rate, total)
    frames = lost = 0
    failure = None
    end = total if limit is None else limit if total is None else min(total, limit)
    try:
        with _StopOnSignal() as stop:
            stream = rec.stream(block, timeout=max(NO_AUDIO_TIMEOUT, 3 * block / rate))
            expected = stream.position  # absolute number of the next frame the output needs
            while not stop.requested and (end is None or frames < end):
                try:
                    view = next(stream)
                except OverrunError as error:  # the ring was lapped: count the gap, go on from the newest frame
                    lost += error.position - expected
                    expected = error.position
                    continue
                except StopIteration:
                    failure = f"the recorder stopped after {frames} frames"
                    break
                except TimeoutError:
                    failure = f"no audio from {rec.device!r} for {stream.timeout:g} s (did the device go away?)"
                    break
                # An owned copy, kept only if the ring did not overwrite the view while it was
                # copied: the output never gets a damaged block (the next block reports the loss).
                data = np.array(view[: None if end is None else end - frames])
                if not rec.is_intact(view):
                    continue
                expected = stream.position
                write(data)
                frames += len(data)
                display.update(frames, data, rec.overflows, lost)
                if frames % rate < len(data):  # about once a second: file header up to date
                    flush()
            if total is None and limit is not None and frames >= limit:
                _notice(f"stopped at the WAV size limit (4 GiB) after {frames / rate:.0f} s; use FLAC for longer")
        overflows = rec.overflows
    finally:
        display.close()
        rec.close()
    return frames, lost, overflows, display.levels.max, failure


def _summary(frames: int, rate: int, overflows: int, lost: int, levels: Any, frames_label: str) -> None:
    print(f"{frames_label}: {frames}")
    print(f"duration: {frames / rate:.3f} s")
    print(f"overflows: {overflows}")
    print(f"frames lost: {lost}")
    print(f"peak dBFS: {format_db(levels)}")


class _StopOnSignal:
    """While active, the first SIGINT or SIGTERM sets ``requested``; a second SIGINT raises KeyboardInterrupt.

    The capture loop checks ``requested`` between blocks, so the file is
    never left half-written by an exception in the middle of a write.
    """

    requested = False

    def __enter__(self) -> _StopOnSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True


def _notice(message: str) -> None:
    print(f"audioring: {message}", file=sys.stderr, flush=True)

