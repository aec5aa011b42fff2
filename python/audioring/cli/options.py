"""Options and argument types that several commands share.

Every command that captures audio (``record``, ``meter``, ``serve``) takes
the capture options of `add_capture_options`; an option every such command
should get (``--device-rate``, ``--latency``, say) is added there, once. Each
also takes ``--buffer-seconds`` (`add_buffer_option`), whose help says what
the ring is for in that command.

Argument types check the text of the command line only; the values are
checked again by the library (`audioring._validate`, `AudioRecord`) when
they are used, so the bounds here are only what the command line accepts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Callable, Optional, Union

from .._device_list import MAX_DEVICES
from .._settings import MAX_BLOCKSIZE
from .._validate import MAX_CHANNELS, QUALITIES

#: The most --rate takes: the highest rate of any real audio hardware.
MAX_RATE = 768_000
#: The most --latency takes, in seconds: what `AudioRecord` takes (latency=).
MAX_LATENCY = 10.0
#: --latency's named values: PortAudio's default low and high input latency of the device.
LATENCY_NAMES = ("low", "high")


def int_in(least: int, most: int, note: str = "") -> Callable[[str], int]:
    """An argparse type: an integer in ``least..most`` (``note``, if any, follows the range in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1  # reported as out of range, with the text as given
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be an integer in {least}..{most}{note}, got {text!r}")
        return value

    return parse


def positive_int(most: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``1..most``."""
    return int_in(1, most)


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # reported as not > 0, with the text as given
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def latency(text: str) -> Union[float, str]:
    """An argparse type: ``low``, ``high`` or a number of seconds in ``0..MAX_LATENCY`` (AudioRecord's latency=)."""
    if text in LATENCY_NAMES:
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # reported as out of range, with the text as given
    if not 0 <= value <= MAX_LATENCY:  # nan fails too
        raise argparse.ArgumentTypeError(
            f"must be low, high or a number of seconds in 0..{MAX_LATENCY:g}, got {text!r}")
    return value


def mapping(text: str) -> list[int]:
    """An argparse type: device channel numbers, 1-based, comma-separated (``3,4``)."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or any(n < 1 or n > MAX_CHANNELS for n in numbers):
        raise argparse.ArgumentTypeError(
            f"must be device channel numbers from 1 (as sounddevice's mapping), comma-separated, e.g. 3,4; got {text!r}"
        )
    return numbers


@dataclasses.dataclass(frozen=True)
class CaptureOptions:
    """The capture options as given: None for each one left out (`inputs.choose_input` settles them).

    Attributes
    ----------
    device : str, optional
        ``--device``: an index, a name substring or a ``virtual...`` spec.
    devices : tuple of str
        ``--device`` given more than once: every one, in order, each perhaps
        with ``@N,N...`` (its inputs); empty for one device or none.
    clock : int
        ``--clock``: with several devices, the index (from 1) of the master.
    channels, rate : int, optional
        ``--channels`` and ``--rate``.
    device_rate : int, optional
        ``--device-rate``: the rate to open the device at (converting to ``rate``).
    mapping : list of int, optional
        ``--mapping``: the device inputs to record, 1-based.
    quality : str
        ``--quality``: libsoxr's recipe when converting.
    latency : float or str, optional
        ``--latency``: AudioRecord's ``latency=`` (None: its default, ``'high'``).
    blocksize : int
        ``--blocksize``: AudioRecord's ``blocksize=`` (0: the host API chooses).
    fallback : bool
        False with ``--no-fallback``: no usable default input device is an
        error instead of the virtual input.
    """

    device: Optional[str]
    channels: Optional[int]
    rate: Optional[int]
    device_rate: Optional[int] = None
    devices: tuple[str, ...] = ()
    clock: int = 1
    mapping: Optional[list[int]] = None
    quality: str = "high"
    latency: Union[float, str, None] = None
    blocksize: int = 0
    fallback: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CaptureOptions:
        """The capture options of a command line parsed with `add_capture_options`."""
        devices: list[str] = args.device or []
        return cls(device=devices[0] if len(devices) == 1 else None, channels=args.channels, rate=args.rate,
                   device_rate=args.device_rate, devices=tuple(devices) if len(devices) > 1 else (),
                   clock=args.clock, mapping=args.mapping, quality=args.quality, latency=args.latency,
                   blocksize=args.blocksize or 0, fallback=not args.no_fallback)


def add_capture_options(parser: argparse.ArgumentParser) -> None:
    """Add the capture options: ``--device`` (repeatable), ``--clock``, ``--channels``, ``--rate``,
    ``--device-rate``, ``--mapping``, ``--quality``, ``--latency``, ``--blocksize``, ``--no-fallback``
    (see `CaptureOptions`)."""
    parser.add_argument(
        "--device", "-d", metavar="D", action="append",
        help="input device: index or name substring (see `audioring devices`), or the built-in "
             "virtual input: virtual, virtual:sine:HZ[,HZ...], virtual:noise, virtual:ramp "
             "(default: the default input device; the virtual input if there is none). Repeat it to record "
             "several devices into one sample-aligned recording, each perhaps with its inputs: "
             "-d 'USB A@1,2' -d 'USB B@1' (clock drift compensated against the first, or --clock)",
    )
    parser.add_argument("--clock", type=positive_int(MAX_DEVICES), default=1, metavar="N",
                        help="with several --device: the one (from 1, in the order given) whose clock the "
                             "recording keeps; the others are resampled onto it (default: 1)")
    parser.add_argument("--channels", "-c", type=positive_int(MAX_CHANNELS), metavar="C",
                        help="number of channels, 1..the device's maximum (default: 2, or 1 if the device has 1)")
    parser.add_argument("--rate", "-r", type=positive_int(MAX_RATE), metavar="R",
                        help="sampling rate in Hz (default: the device's default rate; 48000 for the virtual input)")
    parser.add_argument("--device-rate", type=positive_int(MAX_RATE), metavar="R",
                        help="open the device at this rate and convert to --rate (default: --rate if the device "
                             "takes it, else the device's default rate)")
    parser.add_argument("--mapping", "-m", type=mapping, metavar="N,N...",
                        help="device inputs to record, numbered from 1, in order: 3,4 records inputs 3 and 4, "
                             "2,1 swaps a stereo pair (default: the first --channels inputs)")
    parser.add_argument("--quality", choices=QUALITIES, default="high",
                        help="resampling quality when converting (libsoxr's recipes; default: high)")
    parser.add_argument("--latency", type=latency, metavar="L",
                        help="the device's input latency: seconds (e.g. 0.1), or low or high, PortAudio's defaults "
                             "for the device; more latency rides out a loaded machine without overflows "
                             "(default: high)")
    parser.add_argument("--blocksize", type=int_in(0, MAX_BLOCKSIZE, " (0: the host API chooses)"), metavar="N",
                        help="frames the device delivers per block; 0 lets the host API choose, usually best "
                             "(default: 0)")


    parser.add_argument("--no-fallback", action="store_true",
                        help="without --device, fail (exit status 1) when there is no usable input device, instead "
                             "of recording the virtual input's test tone: for scripts")


def add_buffer_option(parser: argparse.ArgumentParser, purpose: str, default: float) -> None:
    """Add ``--buffer-seconds S``, the seconds of audio the ring holds; ``purpose`` says what for in this command.

    ``args.buffer_seconds`` is None when it is left out: the command reads
    its default when it starts its recorder (`capture.RING_SECONDS`, which
    tests shorten), ``default`` is only what the help says.
    """
    parser.add_argument("--buffer-seconds", type=seconds, metavar="S",
                        help=f"seconds of audio the ring holds: {purpose} (default: {default:g})")
