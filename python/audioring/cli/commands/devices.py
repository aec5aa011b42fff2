"""``audioring devices``: the input devices PortAudio sees, the built-in virtual input, and shared recordings;
``audioring devices --drift A B``: how fast one device's clock runs against another's."""

from __future__ import annotations

import argparse
import math
import time

from ... import AudioRecord, _devices
from ..errors import CliError, UsageError
from ..inputs import NO_DEVICE_FIX, default_input_index, several_inputs
from ..options import CaptureOptions, positive_int, seconds
from ..parser import Command
from ..sharing import print_shared

#: How long --drift measures by default: enough for a fit to a ppm on a steady device.
DRIFT_SECONDS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--drift A B`` (with ``--seconds``, ``--rate``)."""
    parser.add_argument("--drift", nargs=2, metavar=("A", "B"),
                        help="measure how fast device B's clock runs against device A's, in ppm, from their blocks' "
                             "capture times (as a recording of both compensates it): two devices as --device names "
                             "them (index, name substring, virtual...)")
    parser.add_argument("--seconds", type=seconds, default=DRIFT_SECONDS, metavar="S",
                        help=f"with --drift: how long to measure (default: {DRIFT_SECONDS:g}; longer is more precise)")
    parser.add_argument("--rate", "-r", type=positive_int(768_000), metavar="R",
                        help="with --drift: the rate to open both at (default: A's default rate)")


def run(args: argparse.Namespace) -> int:
    """List the input devices on stdout, the default one marked ``*``; or, with ``--drift``, measure."""
    if args.drift is not None:
        return drift(args.drift, args.seconds, args.rate)
    try:
        sd = _devices.import_sounddevice()
    except (OSError, ImportError) as error:
        raise CliError(str(error)) from None
    devices = _devices.input_devices(sd)
    default = default_input_index(sd)
    if devices:
        print(f"  {'index':>5}  {'name':<32} {'host API':<20} {'in ch':>5} {'default rate':>12}")
        for d in devices:
            mark = "*" if d["index"] == default else " "
            print(f"{mark} {d['index']:>5}  {d['name']:<32} {d['hostapi_name']:<20} "
                  f"{d['max_input_channels']:>5} {d['default_samplerate']:>12g}")
            # On a line of its own, so that the table's columns stay as they were.
            rates = ", ".join(map(str, _devices.accepted_rates(sd, d))) or "none of the standard rates"
            print(f"{'':9}accepts: {rates} Hz")
        print("* default input device; other rates are recorded by converting (see --rate, --device-rate)")
    else:
        print(f"no input devices: {NO_DEVICE_FIX}")
    print("built-in: --device virtual[:sine:HZ[,HZ...]|:noise|:ramp] (works without any device)")
    print_shared()
    return 0


def drift(specs: list[str], duration: float, rate: object) -> int:
    """Record one input of each device, aligned, for ``duration`` s; print B's clock against A's each second."""
    devices = tuple(spec if "@" in spec else f"{spec}@1" for spec in specs)
    inp = several_inputs(CaptureOptions(device=None, channels=None, rate=rate if isinstance(rate, int) else None,
                                        devices=devices))
    try:
        rec = AudioRecord(inp.channels, inp.rate, inp.rate, device=inp.device, clock=0)
    except ValueError as error:
        raise UsageError(str(error)) from None
    with rec:
        rec.start_recording()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < duration:
            time.sleep(min(1.0, duration - elapsed))
            print(_drift_line(rec, time.monotonic() - started), flush=True)
        stats = rec.device_stats[1]
    if math.isnan(stats.drift_ppm):
        raise CliError(f"{stats.name!r} delivered nothing to measure in {duration:g} s")
    print(f"drift: {stats.name!r} runs {stats.drift_ppm:+.2f} ppm against {rec.device_stats[0].name!r} "
          f"({'locked' if stats.locked else 'not locked yet: measure longer'})")
    return 0


def _drift_line(rec: AudioRecord, elapsed: float) -> str:
    master, other = rec.device_stats
    measured = "not measured yet" if math.isnan(other.drift_ppm) else f"{other.drift_ppm:+.2f} ppm"
    return (f"{elapsed:5.1f} s: {other.name!r} against {master.name!r}: {measured}, "
            f"{'locked' if other.locked else 'locking'}, offset {other.offset:+.3f} frames")


COMMAND = Command(name="devices", help="list input devices and shared recordings; --drift A B measures clocks",
                  description="List the input devices, and the recordings shared by name. With --drift A B: "
                              "measure how fast B's clock runs against A's (ppm).", run=run,
                  add_arguments=add_arguments)
