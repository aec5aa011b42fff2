"""``python -m audioring.testing play``: a tone per channel, or a sound file, into a running test server.

The server is one that ``python -m audioring.testing pulse|jack`` started:
its state directory (``$AUDIORING_PULSE_DIR`` / ``$AUDIORING_JACK_DIR``, or
``--dir``) holds ``server.json`` with its client variables, rate and
channels. PulseAudio gets the signal through ``pacat`` into the null sink
(a recorder of ``pulse`` or ``default`` hears it on the monitor); JACK
through a client of this process whose output ``i`` is connected to the
``i``-th input port of every client named ``--target...`` (PortAudio's, by
default), also of one that appears later. Playback lasts ``--seconds`` or,
without it, until Ctrl-C (a file: until its end).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ._errors import AudioServerError
from ._packages import require_python_module
from ._process import stop_popen
from ._pulse import PulseServer
from ._signals import alsa_channel_map

__all__ = ["Signal", "ServerState", "find_server", "make_signal", "play"]

#: JACK: how often (seconds) the player looks for new target ports.
_POLL_S = 0.05


@dataclass(frozen=True)
class ServerState:
    """A running test server, as its ``server.json`` describes it."""

    kind: str  # "pulse" or "jack"
    directory: Path
    env: dict[str, str]
    rate: int
    channels: int


@dataclass(frozen=True)
class Signal:
    """What to play: ``samples`` (frames, channels) float32, repeated if ``loop``."""

    samples: npt.NDArray[np.float32]
    loop: bool


def find_server(kind: str, directory: Optional[str]) -> ServerState:
    """The running server of ``kind`` in ``directory`` (default: ``$AUDIORING_PULSE_DIR`` or ``$AUDIORING_JACK_DIR``).

    Raises
    ------
    AudioServerError
        If no directory is given or set, or it holds no running server's state.
    """
    variable = "AUDIORING_PULSE_DIR" if kind == "pulse" else "AUDIORING_JACK_DIR"
    where = directory or os.environ.get(variable)
    if not where:
        raise AudioServerError(f"no {kind} test server: start one with `eval \"$(python -m audioring.testing "
                               f"{kind})\"` (it sets ${variable}) or give --dir")
    state_file = Path(where) / "server.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as error:
        raise AudioServerError(f"no {kind} test server state in {where}: {error}") from None
    if state.get("kind") != kind:
        raise AudioServerError(f"{where} holds a {state.get('kind')} server, not a {kind} one")
    try:
        os.kill(int(state["pid"]), 0)
    except ProcessLookupError:
        raise AudioServerError(f"the {kind} test server of {where} (pid {state['pid']}) is not running") from None
    return ServerState(kind, Path(where), dict(state["env"]), int(state["rate"]), int(state["channels"]))


def make_signal(server: ServerState, freqs: Optional[list[float]], amplitude: float,
                file: Optional[str]) -> Signal:
    """A tone per channel (``freqs``: one for every channel, or one per channel) or ``file``'s samples.

    A file must have the server's rate; a mono file plays on every channel,
    any other must have the server's channel count.

    Raises
    ------
    ValueError
        Naming the argument: a frequency not in (0, rate / 2), a count of
        frequencies that is neither 1 nor the server's channels, a file of
        another rate or channel count, an empty or unreadable file.
    AudioServerUnavailable
        For a file, if the soundfile package is not installed.
    """
    rate, channels = server.rate, server.channels
    if file is not None:
        require_python_module("soundfile", "soundfile", "testing")
        import soundfile

        try:
            data, file_rate = soundfile.read(file, dtype="float32", always_2d=True)
        except (soundfile.SoundFileError, OSError) as error:
            raise ValueError(f"--file: cannot read {file}: {error}") from None
        if file_rate != rate:
            raise ValueError(f"--file: {file} is at {file_rate} Hz; the {server.kind} server runs at {rate} Hz")
        if data.shape[1] == 1:
            data = np.repeat(data, channels, axis=1)
        if data.shape[1] != channels or len(data) == 0:
            raise ValueError(f"--file: {file} has {data.shape[1]} channels and {len(data)} frames; the "
                             f"{server.kind} server takes 1 or {channels} channels and at least one frame")
        return Signal(np.ascontiguousarray(data * amplitude, dtype=np.float32), loop=False)
    hz = freqs or [1000.0]
    if len(hz) not in (1, channels):
        raise ValueError(f"--freqs: give 1 or {channels} frequencies (the server's channels), got {len(hz)}")
    bad = [f for f in hz if not 0 < f < rate / 2]
    if bad:
        raise ValueError(f"--freqs: each frequency must be in (0, {rate / 2:g}) Hz (half the rate), got {bad[0]:g}")
    per_channel = np.array(hz * channels if len(hz) == 1 else hz, dtype=np.float64)
    # One second: integer Hz loop without a phase jump (other frequencies jump once a second).
    n = np.arange(rate, dtype=np.float64)
    samples = amplitude * np.sin(2 * np.pi * per_channel[None, :] * n[:, None] / rate)
    return Signal(samples.astype(np.float32), loop=True)


def _frames_to_play(sig: Signal, seconds: Optional[float], rate: int) -> Optional[int]:
    """Frames in all: ``seconds``' worth, or the file once; None: until interrupted."""
    if seconds is not None:
        return round(seconds * rate)
    return None if sig.loop else len(sig.samples)


