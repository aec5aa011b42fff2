"""The live meter on a terminal: every channel fitted to the terminal's size at each redraw.

Chosen after what operators know:

- jack_meter draws one long bar per port, jack_capture's meter one row per
  channel, pavumeter one bar per channel: fine for 2 to 8 channels, and what
  this draws while a row per channel fits (``ch  1 ████···· -6.0 dBFS max
  -6.0``, the number kept from the first version).
- A mixing console with 64 strips shows every strip at once as a narrow
  meter with the channel number under it and a clip LED that stays lit: at
  more channels than rows this draws a grid, one cell per channel, a
  channel number then a short bar (green to -18 dBFS, yellow to -6, red
  above; a one-character cell shows the level as the height of a block,
  ``▁`` to ``█``). The number turns white on red once the channel clipped
  (`CLIP_DB`; latched, like the LED) and dim while it is silent. Cells run
  in rows of a multiple of 8 channels where they fit (a console's banks of
  8), so channel 33 is found at the start of a row.
- What an operator must see is never scrolled off: the progress line and
  the counters (overflows, frames lost, the writer's lag) come first, and
  the channels take the lines left. The bars shrink before the rows grow
  past the terminal; if even one-character cells do not fit, the last line
  says which channels are not shown and asks for a larger terminal.

The size is read at every redraw (rich's console size), so resizing the
terminal re-lays the meter out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text

from .levels import CLIP_DB, METER_FLOOR_DB, peak_text

#: Widest bar of a row per channel, and of a grid cell, in characters.
ROW_BAR_MAX, CELL_BAR_MAX = 40, 8
#: Narrowest bar of a row per channel: below it the grid is drawn instead.
ROW_BAR_MIN = 10
#: Lines above the channels (the progress line, the counters) and one left free below the meter,
#: where the cursor rests, so that drawing the last line never scrolls the screen.
HEADER_LINES, SPARE_LINES = 2, 1
#: Characters of a row beside its bar: ``ch NN `` (with the digits), `` -6.0 dBFS``, `` max  -6.0``.
ROW_TEXT = len("ch  ") + len(" -60.0 dBFS") + len(" max -60.0")
_EIGHTHS = " ▏▎▍▌▋▊▉"  # a bar's last cell, in eighths
_HEIGHTS = "·▁▂▃▄▅▆▇█"  # a one-character bar: nothing, then eighths of the height


@dataclass(frozen=True)
class Layout:
    """How the channels fill the lines left to them.

    Attributes
    ----------
    rows_per_channel : bool
        One row per channel (bar, level, held maximum); else a grid.
    bar : int
        Characters of each bar.
    columns : int
        Cells in a grid row (1 for a row per channel).
    lines : int
        Channel lines drawn.
    summary : bool
        A grid's line summing up the held peaks (lowest, median, highest, clipped, silent) is drawn.
    hidden : int
        Channels that do not fit even at one-character cells (the last ones): said on the last line.
    """

    rows_per_channel: bool
    bar: int
    columns: int
    lines: int
    summary: bool
    hidden: int


def choose_layout(channels: int, width: int, height: int) -> Layout:
    """The layout of ``channels`` in a terminal of ``width`` x ``height`` characters.

    A row per channel if they all fit with a bar of at least `ROW_BAR_MIN`;
    else the grid with the widest bars whose lines fit (with the summary
    line, or without it); else one-character cells, as many lines as fit
    less one that says what is not shown.

    >>> from audioring.cli.meter_view import choose_layout
    >>> choose_layout(2, 80, 24)
    Layout(rows_per_channel=True, bar=40, columns=1, lines=2, summary=False, hidden=0)
    >>> choose_layout(64, 80, 24)
    Layout(rows_per_channel=False, bar=7, columns=8, lines=8, summary=True, hidden=0)
    >>> choose_layout(256, 80, 24)
    Layout(rows_per_channel=False, bar=1, columns=16, lines=16, summary=True, hidden=0)
    """
    free = max(1, height - HEADER_LINES - SPARE_LINES)
    digits = max(2, len(str(channels)))
    row_bar = min(ROW_BAR_MAX, width - ROW_TEXT - digits)
    if channels <= free and row_bar >= ROW_BAR_MIN:
        return Layout(True, row_bar, 1, channels, summary=False, hidden=0)
    digits = len(str(channels))
    # Banks of 8 first (the summary line given up before them), then any number of columns.
    for banked, summary in ((True, True), (True, False), (False, True), (False, False)):
        for bar in range(CELL_BAR_MAX, 0, -1):
            columns = _columns(channels, width, digits + bar, banked)
            lines = -(-channels // columns) if columns else free + 1
            if lines <= free - summary:
                return Layout(False, bar, columns, lines, summary, hidden=0)
    columns = _columns(channels, width, digits + 1, banked=False)
    lines = max(0, free - 1)
    return Layout(False, 1, columns, lines, summary=False, hidden=max(0, channels - lines * columns))


def _columns(channels: int, width: int, cell: int, banked: bool) -> int:
    """Cells of ``cell`` characters (a space between) that fit in ``width``, at most ``channels``.

    ``banked``: a multiple of 8 (0 if fewer than 8 fit), unless every channel fits on one line.
    """
    fit = max(1, (width + 1) // (cell + 1))
    if fit >= channels:
        return channels
    return fit - fit % 8 if banked else fit


class LiveMeter:
    """What `RichDisplay` hands to rich's Live: laid out again at each redraw for the console's size.

    ``header`` (the progress line) comes first, then the counters, then
    the channels. ``shown`` (the recent peaks), ``held`` (each channel's
    maximum so far) and ``counters`` (rich markup) are replaced whole by the
    display, never changed in place: a redraw on rich's thread sees one
    consistent set.
    """

    def __init__(self, header: RenderableType, channels: int) -> None:
        self.header = header
        self.shown = np.full(channels, -np.inf)
        self.held = np.full(channels, -np.inf)
        self.counters = ""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The header, the counters and the channels, for ``options``' width and the console's height."""
        shown, held = self.shown, self.held
        width = options.max_width
        # The header takes one line but may wrap on a narrow terminal: the channels get the rest.
        header = console.render_lines(self.header, options.update(height=None), pad=False)
        layout = choose_layout(len(shown), width, options.size.height - (len(header) - 1))
        for segments in header:
            yield from segments
            yield Segment.line()
        counters = Text.from_markup(self.counters, overflow="ellipsis")
        counters.no_wrap = True
        yield counters
        if layout.rows_per_channel:
            digits = max(2, len(str(len(shown))))
            for channel, (now, top) in enumerate(zip(shown, held)):
                yield Text.assemble(
                    (f"ch {channel + 1:>{digits}}", _number_style(top)), " ", bar(now, layout.bar),
                    f" {now:6.1f} dBFS", (f" max {top:6.1f}", "dim"),
                )
            return
        if layout.summary:
            line = Text("since start: ", style="dim")
            line.append(peak_text(held, width - len(line)))
            line.truncate(width, overflow="ellipsis")
            yield line
        digits = len(str(len(shown)))
        for row in range(layout.lines):
            line = Text(no_wrap=True)
            for channel in range(row * layout.columns, min(len(shown), (row + 1) * layout.columns)):
                if channel % layout.columns:
                    line.append(" ")
                line.append(f"{channel + 1:>{digits}}", style=_number_style(held[channel]))
                line.append_text(bar(shown[channel], layout.bar))
            yield line
        if layout.hidden:
            first = len(shown) - layout.hidden + 1
            yield Text(f"channels {first}-{len(shown)} do not fit in {width}x{options.size.height}: "
                       "enlarge the terminal", style="bold yellow", overflow="ellipsis", no_wrap=True)


