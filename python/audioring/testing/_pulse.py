"""A private PulseAudio daemon with a null sink: :class:`PulseServer` and its :class:`Player`.

PortAudio's ALSA host API shows the server as the devices ``pulse`` and
``default`` (through the ALSA ``pulse`` plugin, Debian package
``libasound2-plugins``); whatever is played into the null sink
(:meth:`PulseServer.play`) is captured from its monitor, which is the default
source. Signals come from separate processes (``pacat``), so a test that holds
the GIL, or stalls on purpose, cannot disturb playback.

Isolation
---------
Every path the daemon uses (socket, pid file, cookie, state, configuration)
points into a private directory, so it never meets or replaces a desktop's
PulseAudio; it gets no D-Bus or display variables, and its clients get a
configuration with ``autospawn = no``, so no client starts a server of its
own. Clients find it through ``PULSE_SERVER`` (:attr:`PulseServer.env`).

The idle null sink
------------------
An idle null sink renders in 2-second blocks: the first capture then comes
about 2 s late, and data arrives in bursts. Two things fix that:

* a second null sink (``audioring_keepalive``) fed by ``module-loopback``
  from the first sink's monitor keeps the first one running all the time;
* a suspend/resume of the sink right after start restarts its clock, without
  which the first data still comes ~2 s after start (its first block).

:meth:`PulseServer.start` then waits until short reads from the monitor come
back promptly several times in a row, so a test's first capture is on time.

Channel order
-------------
Without an explicit channel map, PulseAudio remixes multichannel audio. The
sink, and every ``pacat``/``parec`` of this module, use the map the ALSA
``pulse`` plugin gives PortAudio's streams
(:func:`~audioring.testing.alsa_channel_map`): channel ``i`` played is
channel ``i`` captured.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np
import numpy.typing as npt

from ._errors import AudioServerError
from ._packages import require_programs
from ._process import kill_pid, pid_alive, private_dir, stop_popen, tail
from ._server import ServerBase, stop_at_exit
from ._signals import alsa_channel_map

__all__ = ["Player", "PulseServer"]


class PulseServer(ServerBase):
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

    Notes
    -----
    Needs the programs ``pulseaudio``, ``pacat`` and ``parec`` (Debian
    packages ``pulseaudio``, ``pulseaudio-utils``) and, for PortAudio to see
    the server, the ALSA ``pulse`` plugin (``libasound2-plugins``). Use it as
    a context manager, or call :meth:`start` and :meth:`stop`.

    Examples
    --------
    >>> import sounddevice
    >>> from audioring.testing import PulseServer, refresh_portaudio, tone
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
        self._saved_env = None

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"PulseServer(rate={self.rate}, channels={self.channels}; {state})"

    @property
    def running(self) -> bool:
        """True while the daemon runs."""
        return self.pid is not None and pid_alive(self.pid)

    @property
    def socket(self) -> Path:
        """Path of the daemon's native-protocol socket (only while started)."""
        return self._dir() / "native"

    def _dir(self) -> Path:
        if self.directory is None:
            raise AudioServerError("PulseAudio server is not running")
        return self.directory

    def _spec_args(self) -> list[str]:
        return [f"--rate={self.rate}", f"--channels={self.channels}",
                f"--channel-map={','.join(self.channel_map)}", "--format=float32le"]

    def start(self) -> PulseServer:
        """Start the daemon and wait until its monitor delivers data promptly.

        Returns
        -------
        PulseServer
            self, running, with :attr:`env` exported into ``os.environ``.

        Raises
        ------
        AudioServerUnavailable
            If a program it needs is not installed (nothing is installed
            automatically; the message says which packages to install).
        AudioServerError
            If PulseAudio does not come up within the timeout.
        """
        if self.running:
            return self
        require_programs("pulse")
        self.directory = d = private_dir("audioring-pulse-")
        try:
            self._launch(d)
            stop_at_exit(self)
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
                f"{tail(d / 'launch.log')}{tail(d / 'pulse.log')}")
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
                raise AudioServerError(f"pulseaudio exited:\n{tail(self._dir() / 'pulse.log')}")
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

    def record(self, seconds: float, timeout: float = 5.0,
               source: Optional[str] = None) -> npt.NDArray[np.float32]:
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

        Raises
        ------
        AudioServerError
            If no data arrives in time.
        """
        frames = max(1, int(round(seconds * self.rate)))
        nbytes = frames * self.channels * 4
        cmd = ["parec", "--raw", *self._spec_args(), "--latency-msec=10",
               f"--device={source or self.sink + '.monitor'}"]
        proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        data = bytearray()
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
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
            stop_popen(proc)
        return np.frombuffer(bytes(data), dtype="<f4").reshape(frames, self.channels)

    def play(self, samples: npt.ArrayLike, loop: bool = True, wait: bool = True,
             timeout: float = 10.0) -> Player:
        """Play `samples` into the sink from separate processes (``pacat``).

        Parameters
        ----------
        samples : array_like
            Shape ``(frames, channels)`` with ``channels == self.channels``;
            converted to float32 (e.g. from :func:`~audioring.testing.tone`).
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

        Raises
        ------
        ValueError
            If `samples` has the wrong shape.
        AudioServerError
            If the server is not running, or the signal is not audible in time.
        """
        data = np.asarray(samples, dtype="<f4")
        if data.ndim != 2 or data.shape[1] != self.channels or len(data) == 0:
            raise ValueError(f"samples must have shape (frames > 0, {self.channels}), "
                             f"not {data.shape}")
        if not self.running:
            raise AudioServerError("PulseAudio server is not running")
        fd, name = tempfile.mkstemp(suffix=".f32", dir=self._dir())
        os.close(fd)
        path = Path(name)
        path.write_bytes(np.ascontiguousarray(data).tobytes())
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
            kill_pid(self.pid, "pulseaudio")
            self.pid = None
        self._forget()


class Player:
    """A signal being played into a :class:`PulseServer` sink by ``pacat``.

    Created by :meth:`PulseServer.play`. The data file is fed to ``pacat``
    by ``sh``/``cat`` (when looping), so the test process takes no part in
    playback. A context manager: leaving the block stops playback.

    Attributes
    ----------
    server : PulseServer
        The server played into.
    path : pathlib.Path
        The raw float32 data file being played.
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
        self._feeder: Optional[subprocess.Popen[bytes]] = None
        if loop:
            # cat exits on SIGPIPE once pacat is gone, which ends the loop.
            self._feeder = subprocess.Popen(
                ["sh", "-c", 'while cat "$0"; do :; done', str(path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert self._feeder.stdout is not None
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
        """True while ``pacat`` plays."""
        return self._pacat.poll() is None

    def wait_audible(self, timeout: float = 10.0, threshold: float = 1e-3) -> None:
        """Wait until the monitor carries a signal (RMS above `threshold`).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        threshold : float, optional
            RMS level that counts as audible.

        Raises
        ------
        AudioServerError
            If ``pacat`` exits or nothing is audible within `timeout`.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise AudioServerError(
                    f"pacat exited with {self._pacat.returncode}: {tail(self._log)}")
            x = self.server.record(0.05, timeout=max(0.1, deadline - time.monotonic()))
            if np.sqrt(np.mean(np.square(x, dtype=np.float64))) > threshold:
                return
        raise AudioServerError(f"played signal not audible within {timeout} s")

    def stop(self) -> None:
        """Stop playback and reap the processes."""
        stop_popen(self._pacat)  # first: cat then dies of SIGPIPE
        stop_popen(self._feeder)
        self.path.unlink(missing_ok=True)
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
