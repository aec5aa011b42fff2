"""What the command line shows on stderr: notices, and while it captures a live display.

The live display is a `Display`: `RichDisplay` on a terminal when rich is
installed, else `PlainDisplay` (a line a second). rich is imported only
when a `RichDisplay` is made.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional, Protocol, TextIO

import numpy as np

if TYPE_CHECKING:  # rich is optional (the cli extra): at run time only RichDisplay imports it
    from rich.console import RenderableType
    from rich.text import Text

#: The bottom of the level meter, in dBFS.
METER_FLOOR_DB = -60.0
#: Width of a meter bar, in characters.
METER_WIDTH = 40


def notice(message: str) -> None:
    """Tell the user ``message`` on stderr (stdout is kept for the results)."""
    print(f"audioring: {message}", file=sys.stderr, flush=True)


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
    """One line on stderr every ``interval`` seconds: time, peaks, overflows, frames lost."""

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
            print(
                f"audioring: {self._title}: {frames / self._rate:.1f}{of} s, "
                f"peak dBFS {format_db(self.levels.recent())}, overflows {overflows}, frames lost {lost}"
                + ("" if lag is None else f", writer lag {lag / self._rate:.2f} s"),
                file=self._stream, flush=True,
            )

    def close(self) -> None:
        """Nothing to tidy up."""


class RichDisplay:
    """A live progress bar and per-channel peak meter on stderr, drawn by rich about 10 times a second."""

    def __init__(self, title: str, channels: int, rate: int, total: Optional[int]) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn

        self.levels = Levels(channels)
        self._rate, self._total = rate, total
        self._progress = Progress(
            TextColumn("[bold red]●[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
        )
        self._task = self._progress.add_task(title, total=total, clock="")
        self._shown = np.full(channels, -np.inf)
        self._stats = ""
        self._live = Live(self._render(), console=Console(stderr=True), refresh_per_second=10)
        self._live.start()

    def update(self, frames: int, block: np.ndarray, overflows: int, lost: int, lag: Optional[int] = None) -> None:
        """Take in a block and redraw."""
        self.levels.add(block)
        self._shown = self.levels.recent()
        clock = f"{frames / self._rate:6.1f} s"
        if self._total is not None:
            clock += f" / {self._total / self._rate:.1f} s"
        else:
            clock += "  (Ctrl-C stops)"
        self._progress.update(self._task, completed=frames, clock=clock)
        warn = "bold red" if overflows or lost else "dim"
        behind = "" if lag is None else f"   writer lag {lag / self._rate:.2f} s"
        self._stats = f"[{warn}]overflows {overflows}   frames lost {lost}{behind}[/]"
        self._live.update(self._render())

    def close(self) -> None:
        """Draw the last state and leave it on the screen."""
        self._live.update(self._render(), refresh=True)
        self._live.stop()

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        meter = Table.grid(padding=(0, 1))
        for channel, (now, top) in enumerate(zip(self._shown, self.levels.max)):
            meter.add_row(f"ch {channel + 1:>2}", _bar(now), f"{now:6.1f} dBFS", f"[dim]max {top:6.1f}[/]")
        return Group(self._progress, meter, Text.from_markup(self._stats))


def _bar(db: float) -> Text:
    """A meter bar: green to -18 dBFS, yellow to -6, red above; dots for the rest."""
    from rich.text import Text

    def cells(level: float) -> int:
        return int(round(np.clip((level - METER_FLOOR_DB) / -METER_FLOOR_DB, 0, 1) * METER_WIDTH))

    filled = cells(db) if np.isfinite(db) else 0
    green, yellow = cells(-18.0), cells(-6.0)
    return Text.assemble(
        ("█" * min(filled, green), "green"),
        ("█" * max(0, min(filled, yellow) - green), "yellow"),
        ("█" * max(0, filled - yellow), "red"),
        ("·" * (METER_WIDTH - filled), "dim"),
    )
