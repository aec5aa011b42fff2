"""What the command line shows on stderr: notices, and while it captures a live display.

The live display is a `Display`: `RichDisplay` on a terminal when rich is
installed, else `PlainDisplay`. rich is imported only when a `RichDisplay`
is made.

On a terminal the display fits every channel into the terminal's size,
whatever their number (`audioring.cli.meter_view` says how and why), with
the progress and the counters an operator must see (overflows, frames lost,
the writer's lag) on the first lines, never scrolled off. Elsewhere (a
pipe, a log file) it prints one line a second: the title, the time, up to
4 channels every peak, above that the lowest, median and highest peak and
the clipped and silent channels by number in what the rest of the line
leaves (`audioring.cli.levels.peak_text`), then the counters. A line holds
at most `PLAIN_LINE_CHARS` characters at any channel count, unless the
title (a file's path, never cut: tests and scripts look for it) and the
counters leave less than the peaks' shortest form needs (under 60
characters: each list cut to its count). E.g. at 64 channels where
channel 8 clipped and 33 to 64 are silent::

    audioring: METER virtual:sine:1000: 3.0 s, peak dBFS min -inf, median -inf, max 0.0,
    clipped 8, silent 33-64, overflows 0, frames lost 0

(one line, broken here to fit).
"""

from __future__ import annotations

import sys
import time
from typing import Optional, Protocol, TextIO

import numpy as np

from .levels import PLAIN_LINE_CHARS, Levels, peak_text


def notice(message: str) -> None:
    """Tell the user ``message`` on stderr (stdout is kept for the results)."""
    print(f"audioring: {message}", file=sys.stderr, flush=True)


class Display(Protocol):
    """What a capture shows while it runs: `RichDisplay` and `PlainDisplay` implement it.

    A display is made with the capture's title, channels, rate and total
    frames (see `make_display`), takes ``update`` after every block the
    output got and ``close`` exactly once at the end, and keeps the peak
    levels of every block it was given in ``levels``. mypy checks both
    displays against it where `make_display` returns them.
    """

    @property
    def levels(self) -> Levels:
        """The peak levels of the blocks passed to `update` so far."""

    def update(self, frames: int, block: np.ndarray, overflows: int, lost: int, lag: Optional[int] = None) -> None:
        """Take in ``block``, the last one the output got.

        Parameters
        ----------
        frames : int
            Frames the output got so far, ``block`` included.
        block : numpy.ndarray
            ``(frames, channels)`` samples of the capture's dtype.
        overflows, lost : int
            The recorder's input overflows and the frames lost so far.
        lag : int, optional
            Frames recorded but not yet written (a file writer's), shown when given.
        """

    def close(self) -> None:
        """End the display, leaving its last state on the screen."""


def make_display(title: str, channels: int, rate: int, total: Optional[int]) -> Display:
    """A `RichDisplay` if stderr is a terminal and rich is installed, else a `PlainDisplay`.

    Parameters
    ----------
    title : str
        What runs, e.g. ``'REC out.wav'``.
    channels, rate : int
        Of the capture.
    total : int, optional
        Frames the run will take (None: until Ctrl-C).
    """
    if sys.stderr.isatty():
        try:
            return RichDisplay(title, channels, rate, total)
        except ImportError:
            pass
    return PlainDisplay(title, channels, rate, total)


class PlainDisplay:
    """One line on stderr every ``interval`` seconds: time, peaks, overflows, frames lost, the writer's lag.

    A line holds at most `PLAIN_LINE_CHARS` characters at any channel
    count, unless the title and the counters leave less than the peaks'
    shortest form needs (see the module's docstring).
    """

    def __init__(
        self, title: str, channels: int, rate: int, total: Optional[int], stream: TextIO = sys.stderr,
        interval: float = 1.0,
    ) -> None:
        self.levels = Levels(channels)
        self._title, self._rate, self._total = title, rate, total
        self._stream, self._interval = stream, interval
        self._next = time.monotonic() + interval

    def update(self, frames: int, block: np.ndarray, overflows: int, lost: int, lag: Optional[int] = None) -> None:
        """Take in a block; print a line if ``interval`` has passed."""
        self.levels.add(block)
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            of = "" if self._total is None else f" of {self._total / self._rate:.1f}"
            head = f"audioring: {self._title}: {frames / self._rate:.1f}{of} s, peak dBFS "
            tail = f", overflows {overflows}, frames lost {lost}" + (
                "" if lag is None else f", writer lag {lag / self._rate:.2f} s")
            budget = PLAIN_LINE_CHARS - len(head) - len(tail)
            print(head + peak_text(self.levels.recent(), budget) + tail, file=self._stream, flush=True)

    def close(self) -> None:
        """Nothing to tidy up."""


class RichDisplay:
    """A progress line, the counters and every channel's level on stderr, drawn by rich about 10 times a second.

    The channels are laid out for the terminal's size at each redraw
    (`audioring.cli.meter_view.LiveMeter`).
    """

    def __init__(self, title: str, channels: int, rate: int, total: Optional[int]) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn

        from .meter_view import LiveMeter

        self.levels = Levels(channels)
        self._rate, self._total = rate, total
        self._progress = Progress(
            TextColumn("[bold red]●[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
        )
        self._task = self._progress.add_task(title, total=total, clock="")
        self._meter = LiveMeter(self._progress, channels)
        self._live = Live(self._meter, console=Console(stderr=True), refresh_per_second=10)
        self._live.start()

    def update(self, frames: int, block: np.ndarray, overflows: int, lost: int, lag: Optional[int] = None) -> None:
        """Take in a block; rich redraws it on its next refresh."""
        self.levels.add(block)
        self._meter.shown = self.levels.recent()
        self._meter.held = self.levels.max.copy()
        clock = f"{frames / self._rate:6.1f} s"
        if self._total is not None:
            clock += f" / {self._total / self._rate:.1f} s"
        else:
            clock += "  (Ctrl-C stops)"
        self._progress.update(self._task, completed=frames, clock=clock)
        warn = "bold red" if overflows or lost else "dim"
        behind = "" if lag is None else f"   writer lag {lag / self._rate:.2f} s"
        self._meter.counters = f"[{warn}]overflows {overflows}   frames lost {lost}{behind}[/]"

    def close(self) -> None:
        """Draw the last state and leave it on the screen."""
        self._live.refresh()
        self._live.stop()
