"""Argument checkers: every public argument is validated here, with errors naming it."""

from __future__ import annotations

import math
import operator
from typing import NamedTuple, Optional, Union

import numpy as np

from . import _core
from ._formats import SAMPLE_DTYPES

#: Upper bound on sampling rates, well past any device (PulseAudio allows 384 kHz).
MAX_SAMPLING_RATE = 10_000_000

#: Bounds that keep every size computation inside 64 bits; real limits
#: (memory, the device) are checked where they apply.
MAX_CHANNELS = 2**16
MAX_FRAMES = 2**48

#: Bound on absolute frame numbers (``start=``, ``time_at(frame)``, a ring's
#: ``wait_frames``): centuries of audio at any rate, with room in 64 bits for
#: the arithmetic done on them.
MAX_FRAME_NUMBER = 2**62

def as_sample_dtype(dtype: object) -> np.dtype:
    """Return ``dtype`` as a native-order numpy dtype, if PortAudio can deliver it.

    Raises
    ------
    TypeError
        If ``dtype`` is not one of `SAMPLE_DTYPES`.
    """
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except Exception:  # noqa: BLE001 - numpy raises TypeError, ValueError, KeyError or even SyntaxError ('(2,')
        resolved = None
    if resolved is None or resolved.name not in SAMPLE_DTYPES or not resolved.isnative:
        raise TypeError(f"dtype must be one of {', '.join(SAMPLE_DTYPES)}, got {dtype!r}")
    plain: np.dtype = np.dtype(resolved.name)  # drops metadata that would make equal dtypes compare unequal
    return plain


def as_count(value: object, name: str, low: int = 1, high: int | None = None) -> int:
    """Return ``value`` as an int in ``low..high``, or raise naming ``name``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (bools are refused too).
    ValueError
        If ``value`` is outside the range.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if number < low or (high is not None and number > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {allowed}, got {number}")
    return number


def as_timeout(timeout: object) -> float:
    """``timeout`` in seconds as a float >= 0 (inf included), or a ValueError naming it."""
    if not isinstance(timeout, bool) and isinstance(timeout, (int, float)):
        try:
            seconds = float(timeout)
        except OverflowError:  # an int too large for a float, e.g. 10**400
            seconds = math.inf if timeout > 0 else -math.inf
        if seconds >= 0:  # NaN fails this too
            return seconds
    raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")


def as_frame_number(value: object, name: str) -> int:
    """An absolute frame number (it may lie before the first frame), or an error naming ``name``."""
    return as_count(value, name, -MAX_FRAME_NUMBER, MAX_FRAME_NUMBER)


class StreamArgs(NamedTuple):
    """``stream()``'s arguments, checked; ``start`` stays None for the caller's default."""

    blocksize: int
    hop: int
    timeout: Optional[float]
    start: Optional[int]


def as_stream_args(blocksize: object, hop: object, timeout: object, start: object, capacity: int) -> StreamArgs:
    """Check the arguments of ``stream()``/``astream()``, the same on recorders, rings and shared readers.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: ``blocksize`` must be ``1..capacity``, ``hop``
        ``1..blocksize``, ``timeout`` None or >= 0, ``start`` a frame number.
    """
    size = as_count(blocksize, "blocksize", 1, capacity)
    return StreamArgs(
        size,
        size if hop is None else as_count(hop, "hop", 1, size),
        None if timeout is None else as_timeout(timeout),
        None if start is None else as_frame_number(start, "start"),
    )


def check_latency(latency: object) -> Union[float, str, None]:
    # isinstance first: `in` would compare an array elementwise (an error naming nothing).
    if latency is None or (isinstance(latency, str) and latency in ("low", "high")):
        return latency
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not (0 <= latency <= 10):
        raise ValueError(f"latency must be None, 'low', 'high' or seconds in 0..10, got {latency!r}")
    return float(latency)


#: libsoxr's recipes, by the names the API takes.
QUALITIES = ("quick", "low", "medium", "high", "very high")


def as_quality(quality: object) -> str:
    """``quality`` if it names one of libsoxr's recipes (`QUALITIES`), or a ValueError naming it."""
    # isinstance first: `in` would compare an array elementwise (an error naming nothing).
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(map(repr, QUALITIES))}, got {quality!r}")
    return quality


def as_rate(rate: object, name: str) -> int:
    """``rate`` in Hz as an int in ``1..MAX_SAMPLING_RATE``, or an error naming ``name``."""
    return as_count(rate, name, 1, MAX_SAMPLING_RATE)


def as_mapping(mapping: object, channels: int) -> Optional[list[int]]:
    """``mapping`` as a list of ``channels`` distinct 1-based device channel numbers (None stays None).

    Only the shape is checked here; whether the device has those inputs is
    checked when it is opened.

    Raises
    ------
    TypeError
        If ``mapping`` is not a sequence of integers.
    ValueError
        If it has the wrong length, a number below 1 (0-based by mistake:
        the numbers are 1-based, as sounddevice's ``rec(mapping=)``) or
        above ``MAX_CHANNELS``, or a repeated number.
    """
    if mapping is None:
        return None
    if isinstance(mapping, (str, bytes)) or not hasattr(mapping, "__iter__"):
        raise TypeError(f"mapping must be a sequence of device channel numbers (1-based), got {mapping!r}")
    numbers: list[int] = []
    for item in mapping:
        if isinstance(item, bool):
            raise TypeError(f"mapping must hold integers, got {item!r} in {mapping!r}")
        try:
            numbers.append(operator.index(item))
        except TypeError:
            raise TypeError(f"mapping must hold integers, got {item!r} in {mapping!r}") from None
    if len(numbers) != channels:
        raise ValueError(f"mapping must name one device channel per recorded channel ({channels}), got {mapping!r}")
    if any(n < 1 for n in numbers):
        raise ValueError(
            f"mapping numbers device channels from 1 (as sounddevice's rec(mapping=)), got {mapping!r}"
            + (f"; did you mean {[n + 1 for n in numbers]!r}?" if min(numbers) == 0 else "")
        )
    if max(numbers) > MAX_CHANNELS:
        raise ValueError(f"mapping must hold device channel numbers 1..{MAX_CHANNELS}, got {mapping!r}")
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"mapping must not name a device channel twice, got {mapping!r}")
    return numbers


def as_share_name(name: object, argument: str = "share") -> str:
    """``name`` if it can name a shared recording, or an error naming ``argument``.

    The rule itself (1..64 characters of letters, digits, ``_``, ``-`` and
    ``.``, not ``.`` first: a name becomes part of a file name, so never a
    path) is checked natively, by the code that makes and attaches shared
    rings, so that the two can never disagree.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If it breaks the rule (empty, too long, a ``/``, ``..`` at the
        start, a NUL, anything non-ASCII).
    """
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str naming the shared recording, got {name!r}")
    _core.check_share_name(name, argument)
    return name
