"""Figures for the reports: set-up, the stamp line at the foot, saving; and the grouped bar chart two cases use.

Charts are drawn from the JSON alone, so ``run.py --from-json`` redraws them
byte for byte (same matplotlib, no dates in the PNG metadata).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt


@contextlib.contextmanager
def figure(path: Path, stamp: str, nrows: int = 1, ncols: int = 1, figsize: tuple = (8, 5.4),
           bottom: float = 0.05, **subplots) -> Iterator[tuple]:
    """(fig, axes) to draw on; on exit the stamp goes at the foot and the figure is saved to `path`."""
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **subplots)
    try:
        yield fig, axes
        fig.text(0.5, 0.005, stamp, ha="center", va="bottom", fontsize=6, color="dimgrey")
        fig.tight_layout(rect=(0, bottom, 1, 1))  # leaves room for a suptitle by itself (matplotlib >= 3.3)
        fig.savefig(path, dpi=110, metadata={"Software": None})
    finally:
        plt.close(fig)


def distinct_color(index: int, count: int) -> tuple:
    """The `index`-th of `count` colours that stay apart (matplotlib's default cycle repeats after 10)."""
    palette = plt.get_cmap("tab20" if count > 10 else "tab10")
    return palette(index % palette.N)


def grouped_bars(ax, groups: Sequence[str], series: Sequence[tuple], annotate=None) -> None:
    """Bars of several series side by side for each group.

    `series`: (label, heights) with one height per group (NaN: no bar);
    `annotate(height) -> str` writes a label above each bar.
    """
    width = 0.8 / max(1, len(series))
    for k, (label, heights) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, heights, width, label=label)
        if annotate:
            for bar, height in zip(bars, heights):
                if height == height:  # not NaN
                    ax.text(bar.get_x() + bar.get_width() / 2, height, annotate(height), ha="center",
                            va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(groups)), list(groups), fontsize=7)
    ax.set_xlim(-0.5, len(groups) - 0.5)