def _chunks(sig: Signal, total: Optional[int], size: int) -> Any:
    """Consecutive blocks of at most ``size`` frames of the signal, ``total`` frames in all (None: forever)."""
    position = played = 0
    data = sig.samples
    while total is None or played < total:
        want = size if total is None else min(size, total - played)
        block = data[position:position + want]
        if len(block) == 0:
            if not sig.loop:  # --seconds longer than the file: silence after its end
                block = np.zeros((want, data.shape[1]), np.float32)
            else:
                position = 0
                continue
        yield block
        played += len(block)
        position += len(block)
        if sig.loop and position >= len(data):
            position = 0


def _play_pulse(server: ServerState, sig: Signal, total: Optional[int]) -> None:
    """Feed ``pacat`` (playback into the null sink) from this process; pacat's pipe paces the writes."""
    pacat = ["pacat", "--playback", "--raw", f"--rate={server.rate}", f"--channels={server.channels}",
             f"--channel-map={','.join(alsa_channel_map(server.channels))}", "--format=float32le",
             f"--device={PulseServer.sink}", "--latency-msec=50", "--client-name=audioring-play"]
    proc = subprocess.Popen(pacat, env={**os.environ, **server.env}, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for block in _chunks(sig, total, server.rate // 20):
            proc.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        proc.stdin.close()  # pacat plays what it has, then exits
        proc.wait()
    except BrokenPipeError:
        pass  # pacat exited: its status and message below
    finally:
        stop_popen(proc)
    if proc.returncode not in (0, -signal.SIGTERM):
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise AudioServerError(f"pacat exited with {proc.returncode}: {err}")


def _port_order(name: str) -> list[Any]:
    """Numeric order of port names: in_2 before in_10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _play_jack(server: ServerState, sig: Signal, total: Optional[int], target: str) -> None:
    """A JACK client plays the signal from its process callback and connects to ``target...`` clients' inputs."""
    require_python_module("jack", "JACK-Client", "testing")
    import jack  # JACK-Client

    name = server.env["JACK_DEFAULT_SERVER"]
    client = jack.Client("audioring-play", servername=name, no_start_server=True)
    data = sig.samples
    if client.samplerate != server.rate:
        raise AudioServerError(f"jackd {name!r} runs at {client.samplerate} Hz, its state says {server.rate}")
    outs = [client.outports.register(f"out_{i + 1}") for i in range(data.shape[1])]
    played = [0]  # frames played; only the process callback writes it

    def process(frames: int) -> None:
        # Only copies (a Python callback has little time): indices wrap around the looped signal.
        start = played[0]
        count = frames if total is None else max(0, min(frames, total - start))
        if sig.loop:
            index = (start + np.arange(count)) % len(data)
            block = data[index]
        else:
            block = data[start:start + count]
        for i, port in enumerate(outs):
            out = port.get_array()
            out[:len(block)] = block[:, i]
            out[len(block):] = 0
        played[0] = start + frames

    client.set_process_callback(process)
    client.activate()
    own = {p.name for p in outs}
    done: set[tuple[str, str]] = set()
    try:
        while total is None or played[0] < total:
            by_client: dict[str, list[str]] = {}
            for p in client.get_ports(is_audio=True, is_input=True):
                owner = p.name.split(":", 1)[0]
                if owner.startswith(target) and p.name not in own:
                    by_client.setdefault(owner, []).append(p.name)
            for names in by_client.values():
                for src, dst in zip(outs, sorted(names, key=_port_order)):
                    if (src.name, dst) not in done:
                        try:
                            client.connect(src, dst)
                        except jack.JackError:
                            continue  # the port went away meanwhile
                        done.add((src.name, dst))
                        print(f"# connected {src.name} -> {dst}", file=sys.stderr, flush=True)
            time.sleep(_POLL_S)
    finally:
        client.deactivate()
        client.close()


def play(kind: str, *, directory: Optional[str] = None, freqs: Optional[list[float]] = None,
         amplitude: float = 0.5, file: Optional[str] = None, seconds: Optional[float] = None,
         target: str = "PortAudio") -> None:
    """Play a tone per channel or ``file`` into the running ``kind`` test server (see the module's text).

    Raises
    ------
    ValueError
        For a bad argument, naming it and the allowed range.
    AudioServerError
        If the server is not running, or its player fails.
    """
    if not 0 < amplitude <= 1:
        raise ValueError(f"--amplitude must be in (0, 1], got {amplitude}")
    if seconds is not None and not 0 < seconds < float("inf"):
        raise ValueError(f"--seconds must be a number of seconds > 0, got {seconds}")
    server = find_server(kind, directory)
    sig = make_signal(server, freqs, amplitude, file)
    total = _frames_to_play(sig, seconds, server.rate)
    what = f"{file}" if file is not None else "tone " + ",".join(f"{f:g}" for f in (freqs or [1000.0])) + " Hz"
    length = "until Ctrl-C" if total is None else f"{total / server.rate:g} s"
    print(f"# playing {what} into the {kind} server of {server.directory}, {length}", file=sys.stderr, flush=True)
    if kind == "pulse":
        _play_pulse(server, sig, total)
    else:
        _play_jack(server, sig, total, target)
