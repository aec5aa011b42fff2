"""Numbers to text for the reports: one way to print a duration, a size, a list of runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional


def fmt_ns(value: Optional[float]) -> str:
    """A duration given in nanoseconds, in the unit that keeps 3-4 significant digits."""
    if value is None:
        return "n/a"
    if value >= 1e9:
        return f"{value / 1e9:,.2f} s"
    if value >= 1e6:
        return f"{value / 1e6:,.2f} ms"
    if value >= 1e3:
        return f"{value / 1e3:,.2f} µs"
    return f"{value:,.0f} ns"


def fmt_size(nbytes: int, binary: bool = False) -> str:
    if binary:
        units = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
    else:
        units = (("GB", 10**9), ("MB", 10**6), ("kB", 10**3))
    for unit, scale in units:
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} B"


def fmt_runs(values: Iterable, fmt=lambda x: f"{x:,}" if isinstance(x, int) else str(x)) -> str:
    """Run-by-run values separated by " / " ("?" where a run gave none)."""
    return " / ".join("?" if v is None else fmt(v) for v in values)


def yes_no(met: Optional[bool]) -> str:
    return "n/a" if met is None else ("yes" if met else "**no**")
