"""Peak levels per channel, and their text at any channel count: measured, kept, summed up in one line.

Every text here fits a budget whatever the channel count: up to
`LIST_EVERY_PEAK` channels each peak is listed (``-6.0, -6.0``); above, the
channels are summed up as the lowest, median and highest peak, and the
clipped and silent channels by number in ranges (``3-7,12``), cut to the
characters left with the count of what was cut said (``… 120 ch``), so a
line never grows with the channel count and nothing is dropped unsaid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

#: The bottom of the level meter, in dBFS: a peak below it shows nothing, and counts as silent.
METER_FLOOR_DB = -60.0
#: A peak at or above this, in dBFS, is clipping (a console's clip LED lights a little below 0 dBFS,
#: as integer full scale, e.g. 32767 of 32768, is -0.0003 dBFS).
CLIP_DB = -0.1
#: Up to this many channels every peak is listed; above, they are summed up.
LIST_EVERY_PEAK = 4
#: From this many channels on the closing summary sums the peaks up (`peak_text`) instead of listing them.
SUMMARY_SUMS_UP = 64
#: The longest live line on stderr when not on a terminal: the peaks get what the title and the
#: counters leave (the title is never cut, so a long one can make the line longer).
PLAIN_LINE_CHARS = 159


def peak_dbfs(block: np.ndarray) -> np.ndarray:
    """Peak level of each channel of ``block`` in dBFS (-inf for digital silence).

    Integer samples are measured against their full scale (uint8 around 128);
    float samples against 1.0.
    """
    high = block.max(axis=0).astype(np.float64)
    low = block.min(axis=0).astype(np.float64)
    if block.dtype.kind == "u":
        full_scale = 2.0 ** (8 * block.dtype.itemsize - 1)
        high, low = high - full_scale, low - full_scale
    elif block.dtype.kind == "i":
        full_scale = 2.0 ** (8 * block.dtype.itemsize - 1)
    else:
        full_scale = 1.0
    with np.errstate(divide="ignore"):
        levels: np.ndarray = 20 * np.log10(np.maximum(np.abs(high), np.abs(low)) / full_scale)
    return levels


class Levels:
    """Peak levels per channel: since the last look (``recent``), and over the whole run (``max``)."""

    def __init__(self, channels: int) -> None:
        self.max = np.full(channels, -np.inf)
        self._recent = np.full(channels, -np.inf)

    def add(self, block: np.ndarray) -> None:
        """Take in the peaks of a block."""
        peaks = peak_dbfs(block)
        np.maximum(self.max, peaks, out=self.max)
        np.maximum(self._recent, peaks, out=self._recent)

    def recent(self) -> np.ndarray:
        """Peaks since the previous call."""
        recent, self._recent = self._recent, np.full_like(self._recent, -np.inf)
        return recent


def format_db(values: Iterable[float]) -> str:
    """``-6.0, -inf`` for a row of levels."""
    return ", ".join(f"{v:.1f}" for v in values)


def clipped(peaks: np.ndarray) -> np.ndarray:
    """Indices (from 0) of the channels whose peak is at or above `CLIP_DB`."""
    found: np.ndarray = np.flatnonzero(peaks >= CLIP_DB)
    return found


def silent(peaks: np.ndarray) -> np.ndarray:
    """Indices (from 0) of the channels whose peak is below `METER_FLOOR_DB` (digital silence included)."""
    found: np.ndarray = np.flatnonzero(~(peaks >= METER_FLOOR_DB))  # NaN counts as silent too
    return found


def channel_list(label: str, indices: Sequence[int] | np.ndarray, budget: int) -> str:
    """``label`` and the channels numbered from 1 in ranges (``clipped 3-7,12``), in about ``budget`` characters.

    ``indices`` are sorted indices from 0 (at least one). What does not fit
    ends the text as ``… N ch`` (N: every channel of the list, shown or not);
    if not even one range fits, only the count is left (``40 clipped``), so
    the count is always there, whatever ``budget``.

    >>> from audioring.cli.levels import channel_list
    >>> channel_list("clipped", [2, 3, 4, 5, 6, 11], 40)
    'clipped 3-7,12'
    >>> channel_list("silent", list(range(0, 64, 2)), 30)
    'silent 1,3,5,7,9,11,13… 32 ch'
    >>> channel_list("silent", list(range(0, 64, 2)), 10)
    '32 silent'
    """
    ranges: list[str] = []
    start = previous = int(indices[0])
    for index in [int(i) for i in indices[1:]] + [-2]:
        if index != previous + 1:
            ranges.append(str(start + 1) if start == previous else f"{start + 1}-{previous + 1}")
            start = index
        previous = index
    whole = f"{label} {','.join(ranges)}"
    if len(whole) <= budget:
        return whole
    count = f"… {len(indices)} ch"
    shown = ""
    for part in ranges:
        candidate = f"{label} {part}" if not shown else f"{shown},{part}"
        if len(candidate) + len(count) > budget:
            break
        shown = candidate
    return shown + count if shown else f"{len(indices)} {label}"


def peak_text(peaks: np.ndarray, budget: int) -> str:
    """The peaks in about ``budget`` characters: every one, or summed up.

    Up to `LIST_EVERY_PEAK` channels: ``-6.0, -inf``. Above: ``min -inf,
    median -6.0, max 0.0, clipped 3-7, silent 40-64``. The clipped and the
    silent channels are named only if there are any (the highest and the
    lowest peak say whether there are), and share what ``budget`` leaves,
    cut down to their count if it leaves too little (`channel_list`): the
    text is then longer than ``budget``: under 60 characters up to 999
    channels.

    >>> import numpy as np
    >>> from audioring.cli.levels import peak_text
    >>> peak_text(np.array([-6.0, -6.0]), 60)
    '-6.0, -6.0'
    >>> peak_text(np.array([-12.0, -6.0, 0.0, -6.0, -np.inf]), 80)
    'min -inf, median -6.0, max 0.0, clipped 3, silent 5'
    >>> peak_text(np.array([-12.0, -6.0, -3.0, -6.0, -20.0]), 80)
    'min -20.0, median -6.0, max -3.0'
    >>> peak_text(np.array([0.0, -np.inf] * 128), 20)
    'min -inf, median -inf, max 0.0, 128 clipped, 128 silent'
    """
    if len(peaks) <= LIST_EVERY_PEAK:
        return format_db(peaks)
    text = f"min {float(np.min(peaks)):.1f}, median {float(np.median(peaks)):.1f}, max {float(np.max(peaks)):.1f}"
    lists = [(label, found) for label, found in (("clipped", clipped(peaks)), ("silent", silent(peaks)))
             if len(found)]
    for number, (label, found) in enumerate(lists):
        # An even share of what is left; the first list leaves what it does not need to the next.
        left = budget - len(text) - 2 * (len(lists) - number)
        text += ", " + channel_list(label, found, left // (len(lists) - number))
    return text


def summary_peaks(peaks: Sequence[float]) -> str:
    """The closing summary's peaks: every one below `SUMMARY_SUMS_UP` channels, else `peak_text` in one line.

    >>> from audioring.cli.levels import summary_peaks
    >>> summary_peaks([-6.0, -6.0])
    '-6.0, -6.0'
    >>> summary_peaks([-6.0] * 63 + [0.0])
    'min -6.0, median -6.0, max 0.0, clipped 64'
    """
    if len(peaks) < SUMMARY_SUMS_UP:
        return format_db(peaks)
    return peak_text(np.asarray(peaks, dtype=np.float64), PLAIN_LINE_CHARS - len("peak dBFS: "))
