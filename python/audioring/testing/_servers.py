"""Real audio servers for tests on machines without a sound card.

The project tests its real PortAudio path (not only the built-in virtual
device), so CI and developers need audio devices. This module starts private
audio servers whose devices PortAudio sees, and feeds them known signals:

* :class:`PulseServer`: a PulseAudio daemon with a null sink. PortAudio's ALSA
  host API shows it as the devices ``pulse`` and ``default``; whatever is
  played into the sink (:meth:`PulseServer.play`) is captured from its monitor,
  which is the default source.
* :class:`JackServer`: a ``jackd`` with the dummy driver. PortAudio's JACK host
  API shows it as the device ``system``, whose capture ports are silent;
  :meth:`JackServer.inject_tones` connects a tone generator to the recorder's
  input ports.

Signals always come from a separate process (``pacat``, or a small JACK
client running this file), so a test that holds the GIL, or stalls on
purpose, cannot disturb playback.

PortAudio re-scan
-----------------
PortAudio scans devices once, in ``Pa_Initialize``, and ``sounddevice`` calls
that at import. Devices of a server started later stay invisible, and a JACK
server is chosen (``JACK_DEFAULT_SERVER``) only then. Call
:func:`refresh_portaudio` after starting or stopping a server (the pytest
fixtures do), and only while no stream is open: ``Pa_Terminate`` closes every
open stream.

PortAudio's JACK names (found with jackd2 1.9.21, libportaudio2 19.6.0)
------------------------------------------------------------------------
* Each ``Pa_Initialize`` opens one JACK client named ``PortAudio`` (JACK makes
  it ``PortAudio-01`` etc. if that name is taken), shared by all streams of
  that initialization.
* An input stream registers ports ``PortAudio:in_<k>``. ``k`` counts from 0
  and keeps counting across streams of the same initialization: a first
  4-channel stream gets ``in_0..in_3``, the next stream ``in_4...``. Ports are
  unregistered when the stream closes. Output ports are ``out_<k>``.
* When the stream starts, PortAudio connects ``system:capture_<i+1>`` to its
  i-th input port (JACK port numbers count from 1); nothing else connects.
* So "channel i of the recorder" is the i-th input port of the client in
  numeric order, which is what :meth:`JackServer.inject_tones` connects to.

Pitfalls (see also DESIGN.md, "Real audio without a sound card")
------------------------------------------------------------------
* An idle null sink runs in 2-second blocks: the first capture then comes
  about 2 s late and in bursts. A second null sink fed by ``module-loopback``
  from the monitor keeps the first one running; :meth:`PulseServer.start` also
  waits until the monitor really delivers data.
* Without an explicit channel map, PulseAudio remixes multichannel audio. The
  sink uses the map the ALSA ``pulse`` plugin uses (:func:`alsa_channel_map`),
  and ``pacat`` is given the same map.
* ``jackd`` must have exited before another one starts, and a JACK client must
  never start a server by itself: ``JACK_NO_START_SERVER=1`` is exported at
  import of this module (PortAudio never autostarts; jack tools would).
* PortAudio's ``Pa_Terminate`` aborts the process (assertion in ``pa_jack.c``)
  if the JACK server of its client has gone away: terminate PortAudio before
  jackd stops. :meth:`JackServer.stop` does that if ``sounddevice`` is loaded.
* A daemon reparented to PID 1 is a zombie for a moment after it exits: a
  zombie counts as exited here.

Shell use: ``python -m audioring.testing --help``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

__all__ = [
    "AudioServerError",
    "JackServer",
    "PulseServer",
    "alsa_channel_map",
    "dominant_frequency",
    "refresh_portaudio",
    "tone",
]

# Without it, JACK clients such as jack_lsp or JACK-Client try to start a
# server of their own (which may hang or grab a real device). PortAudio itself
# opens its client with JackNoStartServer.
os.environ["JACK_NO_START_SERVER"] = "1"

_ALSA_POSITIONS = (
    "front-left", "front-right", "rear-left", "rear-right",
    "front-center", "lfe", "side-left", "side-right",
)
# Channel counts for which PulseAudio's ALSA channel map is defined; other
# counts take the next smaller one and fill up with aux channels.
_ALSA_MAP_SIZES = (8, 6, 5, 4, 2)


class AudioServerError(RuntimeError):
    """An audio server could not be installed, started or used."""


# --------------------------------------------------------------------------
# Helpers


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
    """
    if not 1 <= channels <= 32:
        raise ValueError(f"channels must be 1..32, not {channels}")
    if channels == 1:
        return ["mono"]
    base = next(n for n in _ALSA_MAP_SIZES if n <= channels)
    return list(_ALSA_POSITIONS[:base]) + [f"aux{i}" for i in range(channels - base)]


