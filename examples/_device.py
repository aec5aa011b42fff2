"""``--device`` of the examples: a PortAudio device index or name, or audioring's virtual input.

Shared by the examples that record (each imports it from beside itself: run
them as ``python examples/NAME.py``). The virtual input is spelled as the
``audioring`` command line spells it::

    virtual                 a 1000 Hz sine
    virtual:sine:440        a 440 Hz sine on every channel
    virtual:sine:440,880    one frequency per channel
    virtual:noise           white noise
    virtual:ramp            each frame holds its number (a gap shows as a step)
"""

from __future__ import annotations

import argparse

from audioring import VirtualInput

SYNTAX = "virtual, virtual:sine:HZ[,HZ...], virtual:noise or virtual:ramp"
#: The ``help=`` of ``--device``.
DEVICE_HELP = f"a PortAudio device index or name, or {SYNTAX} (default: the system's default input)"


def device(name: str) -> int | str | VirtualInput:
    """The ``device=`` for `AudioRecord` that ``name`` names (an argparse ``type=``).

    Raises
    ------
    argparse.ArgumentTypeError
        For a ``virtual...`` name that is none of `SYNTAX`, or a frequency that
        is not a number above 0 (argparse reports it with the usage line).
    """
    kind, _, rest = name.partition(":")
    if kind != "virtual":
        return int(name) if name.isdigit() else name
    signal, _, frequencies = rest.partition(":")
    signal = signal or "sine"
    if frequencies and signal != "sine":  # only a sine takes frequencies
        raise argparse.ArgumentTypeError(f"invalid virtual input {name!r} (use {SYNTAX})")
    try:
        if not frequencies:
            return VirtualInput(signal)
        hz = [float(f) for f in frequencies.split(",")]
        return VirtualInput("sine", hz if len(hz) > 1 else hz[0])
    except ValueError as error:  # VirtualInput refuses unknown signals and frequencies out of range
        raise argparse.ArgumentTypeError(
            f"invalid virtual input {name!r}: {error} (use {SYNTAX}, frequencies in Hz above 0)") from None
