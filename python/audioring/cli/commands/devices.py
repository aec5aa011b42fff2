"""``audioring devices``: the input devices PortAudio sees, the built-in virtual input, and shared recordings."""

from __future__ import annotations

import argparse

from ... import _devices
from ..errors import CliError
from ..inputs import NO_DEVICE_FIX, default_input_index
from ..parser import Command
from ..sharing import print_shared


def run(args: argparse.Namespace) -> int:
    """List the input devices on stdout, the default one marked ``*``."""
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


COMMAND = Command(name="devices", help="list input devices and shared recordings",
                  description="List the input devices, and the recordings shared by name.", run=run)
