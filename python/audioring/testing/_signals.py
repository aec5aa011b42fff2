"""Known signals and how to recognize them: :func:`tone`, :func:`dominant_frequency`, :func:`alsa_channel_map`.

A test plays a distinct sine per channel and checks, per captured channel,
that its own frequency dominates: channels that were swapped, remixed or
dropped then show up as the wrong frequency.

ALSA channel order
------------------
Without an explicit channel map, PulseAudio remixes multichannel audio
between a stream and a sink whose maps differ. The ALSA ``pulse`` plugin,
through which PortAudio captures, gives its streams the map of
``pa_channel_map_init_extend(..., PA_CHANNEL_MAP_ALSA)``: front-left,
front-right, rear-left, rear-right, front-center, lfe, side-left, side-right
for the channel counts 2, 4, 5, 6 and 8 that ALSA defines, the next smaller
defined count plus ``aux0, aux1, ...`` for other counts, and ``mono`` for one
channel. :class:`~audioring.testing.PulseServer` gives its sink (and its
``pacat`` players) the same map, so channel ``i`` played is channel ``i``
captured for any number of channels (up to PulseAudio's 32).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import numpy.typing as npt

__all__ = ["alsa_channel_map", "dominant_frequency", "tone"]

_ALSA_POSITIONS = (
    "front-left", "front-right", "rear-left", "rear-right",
    "front-center", "lfe", "side-left", "side-right",
)
# Channel counts for which PulseAudio's ALSA channel map is defined; other
# counts take the next smaller one and fill up with aux channels.
_ALSA_MAP_SIZES = (8, 6, 5, 4, 2)


def alsa_channel_map(channels: int) -> list[str]:
    """PulseAudio's channel map in ALSA order for `channels` channels.

    This is what PulseAudio's ``pa_channel_map_init_extend(...,
    PA_CHANNEL_MAP_ALSA)`` gives, which the ALSA ``pulse`` plugin uses for its
    streams: with the same map on the sink, channel ``i`` of a PortAudio
    stream is channel ``i`` of the sink, with no remixing.

    Parameters
    ----------
    channels : int
        Number of channels, 1 to 32 (PulseAudio's limit).

    Returns
    -------
    list of str
        Position names, e.g. ``front-left, front-right, ..., aux0, aux1``.

    Raises
    ------
    ValueError
        If `channels` is outside 1..32.

    Examples
    --------
    >>> from audioring.testing import alsa_channel_map
    >>> alsa_channel_map(3)
    ['front-left', 'front-right', 'aux0']
    """
    if not 1 <= channels <= 32:
        raise ValueError(f"channels must be 1..32, not {channels}")
    if channels == 1:
        return ["mono"]
    base = next(n for n in _ALSA_MAP_SIZES if n <= channels)
    return list(_ALSA_POSITIONS[:base]) + [f"aux{i}" for i in range(channels - base)]


def tone(
    freqs: Union[Sequence[float], npt.NDArray[np.floating]],
    rate: int,
    seconds: float = 1.0,
    amplitude: float = 0.5,
) -> npt.NDArray[np.float32]:
    """Per-channel sines: channel ``i`` is a sine at ``freqs[i]``.

    Parameters
    ----------
    freqs : sequence of float
        One frequency in Hz per channel.
    rate : int
        Sample rate in Hz.
    seconds : float, optional
        Duration. With integer ``freqs[i] * seconds`` (e.g. integer Hz and
        1 s) the signal loops without a phase jump.
    amplitude : float, optional
        Peak amplitude of each channel.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(round(rate * seconds), len(freqs))``.

    Examples
    --------
    >>> from audioring.testing import tone
    >>> tone([1000, 2000], 48000).shape
    (48000, 2)
    """
    n = int(round(rate * seconds))
    t = np.arange(n, dtype=np.float64)[:, None] / rate
    f = np.asarray(freqs, dtype=np.float64)[None, :]
    return (amplitude * np.sin(2 * np.pi * f * t)).astype(np.float32)


def dominant_frequency(samples: npt.ArrayLike, rate: int) -> npt.NDArray[np.float64]:
    """Frequency of the largest spectral peak of each channel.

    Parameters
    ----------
    samples : array_like
        Shape ``(frames,)`` or ``(frames, channels)``.
    rate : int
        Sample rate in Hz.

    Returns
    -------
    numpy.ndarray
        One frequency in Hz per channel (resolution ``rate / frames``).

    Examples
    --------
    >>> from audioring.testing import dominant_frequency, tone
    >>> dominant_frequency(tone([440, 1000], 8000), 8000)
    array([ 440., 1000.])
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x - x.mean(axis=0)
    # A window keeps the leakage of a non-integer number of cycles from
    # hiding the peak.
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))[:, None], axis=0))
    found: npt.NDArray[np.float64] = np.fft.rfftfreq(len(x), 1.0 / rate)[np.argmax(spectrum, axis=0)]
    return found