def tone(freqs, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
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
    """
    n = int(round(rate * seconds))
    t = np.arange(n, dtype=np.float64)[:, None] / rate
    f = np.asarray(freqs, dtype=np.float64)[None, :]
    return (amplitude * np.sin(2 * np.pi * f * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> np.ndarray:
    """Frequency of the largest spectral peak of each channel.

    Parameters
    ----------
    samples : numpy.ndarray
        Shape ``(frames,)`` or ``(frames, channels)``.
    rate : int
        Sample rate in Hz.

    Returns
    -------
    numpy.ndarray
        One frequency in Hz per channel (resolution ``rate / frames``).
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x - x.mean(axis=0)
    # A window keeps the leakage of a non-integer number of cycles from
    # hiding the peak.
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))[:, None], axis=0))
    return np.fft.rfftfreq(len(x), 1.0 / rate)[np.argmax(spectrum, axis=0)]


def refresh_portaudio() -> None:
    """Make PortAudio re-scan devices and servers.

    ``sounddevice`` initializes PortAudio once, at import; PortAudio lists the
    ALSA ``pulse``/``default`` devices and connects to a JACK server only
    then. This terminates and re-initializes PortAudio so that servers
    started (or stopped) since are seen. Every open stream is closed by it:
    call it only while no stream is open.
    """
    import sounddevice as sd

    # Private API, stable since sounddevice 0.3: the public module has no
    # way to re-scan.
    sd._terminate()
    sd._initialize()


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _apt_install(binary: str, packages: list[str]) -> None:
    """Install `packages` with apt-get if `binary` is missing and we are root."""
    if shutil.which(binary):
        return
    detail = "" if _is_root() else " (not root, so not installed automatically)"
    if _is_root() and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", *packages]
        # A fresh machine may have no package lists yet: update once if needed.
        for update_first in (False, True):
            if update_first:
                subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=600, check=False)
            r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, timeout=900, check=False)
            if r.returncode == 0:
                break
        detail = f" (apt-get install: exit {r.returncode}; {r.stderr.strip()[-500:]})"
    if not shutil.which(binary):
        raise AudioServerError(
            f"{binary!r} not found; install the Debian packages {' '.join(packages)}{detail}")


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not reaped yet) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The state follows the parenthesized command name.
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _pid_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _kill_pid(pid: int, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM `pid`, then SIGKILL after `timeout`; wait until it has exited.

    `marker` must occur in its command line, so that a recycled pid is never
    signalled.
    """
    if not _pid_alive(pid) or not any(marker in a for a in _pid_cmdline(pid)):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.02)
    raise AudioServerError(f"process {pid} ({marker}) did not exit")


def _stop_popen(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """Terminate and reap a child (kill it if it does not exit in time)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _no_jackd_running() -> bool:
    """True if no jackd process exists on this machine (zombies count as running)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "jackd":
                    return False
            except OSError:
                continue
    return True


def _private_dir(prefix: str) -> Path:
    # Unix socket paths are limited to 108 bytes: stay in a short directory.
    base = tempfile.gettempdir()
    if len(base) > 60 and os.path.isdir("/tmp"):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


# Servers started by this process, stopped at exit if a test run is aborted.
_LIVE: set = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # best effort at interpreter exit
            pass


class _EnvMixin:
    """What the servers share: exporting their client variables into ``os.environ``, and cleaning up."""

    env: dict[str, str]
    _saved_env: dict[str, str | None] | None = None

    def activate(self) -> None:
        """Export :attr:`env` into ``os.environ`` (remembering earlier values).

        Clients started from this process then use this server. PortAudio
        reads the variables when it initializes: call :func:`refresh_portaudio`
        afterwards.
        """
        if self._saved_env is None:
            self._saved_env = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def _forget(self) -> None:
        """After the process is gone: restore the environment, drop the private directory."""
        self._restore_env()
        _LIVE.discard(self)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _restore_env(self) -> None:
        saved, self._saved_env = self._saved_env, None
        if not saved:
            return
        # Restore only if this server is still the active one; another server
        # activated since owns the variables now.
        if all(os.environ.get(k) == v for k, v in self.env.items()):
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# PulseAudio


class PulseServer(_EnvMixin):
    """A private PulseAudio daemon with a null sink whose monitor is the default source.

    Parameters
    ----------
    rate : int, optional
        Sample rate of the sink (PulseAudio accepts up to 384000).
    channels : int, optional
        Channels of the sink, 1..32, in ALSA order (:func:`alsa_channel_map`).
    timeout : float, optional
        Seconds to wait for the daemon to come up and deliver data.

    Attributes
    ----------
    sink : str
        Name of the sink to play into; its monitor ``sink + ".monitor"`` is
        the default source, which PortAudio's ALSA ``pulse`` and ``default``
        devices capture from.
    env : dict of str
        Variables a client needs (``PULSE_SERVER``, ...): exported into
        ``os.environ`` by :meth:`start`; pass ``{**os.environ, **env}`` to
        subprocesses otherwise.
    directory : pathlib.Path or None
        Private runtime directory (socket, logs, state) while running.

    Examples
    --------
    >>> with PulseServer(48000, 2) as server:      # doctest: +SKIP
    ...     refresh_portaudio()
    ...     with server.play(tone([1000, 1000], 48000)):
    ...         x = sounddevice.rec(4800, 48000, 2, device="pulse", blocking=True)
    """

    sink = "audioring"
    _keepalive_sink = "audioring_keepalive"

    def __init__(self, rate: int = 48000, channels: int = 2, timeout: float = 20.0):
        self.rate = int(rate)
        self.channels = int(channels)
        self.channel_map = alsa_channel_map(self.channels)
        self.timeout = timeout
        self.directory: Path | None = None
        self.pid: int | None = None
        self.env: dict[str, str] = {}
        self._players: list[Player] = []

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"PulseServer(rate={self.rate}, channels={self.channels}; {state})"

    @property
    def running(self) -> bool:
        return self.pid is not None and _pid_alive(self.pid)

    @property
    def socket(self) -> Path:
        return self.directory / "native"

    def _spec_args(self) -> list[str]:
        return [f"--rate={self.rate}", f"--channels={self.channels}",
                f"--channel-map={','.join(self.channel_map)}", "--format=float32le"]

    def start(self) -> "PulseServer":
        """Install PulseAudio if needed (root only), start the daemon, wait for data.

        Returns
        -------
        PulseServer
            self, running, with :attr:`env` exported into ``os.environ``.

        Raises
        ------
        AudioServerError
            If PulseAudio is missing or does not come up within the timeout.
        """
        if self.running:
            return self
        _apt_install("pulseaudio", ["pulseaudio", "pulseaudio-utils", "libasound2-plugins"])
        _apt_install("parec", ["pulseaudio-utils"])
        self.directory = d = _private_dir("audioring-pulse-")
        try:
            self._launch(d)
            _LIVE.add(self)
            self.activate()
            self._wait_for_data()
            (d / "server.json").write_text(json.dumps(
                {"kind": "pulse", "pid": self.pid, "env": self.env,
                 "rate": self.rate, "channels": self.channels}))
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, d: Path) -> None:
        spec = (f"rate={self.rate} channels={self.channels} format=float32le "
                f"channel_map={','.join(self.channel_map)}")
        (d / "default.pa").write_text("\n".join([
            f"load-module module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            f"load-module module-null-sink sink_name={self.sink} {spec}",
            # An idle null sink renders in 2-second blocks (captures come late
            # and in bursts); a loopback from its monitor keeps it running.
            f"load-module module-null-sink sink_name={self._keepalive_sink} {spec}",
            f"load-module module-loopback source={self.sink}.monitor "
            f"sink={self._keepalive_sink} latency_msec=10",
            # Without this the first data still comes ~2 s after start (the
            # sink's first 2 s block); a suspend/resume restarts its clock.
            f"suspend-sink {self.sink} 1",
            f"suspend-sink {self.sink} 0",
            f"set-default-sink {self.sink}",
            f"set-default-source {self.sink}.monitor",
            "",
        ]))
        (d / "client.conf").write_text("autospawn = no\n")
        for sub in ("home", "runtime", "state", "config"):
            (d / sub).mkdir(mode=0o700)
        # Every path the daemon uses points into the private directory, so it
        # never meets (or replaces) another PulseAudio: pid file, cookie,
        # state. No D-Bus or display: it must not register on a session bus.
        daemon_env = {k: v for k, v in os.environ.items()
                      if not k.startswith(("PULSE_", "DBUS_", "XDG_"))
                      and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        daemon_env.update(
            HOME=str(d / "home"), XDG_RUNTIME_DIR=str(d / "runtime"),
            XDG_CONFIG_HOME=str(d / "config"), XDG_STATE_HOME=str(d / "state"),
            XDG_CACHE_HOME=str(d / "state"),
            PULSE_RUNTIME_PATH=str(d / "runtime"), PULSE_STATE_PATH=str(d / "state"),
            PULSE_CONFIG_PATH=str(d / "config"),
        )
        cmd = ["pulseaudio", "--daemonize=yes", "--system=false", "--exit-idle-time=-1",
               "--disallow-exit=yes", "--disable-shm=yes", "--realtime=no",
               "--high-priority=no", "-n", "-F", str(d / "default.pa"),
               f"--log-target=file:{d / 'pulse.log'}"]
        with open(d / "launch.log", "wb") as log:
            # The launcher returns once the daemon has loaded the script.
            r = subprocess.run(cmd, env=daemon_env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT,
                               timeout=self.timeout, check=False)
        pid_file = d / "runtime" / "pid"
        if r.returncode != 0 or not pid_file.exists():
            raise AudioServerError(
                f"pulseaudio failed (exit {r.returncode}):\n"
                f"{_tail(d / 'launch.log')}{_tail(d / 'pulse.log')}")
        self.pid = int(pid_file.read_text().split()[0])
        self.env = {"PULSE_SERVER": f"unix:{self.socket}",
                    "PULSE_CLIENTCONFIG": str(d / "client.conf"),
                    "AUDIORING_PULSE_DIR": str(d)}

    def _wait_for_data(self) -> None:
        # Ready means: short reads from the monitor come back promptly
        # (not in 2-second bursts), several times in a row.
        deadline = time.monotonic() + self.timeout
        prompt = 0
        while prompt < 3:
            if not self.running:
                raise AudioServerError(f"pulseaudio exited:\n{_tail(self.directory / 'pulse.log')}")
            if time.monotonic() > deadline:
                raise AudioServerError(
                    f"PulseAudio monitor delivered no data within {self.timeout} s")
            t0 = time.monotonic()
            try:
                self.record(0.02, timeout=max(0.1, deadline - t0))
            except AudioServerError:
                prompt = 0
                continue
            prompt = prompt + 1 if time.monotonic() - t0 < 0.5 else 0

    def record(self, seconds: float, timeout: float = 5.0, source: str | None = None) -> np.ndarray:
        """Capture from the monitor with ``parec`` (no PortAudio involved).

        Parameters
        ----------
        seconds : float
            Duration to capture.
        timeout : float, optional
            Give up after this many seconds.
        source : str, optional
            Source name; the sink's monitor by default.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(frames, channels)``.
        """
        frames = max(1, int(round(seconds * self.rate)))
        nbytes = frames * self.channels * 4
        cmd = ["parec", "--raw", *self._spec_args(), "--latency-msec=10",
               f"--device={source or self.sink + '.monitor'}"]
        proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        data = bytearray()
        deadline = time.monotonic() + timeout
        try:
            fd = proc.stdout.fileno()
            while len(data) < nbytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AudioServerError(f"parec: no data within {timeout} s")
                if select.select([fd], [], [], left)[0]:
                    chunk = os.read(fd, nbytes - len(data))
                    if not chunk:
                        raise AudioServerError(f"parec exited with {proc.wait()}")
                    data += chunk
        finally:
            _stop_popen(proc)
        return np.frombuffer(bytes(data), dtype="<f4").reshape(frames, self.channels)

    def play(self, samples: np.ndarray, loop: bool = True, wait: bool = True,
             timeout: float = 10.0) -> "Player":
        """Play `samples` into the sink from separate processes (``pacat``).

        Parameters
        ----------
        samples : numpy.ndarray
            Shape ``(frames, channels)`` with ``channels == self.channels``;
            converted to float32.
        loop : bool, optional
            Repeat until stopped (see :func:`tone` for seamless loops).
        wait : bool, optional
            Return only once the signal is audible on the monitor.
        timeout : float, optional
            Seconds to wait for that.

        Returns
        -------
        Player
            Handle with ``stop()``; also a context manager.
        """
        samples = np.asarray(samples, dtype="<f4")
        if samples.ndim != 2 or samples.shape[1] != self.channels or len(samples) == 0:
            raise ValueError(f"samples must have shape (frames > 0, {self.channels}), "
                             f"not {samples.shape}")
        if not self.running:
            raise AudioServerError("PulseAudio server is not running")
        path = Path(tempfile.mkstemp(suffix=".f32", dir=self.directory)[1])
        path.write_bytes(np.ascontiguousarray(samples).tobytes())
        player = Player(self, path, loop)
        self._players.append(player)
        if wait:
            try:
                player.wait_audible(timeout)
            except BaseException:
                player.stop()
                raise
        return player

    def stop(self) -> None:
        """Stop players and the daemon this object started; remove its directory."""
        for player in self._players:
            player.stop()
        self._players.clear()
        if self.pid is not None:
            _kill_pid(self.pid, "pulseaudio")
            self.pid = None
        self._forget()


class Player:
    """A signal being played into a :class:`PulseServer` sink by ``pacat``.

    Created by :meth:`PulseServer.play`. The data file is fed to ``pacat``
    by ``sh``/``cat`` (when looping), so the test process takes no part in
    playback.
    """

    def __init__(self, server: PulseServer, path: Path, loop: bool):
        self.server = server
        self.path = path
        pacat = ["pacat", "--playback", "--raw", *server._spec_args(),
                 f"--device={server.sink}", "--latency-msec=100",
                 "--client-name=audioring-tests"]
        env = {**os.environ, **server.env}
        self._log = path.with_suffix(".log")
        err = open(self._log, "wb")  # a file, not a pipe nobody reads
        self._feeder = None
        if loop:
            # cat exits on SIGPIPE once pacat is gone, which ends the loop.
            self._feeder = subprocess.Popen(
                ["sh", "-c", 'while cat "$0"; do :; done', str(path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self._pacat = subprocess.Popen(pacat, env=env, stdin=self._feeder.stdout,
                                           stdout=subprocess.DEVNULL, stderr=err)
            self._feeder.stdout.close()
            self._feeder.stdout = None
        else:
            self._pacat = subprocess.Popen([*pacat, str(path)], env=env,
                                           stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=err)
        err.close()

    @property
    def running(self) -> bool:
        return self._pacat.poll() is None

    def wait_audible(self, timeout: float = 10.0, threshold: float = 1e-3) -> None:
        """Wait until the monitor carries a signal (RMS above `threshold`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise AudioServerError(
                    f"pacat exited with {self._pacat.returncode}: {_tail(self._log)}")
            x = self.server.record(0.05, timeout=max(0.1, deadline - time.monotonic()))
            if np.sqrt(np.mean(np.square(x, dtype=np.float64))) > threshold:
                return
        raise AudioServerError(f"played signal not audible within {timeout} s")

    def stop(self) -> None:
        """Stop playback and reap the processes."""
        _stop_popen(self._pacat)  # first: cat then dies of SIGPIPE
        _stop_popen(self._feeder)
        self.path.unlink(missing_ok=True)
        self._log.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# JACK

# JACK keeps a registry of servers in shared memory (/dev/shm/jack-shm-registry)
# with room for 8. A killed jackd leaves its entry behind, and an entry is
# reclaimed only when a server of the same name starts again, so private
# servers take their names from this small pool instead of inventing new ones.
_JACK_NAMES = [f"audioring-test-{slot}" for slot in range(6)]
_JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")


class JackServer(_EnvMixin):
    """A private ``jackd`` with the dummy driver (non-realtime, exactly paced).

    Parameters
    ----------
    rate : int, optional
        Sample rate; JACK clients (PortAudio included) must use exactly it.
    period : int, optional
        Frames per period (one callback per period).
    channels : int, optional
        Number of ``system:capture_*`` and ``system:playback_*`` ports.
    name : str, optional
        Server name; a private one by default, so a developer's own JACK
        server is never touched.
    timeout : float, optional
        Seconds to wait for the server to answer.

    Attributes
    ----------
    env : dict of str
        ``JACK_DEFAULT_SERVER`` (selects this server in libjack, hence in
        PortAudio) and ``JACK_NO_START_SERVER=1``; exported by :meth:`start`.
    """

    def __init__(self, rate: int = 48000, period: int = 256, channels: int = 8,
                 name: str | None = None, timeout: float = 15.0):
        self.rate = int(rate)
        self.period = int(period)
        self.channels = int(channels)
        self._fixed_name = name is not None
        self.name = name or _JACK_NAMES[0]
        self.timeout = timeout
        self.directory: Path | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._injectors: list[Injector] = []
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return (f"JackServer(rate={self.rate}, period={self.period}, "
                f"channels={self.channels}, name={self.name!r}; {state})")

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    def start(self) -> "JackServer":
        """Install jackd if needed (root only), start it, wait until it answers.

        Returns
        -------
        JackServer
            self, running, with :attr:`env` exported into ``os.environ``.

        Raises
        ------
        AudioServerError
            If jackd is missing, exits, or does not answer within the timeout.
        """
        if self.running:
            return self
        _apt_install("jackd", ["jackd2"])
        names = [self.name] if self._fixed_name else _JACK_NAMES
        for attempt, self.name in enumerate(names):
            try:
                return self._start_named()
            except AudioServerError as error:
                log = str(error)
                if "Too many servers already active" in log and attempt == 0 and _no_jackd_running():
                    # Entries of killed servers fill the registry; with no jackd
                    # alive it holds nothing of value, so start afresh.
                    _JACK_REGISTRY.unlink(missing_ok=True)
                    return self._start_named()
                if "already active" not in log or self.name == names[-1]:
                    raise  # not a name clash, or no name left
        raise AssertionError("unreachable")

    def _start_named(self) -> "JackServer":
        self.directory = d = _private_dir("audioring-jack-")
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1",
                    "AUDIORING_JACK_DIR": str(d)}
        cmd = ["jackd", "-n", self.name, "-r",
               # A generous client timeout: the Python tone generator may be
               # late on a loaded 2-core CI machine.
               "-t", "5000",
               "-d", "dummy", "-r", str(self.rate), "-p", str(self.period),
               "-C", str(self.channels), "-P", str(self.channels)]
        env = {**os.environ, **self.env}
        try:
            with open(d / "jackd.log", "wb") as log:
                # Own session: a Ctrl-C meant for pytest reaches jackd only
                # through stop(), after the clients are gone.
                self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
            self.pid = self._proc.pid
            _LIVE.add(self)
            self._wait_ready()
            self.activate()
            (d / "server.json").write_text(json.dumps(
                {"kind": "jack", "pid": self.pid, "env": self.env, "rate": self.rate,
                 "period": self.period, "channels": self.channels}))
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        last = f"system:capture_{self.channels}"
        deadline = time.monotonic() + self.timeout
        while True:
            if not self.running:
                raise AudioServerError(f"jackd exited:\n{_tail(self.directory / 'jackd.log')}")
            try:
                if last in self.ports():
                    return
            except (AudioServerError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise AudioServerError(
                    f"jackd did not answer within {self.timeout} s:\n"
                    f"{_tail(self.directory / 'jackd.log')}")
            time.sleep(0.05)

    def ports(self, connections: bool = False) -> list[str]:
        """Port names on this server (``jack_lsp``), with connections if asked.

        With `connections`, a connected peer is listed after its port,
        indented by three spaces (``jack_lsp -c`` format).
        """
        env = {**os.environ, **self.env}
        r = subprocess.run(["jack_lsp", "-s", self.name, *(["-c"] if connections else [])],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=5, check=False)
        if r.returncode != 0:
            raise AudioServerError(f"jack_lsp failed: {r.stderr.strip()}")
        return r.stdout.splitlines()

    def inject_tones(self, freqs, target_client_prefix: str = "PortAudio",
                     amplitude: float = 0.5, timeout: float = 10.0) -> "Injector":
        """Feed a distinct sine per channel into another client's input ports.

        A separate process registers one output port per frequency and,
        whenever input ports of a client whose name starts with
        `target_client_prefix` appear, connects output ``i`` to that client's
        ``i``-th input port in numeric order (so to channel ``i`` of a
        PortAudio stream, also of one opened later). Runs until stopped.

        Parameters
        ----------
        freqs : sequence of float
            Frequency in Hz for channel 0, 1, ...
        target_client_prefix : str, optional
            Client name prefix of the recorder; ``PortAudio`` for sounddevice.
        amplitude : float, optional
            Peak amplitude.
        timeout : float, optional
            Seconds to wait for the generator to be active.

        Returns
        -------
        Injector
            Handle with ``wait_connected(n)`` and ``stop()``.
        """
        if not self.running:
            raise AudioServerError("jackd is not running")
        inj = Injector(self, list(freqs), target_client_prefix, amplitude, timeout)
        self._injectors.append(inj)
        return inj

    def stop(self) -> None:
        """Stop injectors and the jackd this object started; wait for it to exit.

        If ``sounddevice`` is imported, PortAudio is terminated before jackd
        stops and initialized again after, which closes every open stream:
        PortAudio's ``Pa_Terminate`` aborts the process (a failed assertion in
        ``pa_jack.c``) when its JACK client's server has gone away.
        """
        for inj in self._injectors:
            inj.stop()
        self._injectors.clear()
        sd = sys.modules.get("sounddevice")
        reinit = sd is not None and getattr(sd, "_initialized", 0) > 0 and self.running
        if reinit:
            sd._terminate()
        try:
            self._stop_process()
        finally:
            if reinit:
                sd._initialize()

    def _stop_process(self) -> None:
        if self._proc is not None:
            # jackd cleans up its shared memory on SIGTERM; give it time.
            _stop_popen(self._proc, timeout=10.0)
            self._proc = None
        elif self.pid is not None:
            _kill_pid(self.pid, "jackd")
        self.pid = None
        self._forget()


class Injector:
    """A tone generator JACK client running in a separate process.

    Created by :meth:`JackServer.inject_tones`; stopped by :meth:`stop` (or
    when this process goes away: it exits when its stdin closes).
    """

    def __init__(self, server: JackServer, freqs, target: str, amplitude: float,
                 timeout: float):
        self.server = server
        self.freqs = freqs
        self._lines: list[str] = []
        self._cond = threading.Condition()
        cmd = [sys.executable, "-m", "audioring.testing", "_inject",
               "--server", server.name, "--target", target,
               "--amplitude", str(amplitude), "--freqs", *map(str, freqs)]
        self._err_path = server.directory / f"inject-{id(self)}.log"
        with open(self._err_path, "wb") as err:
            self._proc = subprocess.Popen(cmd, env={**os.environ, **server.env},
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=err, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._wait(lambda: "ready" in self._lines, timeout, "become active")
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        for line in self._proc.stdout:
            with self._cond:
                self._lines.append(line.strip())
                self._cond.notify_all()
        with self._cond:
            self._lines.append("exit")
            self._cond.notify_all()

    def _wait(self, pred, timeout: float, what: str) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: pred() or "exit" in self._lines, timeout)
            if ok and pred():
                return
        raise AudioServerError(f"tone injector did not {what} within {timeout} s:\n"
                               f"{self._lines}\n{_tail(self._err_path)}")

    @property
    def connections(self) -> list[tuple[str, str]]:
        """``(own port, target port)`` pairs connected now (gone ports dropped)."""
        current: dict[tuple[str, str], None] = {}
        with self._cond:
            for line in self._lines:
                word, *pair = line.split()
                if word == "connected":
                    current[tuple(pair)] = None
                elif word == "disconnected":
                    current.pop(tuple(pair), None)
        return list(current)

    def wait_connected(self, n: int | None = None, timeout: float = 10.0) -> None:
        """Wait until `n` (default: all) output ports are connected."""
        n = len(self.freqs) if n is None else n
        self._wait(lambda: len(self.connections) >= n, timeout, f"connect {n} ports")

    def stop(self) -> None:
        """Close the generator's stdin (it then exits) and reap it."""
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _stop_popen(self._proc)
        self._reader.join(5)
        self._err_path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _port_order(name: str):
    """Numeric order of port names: in_2 before in_10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _inject_main(args) -> int:
    """Body of the tone generator process (``python -m audioring.testing _inject``)."""
    import jack  # JACK-Client

    client = jack.Client("audioring-inject", servername=args.server, no_start_server=True)
    freqs = np.asarray(args.freqs, dtype=np.float64)
    outs = [client.outports.register(f"tone_{i + 1}") for i in range(len(freqs))]
    rate = client.samplerate
    # One second of each tone, plus room for a whole block past the end so a
    # block is always one slice: the callback only copies (Python callbacks
    # at 192 kHz / 256 frames have 1.3 ms; computing sines there causes
    # xruns on 2 cores). Integer Hz loop without a phase jump.
    n = np.arange(rate + 8192, dtype=np.float64)
    table = (args.amplitude * np.sin(2 * np.pi * freqs[:, None] * n / rate)).astype(np.float32)

    @client.set_process_callback
    def process(frames):
        # Phase from JACK's frame clock, not from a count of our own calls:
        # after a cycle we missed (an xrun) the tones continue in phase.
        start = client.last_frame_time % rate
        for i, port in enumerate(outs):
            port.get_array()[:] = table[i, start:start + frames]

    client.activate()
    print("ready", flush=True)
    own = {p.name for p in outs}
    done: set[tuple[str, str]] = set()
    # Poll for target ports: simpler than registration callbacks, which may
    # not call into JACK themselves anyway.
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        by_client: dict[str, list[str]] = {}
        for p in client.get_ports(is_audio=True, is_input=True):
            owner = p.name.split(":", 1)[0]
            if owner.startswith(args.target) and p.name not in own:
                by_client.setdefault(owner, []).append(p.name)
        for names in by_client.values():
            for src, dst in zip(outs, sorted(names, key=_port_order)):
                if (src.name, dst) in done:
                    continue
                try:
                    client.connect(src, dst)
                except jack.JackError:
                    continue  # port went away meanwhile; next round
                done.add((src.name, dst))
                print("connected", src.name, dst, flush=True)
        live = {p.name for p in client.get_ports(is_input=True)}
        for src, dst in sorted(done):
            if dst not in live:  # the recorder closed its stream
                done.discard((src, dst))
                print("disconnected", src, dst, flush=True)
    client.deactivate()
    client.close()
    return 0


# --------------------------------------------------------------------------
# Command line


def _print_env(env: dict[str, str], comment: str) -> None:
    print(f"# {comment}")
    for k, v in env.items():
        print(f"export {k}={shlex.quote(v)}")


_CLIENT_VARS = {
    "pulse": ("PULSE_SERVER", "PULSE_CLIENTCONFIG", "AUDIORING_PULSE_DIR"),
    "jack": ("JACK_DEFAULT_SERVER", "AUDIORING_JACK_DIR"),
}


def _stop_dirs(dirs: list[str]) -> None:
    """Stop the servers whose state directories are `dirs`; print `unset` lines."""
    for d in dirs:
        kind = "pulse" if Path(d).name.startswith("audioring-pulse-") else "jack"
        state_file = Path(d) / "server.json"
        if state_file.exists():
            state = json.loads(state_file.read_text())
            _kill_pid(state["pid"], "pulseaudio" if kind == "pulse" else "jackd")
            shutil.rmtree(d, ignore_errors=True)
            print(f"# stopped {kind} server (pid {state['pid']})", file=sys.stderr)
        else:
            print(f"# no server state in {d}", file=sys.stderr)
        # JACK_NO_START_SERVER stays: it is right without any server too.
        for k in _CLIENT_VARS[kind]:
            print(f"unset {k}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Start or stop private audio servers for audioring's tests. "
        "Start commands print `export` lines: use them as "
        '`eval "$(python -m audioring.testing pulse)"`; '
        '`eval "$(python -m audioring.testing stop)"` stops the servers '
        "named by $AUDIORING_PULSE_DIR and $AUDIORING_JACK_DIR.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pulse", help="start a PulseAudio daemon with a null sink")
    p.add_argument("--rate", type=int, default=48000)
    p.add_argument("--channels", type=int, default=2)
    j = sub.add_parser("jack", help="start a jackd with the dummy driver")
    j.add_argument("--rate", type=int, default=48000)
    j.add_argument("--period", type=int, default=256)
    j.add_argument("--channels", type=int, default=8)
    j.add_argument("--name", default=None, help="server name (default: a private one)")
    s = sub.add_parser("stop", help="stop servers started by this script")
    s.add_argument("dirs", nargs="*", help="server directories (default: from the environment)")
    i = sub.add_parser("_inject")  # internal: the tone generator process
    i.add_argument("--server", required=True)
    i.add_argument("--target", required=True)
    i.add_argument("--amplitude", type=float, default=0.5)
    i.add_argument("--freqs", type=float, nargs="+", required=True)
    args = parser.parse_args(argv)

    if args.command == "_inject":
        return _inject_main(args)
    if args.command == "stop":
        dirs = args.dirs or [os.environ[k] for k in ("AUDIORING_PULSE_DIR", "AUDIORING_JACK_DIR")
                             if os.environ.get(k)]
        _stop_dirs(dirs)
        return 0
    if args.command == "pulse":
        server = PulseServer(args.rate, args.channels)
    else:
        server = JackServer(args.rate, args.period, args.channels, name=args.name)
    server.start()
    _print_env(server.env, f"{server!r}; stop: python -m audioring.testing stop {server.directory}")
    # Leave it running: forget it so that the exit handler keeps its hands off.
    _LIVE.discard(server)
    return 0


