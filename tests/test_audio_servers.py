"""The audio-server test infrastructure works, checked with sounddevice only.

Each test plays known tones through a real server, captures them through
PortAudio, and checks per channel that the right tone arrived (and the other
tones did not, which would mean remixed or misrouted channels).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import sounddevice as sd

from audioring.testing import dominant_frequency, tone

pytestmark = pytest.mark.audio_server


def _device(name: str, hostapi: str) -> int:
    """Index of the PortAudio device called `name` in host API `hostapi`."""
    apis = sd.query_hostapis()
    for i, dev in enumerate(sd.query_devices()):
        if dev["name"] == name and hostapi in apis[dev["hostapi"]]["name"]:
            return i
    pytest.fail(f"no {hostapi} device {name!r} in:\n{sd.query_devices()}")


def _capture(stream_args: dict, seconds: float, settle: float = 0.1,
             ready=None, timeout: float = 10.0) -> np.ndarray:
    """Record `seconds` with a callback InputStream, after `settle` seconds.

    `ready` is called once the stream runs (e.g. to wait for connections);
    frames before it returns and the following `settle` seconds are dropped.
    Never blocks for more than `timeout`.
    """
    rate = stream_args["samplerate"]
    blocks: list[np.ndarray] = []
    enough = threading.Event()
    want = int(round((settle + seconds) * rate))
    count = [0, False]  # frames kept, keeping?

    def callback(indata, frames, time_info, status):
        if count[1]:
            blocks.append(indata.copy())
            count[0] += frames
            if count[0] >= want:
                enough.set()

    with sd.InputStream(dtype="float32", callback=callback, **stream_args):
        if ready is not None:
            ready()
        count[1] = True
        t0 = time.monotonic()
        if not enough.wait(timeout):
            pytest.fail(f"captured {count[0]} of {want} frames in {timeout} s")
        elapsed = time.monotonic() - t0
    x = np.concatenate(blocks)
    # Delivery may come in bursts, but not much slower than real time.
    assert elapsed < 3 * (settle + seconds) + 1.0, f"{want} frames took {elapsed:.2f} s"
    return x[-int(round(seconds * rate)):]


def _tone_levels(x: np.ndarray, rate: int, freqs) -> np.ndarray:
    """Amplitude of each of `freqs` in each channel: shape (channels, len(freqs))."""
    t = np.arange(len(x)) / rate
    basis = np.exp(-2j * np.pi * np.outer(t, freqs))  # (frames, freqs)
    return 2 * np.abs(x.astype(np.float64).T @ basis) / len(x)


def _assert_tones_in_order(x: np.ndarray, rate: int, freqs, segments: int = 5) -> None:
    """Channel i carries freqs[i] (dominant, at full level) and no other tone.

    Levels are the median over `segments` pieces, so that one glitch (a
    period lost when the Python callback is late on a loaded machine) does
    not fail the check; each piece must hold whole cycles of every tone.
    """
    found = dominant_frequency(x, rate)
    # Tones are >= 500 Hz apart; a glitch may move the peak by a bin or two.
    assert np.allclose(found, freqs, atol=20), f"dominant {found}, want {freqs}"
    pieces = np.array_split(x, segments)
    levels = np.median([_tone_levels(p, rate, freqs) for p in pieces], axis=0)
    own = np.diag(levels)
    assert np.all(own > 0.3), f"tone levels {own.round(3)} (played at 0.5)"
    crosstalk = levels - np.diag(own)
    assert crosstalk.max() < 0.02 * own.min(), f"other tones leak in:\n{levels.round(3)}"


def test_pulse_default_device_captures_1khz_on_both_channels(pulse_server):
    rate = 48000
    with pulse_server.play(tone([1000, 1000], rate)):
        x = _capture({"device": _device("pulse", "ALSA"), "channels": 2,
                      "samplerate": rate}, seconds=0.3)
    assert np.allclose(dominant_frequency(x, rate), 1000, atol=20)
    assert np.all(np.abs(x).max(axis=0) > 0.3)


def test_pulse_8_channels_96khz_arrive_per_channel_in_order(pulse_server_factory):
    rate, channels = 96000, 8
    server = pulse_server_factory(rate, channels)
    freqs = [1000 * (k + 1) for k in range(channels)]
    with server.play(tone(freqs, rate)):
        x = _capture({"device": _device("pulse", "ALSA"), "channels": channels,
                      "samplerate": rate}, seconds=0.5)
    _assert_tones_in_order(x, rate, freqs)


def test_jack_192khz_32_channels_injected_tones_arrive_in_order(jack_server_factory):
    rate, channels = 192000, 32
    # A period of 1024 frames (5.3 ms) leaves the Python callbacks of this
    # test and of the tone generator time enough on 2 cores.
    server = jack_server_factory(rate, 1024, channels)
    freqs = [1000 + 500 * k for k in range(channels)]
    with server.inject_tones(freqs) as injector:
        x = _capture({"device": _device("system", "JACK"), "channels": channels,
                      "samplerate": rate}, seconds=0.5,
                     ready=lambda: injector.wait_connected(channels, timeout=10))
    _assert_tones_in_order(x, rate, freqs)
