"""Measuring clock drift: a device's rate from its callbacks' times; a recorded tone's frequency, phase and SNR.

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

What arrived is measured from a tone of known frequency in each device's
clock (:func:`analyze_tone`): its phase window by window gives the residual
frequency error (the phase's slope), the phase wander (its deviation from a
straight line) and the SNR (what a sine fitted per window leaves). Two
channels' phases, in samples, give their alignment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["RateFit", "ToneAnalysis", "analyze_tone", "fit_rate"]

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


@dataclass(frozen=True)
class ToneAnalysis:
    """A recorded tone of known nominal frequency, measured window by window (:func:`analyze_tone`).

    Attributes
    ----------
    nominal : float
        The nominal frequency in Hz (cycles per second of the recording's
        sample clock: `rate` samples).
    rate : float
        The recording's sampling rate in Hz.
    window : int
        Samples per analysis window.
    frequency : float
        The tone's measured frequency in Hz of the recording's clock.
    ppm : float
        ``frequency / nominal - 1`` in parts per million: the residual
        frequency error, the slope of the tone's phase.
    amplitude : float
        The tone's peak amplitude (median over windows).
    snr_db : float
        Tone power over the power of everything else (the residuals of a
        sine fitted per window at the measured frequency, DC removed), in dB.
    wander : float
        The largest deviation of the tone's phase from its best straight
        line, in samples (>= 0).
    wander_pp : float
        Peak-to-peak of that deviation, in samples.
    times : numpy.ndarray
        Each window's centre, in seconds from the recording's first sample.
    phase : numpy.ndarray
        The tone's phase at each window's centre against a tone at exactly
        `nominal` Hz that starts at phase 0 with the recording, in samples
        (the phase in radians over ``2 * pi * nominal / rate``), unwrapped: a
        tone ahead of the nominal one is positive, a fast tone's phase rises.
        Differences of two channels' phases are their alignment.
    deviation : numpy.ndarray
        `phase` minus its best straight line, in samples.
    """

    nominal: float
    rate: float
    window: int
    frequency: float
    ppm: float
    amplitude: float
    snr_db: float
    wander: float
    wander_pp: float
    times: npt.NDArray[np.float64]
    phase: npt.NDArray[np.float64]
    deviation: npt.NDArray[np.float64]


def _window_fits(x: npt.NDArray[np.float64], omega: float, window: int
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
                            npt.NDArray[np.float64]]:
    """Per window: least-squares ``a cos(omega n) + b sin(omega n) + c`` with n counted from the recording's start.

    Returns, per window: the tone's phase against ``cos(omega n)`` (radians,
    wrapped), its amplitude, the residual power, and the window's centre (samples).
    """
    count = len(x) // window
    blocks = x[:count * window].reshape(count, window)
    m = np.arange(window, dtype=np.float64)
    basis = np.stack([np.cos(omega * m), np.sin(omega * m), np.ones(window)], axis=1)
    coefficients = blocks @ np.linalg.pinv(basis).T  # (count, 3), one solve for all windows
    residual = blocks - coefficients @ basis.T
    starts = np.arange(count, dtype=np.float64) * window
    # a cos(wm) + b sin(wm) = A cos(wm + psi), psi = atan2(-b, a), with m counted from the
    # window's start; from the recording's start (n = start + m) the phase is psi - w start.
    psi = np.arctan2(-coefficients[:, 1], coefficients[:, 0])
    amplitude = np.hypot(coefficients[:, 0], coefficients[:, 1])
    return psi - omega * starts, amplitude, np.mean(residual ** 2, axis=1), starts + (window - 1) / 2


def analyze_tone(samples: npt.ArrayLike, rate: float, frequency: float, window: float = 0.1) -> ToneAnalysis:
    """Measure a recorded sine of known nominal frequency: frequency error, phase wander, SNR.

    The tone's phase is followed window by window (a sine, a cosine and a
    constant fitted by least squares in each window, which is complex
    demodulation with a boxcar low-pass and no leakage from DC), unwrapped,
    and a straight line is fitted to it: its slope is the residual frequency
    error in ppm, the largest deviation from it the phase wander. The fits
    are then repeated at the measured frequency, so that a tone a few hundred
    ppm off does not leak into the residual that gives the SNR.

    Parameters
    ----------
    samples : array_like of float, 1-D
        One channel of a recording.
    rate : float
        Its sampling rate in Hz.
    frequency : float
        The tone's nominal frequency in Hz, in (0, rate / 2).
    window : float, optional
        Seconds per window (default 0.1): longer averages noise, shorter
        follows faster phase changes. At least 3 windows must fit.

    Returns
    -------
    ToneAnalysis

    Raises
    ------
    ValueError
        If `samples` is not 1-D and finite, `rate` is not positive, `frequency`
        is not within (0, rate / 2), a window holds fewer than 4 samples or
        fewer than 3 windows fit, or no tone is found (zero amplitude).

    Examples
    --------
    >>> import numpy as np
    >>> from audioring.testing import analyze_tone
    >>> n = np.arange(48000 * 20)
    >>> x = 0.5 * np.sin(2 * np.pi * 1000 * (1 + 3e-6) * n / 48000)   # 3 ppm fast
    >>> a = analyze_tone(x, 48000, 1000)
    >>> round(a.ppm, 3), a.wander < 1e-3, a.snr_db > 120
    (3.0, True, True)
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError(f"samples must be one finite channel (1-D), got shape {x.shape}")
    rate = float(rate)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of Hz, got {rate!r}")
    nominal = float(frequency)
    if not (math.isfinite(nominal) and 0 < nominal < rate / 2):
        raise ValueError(f"frequency must be within (0, rate / 2) = (0, {rate / 2:g}) Hz, got {frequency!r}")
    length = int(round(float(window) * rate)) if math.isfinite(float(window)) else 0
    if length < 4 or len(x) // length < 3:
        raise ValueError(f"window must hold at least 4 samples and fit at least 3 times into the "
                         f"{len(x)} samples, got {window!r} s ({length} samples)")
    omega = 2 * np.pi * nominal / rate
    # Pass 1, at the nominal frequency: the slope of the phase is the frequency error.
    phase, amplitude, _, centre = _window_fits(x, omega, length)
    if not np.median(amplitude) > 0:
        raise ValueError("no tone found in samples: its amplitude is 0")
    phase = np.unwrap(phase)
    slope = np.polyfit(centre, phase, 1)[0]  # radians per sample
    # Pass 2, at the measured frequency: residuals free of the within-window phase ramp.
    measured = omega + slope
    phase2, amplitude2, noise, _ = _window_fits(x, measured, length)
    phase2 = np.unwrap(phase2) + (measured - omega) * centre  # back against the nominal tone
    # Unwrapping pass 2 alone could differ from pass 1 by whole turns per window: take
    # pass 1's turns.
    phase2 += 2 * np.pi * np.round((phase - phase2) / (2 * np.pi))
    line = np.polyfit(centre, phase2, 1)
    samples_per_radian = 1.0 / omega
    deviation = (phase2 - np.polyval(line, centre)) * samples_per_radian
    signal = float(np.sum(amplitude2 ** 2 / 2))
    noise_power = float(np.sum(noise))
    snr_db = math.inf if noise_power == 0 else 10 * math.log10(signal / noise_power)
    ppm = float(line[0] / omega * 1e6)
    return ToneAnalysis(
        nominal=nominal, rate=rate, window=length, frequency=nominal * (1 + ppm * 1e-6), ppm=ppm,
        amplitude=float(np.median(amplitude2)), snr_db=snr_db, wander=float(np.max(np.abs(deviation))),
        wander_pp=float(np.ptp(deviation)), times=centre / rate, phase=phase2 * samples_per_radian,
        deviation=deviation)