def _number_style(held: float) -> str:
    """A channel number's style: white on red once it clipped, dim while it has been silent."""
    if held >= CLIP_DB:
        return "bold white on red"
    return "dim" if not held >= METER_FLOOR_DB else ""


def _level_style(db: float) -> str:
    """Green to -18 dBFS, yellow to -6, red above."""
    return "red" if db >= -6.0 else "yellow" if db >= -18.0 else "green"


def bar(db: float, width: int) -> Text:
    """A bar of ``width`` characters for ``db`` dBFS (`METER_FLOOR_DB` to 0).

    A bar of one character grows upwards (``▁`` to ``█``); a longer one to the
    right in eighths of a character, coloured by `_level_style` where it
    reaches (a long bar: each part by its own level, as on a console), with
    dots for the rest.
    """
    fraction = float(np.clip((db - METER_FLOOR_DB) / -METER_FLOOR_DB, 0, 1)) if np.isfinite(db) else 0.0
    if width == 1:
        height = int(round(fraction * 8))
        return Text(_HEIGHTS[height], style="dim" if height == 0 else _level_style(db))
    eighths = int(round(fraction * 8 * width))
    full, part = divmod(eighths, 8)
    text = Text()
    if width >= ROW_BAR_MIN:  # long enough for each zone to show in its own colour
        def cells(level: float) -> int:
            return int(round((level - METER_FLOOR_DB) / -METER_FLOOR_DB * width))
        green, yellow = cells(-18.0), cells(-6.0)
        text.append("█" * min(full, green), "green")
        text.append("█" * max(0, min(full, yellow) - green), "yellow")
        text.append("█" * max(0, full - yellow), "red")
    else:
        text.append("█" * full, _level_style(db))
    tip: Optional[str] = _EIGHTHS[part] if part and full < width else None
    if tip is not None:
        text.append(tip, _level_style(db))
    text.append("·" * (width - full - (tip is not None)), "dim")
    return text
