"""VirtualInput: the built-in virtual input device."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from ._validate import MAX_SAMPLING_RATE, as_count

SIGNALS = ("sine", "noise", "ramp")


class VirtualInput:
    """A built-in input device that generates a signal on a native thread.

    It drives the very callback a PortAudio stream drives, so everything an
    `AudioRecord` does works the same on a machine without a sound card, and
    benchmarks can push the ring far past any real device. Pass it as
    ``AudioRecord(..., device=VirtualInput(...))``.

    Parameters
    ----------
    signal : {'sine', 'noise', 'ramp'}
        ``'sine'``: a sine of ``frequency`` Hz. ``'noise'``: white noise.
        ``'ramp'``: each frame's samples hold the frame's number, modulo the
        largest power of two the dtype holds exactly (2**24 for float32, 2**bits
        for integers, as the two's-complement bit pattern): a gap or repeat in
        the frames shows as a step in the ramp.
    frequency : float or sequence of float, optional
        Sine frequency in Hz, one for every channel or one per channel (default 1000).
    amplitude : float, optional
        Peak level of sine and noise, 0..1 of full scale (default 0.5).
    realtime : bool, optional
        ``True`` (default) delivers blocks paced by the clock, ``speed`` times
        faster than real time; ``False`` free-runs as fast as it can.
    speed : float, optional
        Pacing factor when ``realtime`` (default 1.0).
    frames : int, optional
        Stop after this many frames (default: never).
    seed : int, optional
        Seed of the noise generator.
    rate : int, optional
        The device's one native rate in Hz, as a sound card that runs at a
        fixed rate: a recorder at another ``sampling_rate`` then converts
        (default: None, the device runs at whatever rate it is opened with).

    Raises
    ------
    ValueError, TypeError
        For unknown signals, or values out of range.

    Examples
    --------
    >>> from audioring import AudioRecord, VirtualInput
    >>> with AudioRecord(1, 16000, 16000, device=VirtualInput("sine", 440)) as rec:
    ...     pass
    """

    def __init__(
        self,
        signal: str = "sine",
        frequency: Union[float, Sequence[float]] = 1000.0,
        *,
        amplitude: float = 0.5,
        realtime: bool = True,
        speed: float = 1.0,
        frames: Optional[int] = None,
        seed: int = 1,
        rate: Optional[int] = None,
    ) -> None:
        # isinstance first: `in` would compare an array elementwise (an error naming nothing).
        if not isinstance(signal, str) or signal not in SIGNALS:
            raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
        frequencies = _as_frequencies(frequency)
        if not _is_number(amplitude) or not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude must be in 0..1, got {amplitude!r}")
        if not isinstance(realtime, bool):
            raise TypeError(f"realtime must be True or False, got {realtime!r}")
        if not _is_positive_number(speed):
            raise ValueError(f"speed must be a number > 0, got {speed!r}")
        if frames is not None:
            # Bounded so that it fits the native int64 (else a TypeError naming nothing at AudioRecord()).
            frames = as_count(frames, "frames", 0, 2**63 - 1)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
        self.signal = signal
        self.frequencies = [float(f) for f in frequencies]
        self.amplitude = float(amplitude)
        self.realtime = realtime
        self.speed = float(speed)
        self.frames = frames
        self.seed = seed
        self.rate = None if rate is None else as_count(rate, "rate", 1, MAX_SAMPLING_RATE)

    @property
    def name(self) -> str:
        """A short description, e.g. ``'virtual:sine:1000'``."""
        if self.signal != "sine":
            return f"virtual:{self.signal}"
        return "virtual:sine:" + ",".join(f"{f:g}" for f in self.frequencies)

    def __repr__(self) -> str:
        return (
            f"VirtualInput({self.signal!r}, "
            f"{self.frequencies if len(self.frequencies) > 1 else self.frequencies[0]!r}, "
            f"amplitude={self.amplitude!r}, realtime={self.realtime!r}, speed={self.speed!r}, frames={self.frames!r}, "
            f"rate={self.rate!r})"
        )


def _as_frequencies(frequency: object) -> list[float]:
    """``frequency`` as a non-empty list of positive finite floats, or an error naming it."""
    frequencies: list[object]
    if isinstance(frequency, (numbers.Real, str, bytes)):
        frequencies = [frequency]
    else:
        try:
            frequencies = list(frequency)  # type: ignore[call-overload]
        except TypeError:  # not iterable (None, a complex number, ...): say which argument
            raise TypeError(f"frequency must be a number or a sequence of numbers, got {frequency!r}") from None
    if not frequencies or not all(_is_positive_number(f) for f in frequencies):
        raise ValueError(f"frequency must be a number > 0 or a sequence of them, got {frequency!r}")
    return [float(f) for f in frequencies]  # type: ignore[arg-type]


def _is_number(value: object) -> bool:
    # numbers.Real takes numpy's scalars too (np.float32 is not a float); bools are refused.
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _is_positive_number(value: object) -> bool:
    return _is_number(value) and value > 0  # type: ignore[operator]
