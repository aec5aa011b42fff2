"""Measuring clock drift: a device's rate from its callbacks' times.

A device's real rate is measured by fitting a straight line to many
(callback time, frames so far) pairs: counting the frames that arrived in a
window is off by up to a period (the window's ends fall between callbacks),
which at a 10 ms period and 10 s is 1,000 ppm; the slope of a fit over
hundreds of callbacks is not.

Callback times are late, never early: a callback runs when the device's
period has ended *and* the scheduler has woken its thread, which on a busy
machine takes anywhere from microseconds to milliseconds. Least squares treats
that one-sided delay as noise around the line and is pulled by bursts of late
callbacks (on a loaded 2-core machine: 5 to 15 ppm off over 10 s). The
default fit is therefore the *lower envelope* of the times (Moon, Skelly and
Towsley's linear program for clock skew from one-way delays, 1999): the line
that no callback precedes, as close to all of them as possible. Its slope
follows the callbacks that came promptly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["RateFit", "fit_rate"]

_METHODS = ("envelope", "least-squares")


@dataclass(frozen=True)
class RateFit:
    """The line fitted by :func:`fit_rate`: ``frames = rate * (time - t0)``.

    Attributes
    ----------
    rate : float
        Frames per second of the times' clock.
    t0 : float
        When the line's frame count is 0, in the times' clock.
    method : str
        ``"envelope"`` or ``"least-squares"``.
    points : int
        Number of (time, frames) pairs fitted.
    span : float
        Seconds from the first to the last time.
    lateness : numpy.ndarray
        Each pair's time minus the line's time for its frame count, in
        seconds; >= 0 (up to rounding) for the envelope fit.
    """

    rate: float
    t0: float
    method: str
    points: int
    span: float
    lateness: npt.NDArray[np.float64]

    def ppm(self, nominal_rate: float) -> float:
        """How far :attr:`rate` is from `nominal_rate`, in parts per million (positive: faster)."""
        return (self.rate / float(nominal_rate) - 1.0) * 1e6


def _upper_hull(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> list[int]:
    """Indices of the upper convex hull of the points (x sorted ascending), left to right."""
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b lies on or below the chord from a to i: not on the upper hull.
            if (y[b] - y[a]) * (x[i] - x[a]) <= (y[i] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def fit_rate(times: npt.ArrayLike, frames: npt.ArrayLike, method: str = "envelope") -> RateFit:
    """A device's rate in frames per second, from (callback time, frames so far) pairs.

    Parameters
    ----------
    times : array_like of float
        When each callback ran, in seconds of one clock (``time.monotonic()``
        taken at the callback's start), non-decreasing.
    frames : array_like of float
        The device's frame count at each callback's start (frames delivered
        before it), increasing.
    method : {'envelope', 'least-squares'}, optional
        ``'envelope'`` (default): the line that no callback precedes and that
        is closest to all of them on average (the support of the callbacks'
        lower convex hull in time, at their mean frame count), robust to
        late callbacks. ``'least-squares'``: ordinary least squares of the
        frame count on the time.

    Returns
    -------
    RateFit
        The rate, the line and each callback's lateness; ``RateFit.ppm(48000)``
        is the rate's error against a nominal 48 kHz.

    Raises
    ------
    ValueError
        If `times` and `frames` differ in length or are not 1-D, hold fewer
        than 3 pairs, a non-finite value, times that decrease or span no time,
        or frame counts that do not increase; or `method` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from audioring.testing import fit_rate
    >>> frames = np.arange(0, 48000 * 10, 480)
    >>> times = 5.0 + frames / 48009.6 + np.tile([0.0, 0.0003, 0.002, 0.0001], 250)  # late by 0..2 ms
    >>> round(fit_rate(times, frames).rate, 3)
    48009.6
    >>> round(fit_rate(times, frames).ppm(48000), 3)
    200.0
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    t = np.asarray(times, dtype=np.float64)
    f = np.asarray(frames, dtype=np.float64)
    if t.ndim != 1 or f.ndim != 1 or len(t) != len(f):
        raise ValueError(f"times and frames must be 1-D of one length, got shapes {t.shape} and {f.shape}")
    if len(t) < 3:
        raise ValueError(f"times and frames need at least 3 pairs, got {len(t)}")
    if not (np.isfinite(t).all() and np.isfinite(f).all()):
        raise ValueError("times and frames must be finite")
    if np.any(np.diff(t) < 0) or t[-1] <= t[0]:
        raise ValueError("times must be non-decreasing and span more than 0 s")
    if np.any(np.diff(f) <= 0):
        raise ValueError("frames must increase from each pair to the next")
    # Fitted as time against frames: the frame counts are exact, the times
    # carry the delay. Centred for precision (times of a monotonic clock are
    # large numbers; their differences are what matters).
    fc, tc = f - f.mean(), t - t.mean()
    if method == "least-squares":
        seconds_per_frame = float(np.dot(fc, tc) / np.dot(fc, fc))
        intercept = 0.0  # least squares passes through the centroid
    else:
        # The lower envelope of the times is the upper hull of (frames, -time);
        # the line minimizing the summed lateness subject to lateness >= 0
        # touches that hull at the mean frame count (its objective is the
        # line's value there), so it is the hull edge spanning 0 of fc.
        hull = _upper_hull(fc, -tc)
        k = int(np.searchsorted(fc[hull], 0.0, side="right"))
        k = min(max(k, 1), len(hull) - 1)
        a, b = hull[k - 1], hull[k]
        seconds_per_frame = float((tc[b] - tc[a]) / (fc[b] - fc[a]))
        intercept = float(tc[a] - seconds_per_frame * fc[a])
    if not seconds_per_frame > 0:
        raise ValueError("times and frames do not grow together: no positive rate fits them")
    lateness = tc - (intercept + seconds_per_frame * fc)
    rate = 1.0 / seconds_per_frame
    # Frame count 0 at: the line's time at fc = -mean(f), back in the times' clock.
    t0 = float(t.mean() + intercept - seconds_per_frame * f.mean())
    if not math.isfinite(rate):
        raise ValueError("times and frames do not determine a finite rate")
    return RateFit(rate=rate, t0=t0, method=method, points=len(t), span=float(t[-1] - t[0]),
                   lateness=lateness)
