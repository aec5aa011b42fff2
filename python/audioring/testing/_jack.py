"""A private ``jackd`` with the dummy driver: :class:`JackServer`, and its tone :class:`Injector`.

PortAudio's JACK host API shows the server as the device ``system``, whose
capture ports are silent; :meth:`JackServer.inject_tones` connects a tone
generator (a separate process, ``python -m audioring.testing._inject``, which
needs the JACK-Client package) to the recorder's input ports.

The dummy driver
----------------
The dummy driver has no hardware: it paces its cycles by a timer, one period
of ``period`` frames every ``period / rate`` seconds, so a recorder gets
exactly the nominal rate, and it serves any rate, period and number of
``system:capture_N``/``system:playback_N`` ports. By default jackd runs
without realtime scheduling (``jackd -r``), which needs no privileges;
``JackServer(realtime=True)`` starts it with ``-R`` (SCHED_FIFO threads,
where the system permits them), as a production JACK setup would run.

A clock that is off
-------------------
A sound card's crystal is never exactly at its nominal rate: two "48 kHz"
devices differ by tens to hundreds of ppm. ``JackServer(clock_error_ppm=200)``
runs jackd under libfaketime with a speed factor of ``1 + 200e-6`` (see
``_faketime``): the dummy driver paces its periods by that faked clock, so the
server delivers 200 ppm more frames per real second than `rate` (48,009.6 at
48 kHz), as a fast device does, for real, to every client; clients keep the
real clock. Tones from :meth:`JackServer.inject_tones` follow JACK's frame
clock, so they are exact in the server's clock and off by the same ppm in the
real one. Measure a server's rate with :func:`~audioring.testing.fit_rate`
over many (callback time, frame count) pairs: jackd's ``-w`` option, say, does
not change it.

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

Pitfalls
--------
* Never let a client start a server: a JACK client (``jack_lsp``,
  JACK-Client) otherwise starts a jackd of its own when none answers, which
  may hang or grab a real device. :attr:`JackServer.env` carries
  ``JACK_NO_START_SERVER=1``, and every program this module runs gets it
  (PortAudio itself always opens its client with ``JackNoStartServer``).
* JACK keeps a registry of servers in shared memory
  (``/dev/shm/jack-shm-registry``) with room for 8. A killed jackd leaves its
  entry behind, and an entry is reclaimed only when a server of the same name
  starts again; so private servers take their names from a small pool
  (``audioring-test-0`` .. ``-5``) instead of inventing new ones, and when the
  registry is full although no jackd runs at all, it is removed (it then
  holds nothing of value).
* A jackd must have exited before another one starts: :meth:`JackServer.stop`
  waits for that (SIGTERM, which lets jackd clean up its shared memory; SIGKILL
  only after 10 s).
* PortAudio's ``Pa_Terminate`` aborts the process (assertion in ``pa_jack.c``)
  if the JACK server of its client has gone away: PortAudio must be
  terminated before jackd stops. :meth:`JackServer.stop` does that (and
  initializes it again after) if ``sounddevice`` is loaded; that closes every
  open stream.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

from ._errors import AudioServerError
from ._faketime import faketime_env, validate_clock_error_ppm
from ._packages import require_programs, require_python_module
from ._portaudio import portaudio_released
from ._process import kill_pid, pid_alive, pid_cmdline, private_dir, program_pids, program_running, stop_popen, tail
from ._server import ServerBase, stop_at_exit

__all__ = ["Injector", "JackServer"]

# See "Pitfalls" above: names from a small pool, for the 8-slot registry.
_JACK_NAMES = [f"audioring-test-{slot}" for slot in range(6)]
_JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")


def _names_in_use() -> set[str]:
    """Server names of the jackd processes running on this machine.

    A second jackd of a name in use would fail, but only after ``jack_lsp``
    had answered from the first one, so such names are never tried.
    """
    names = set()
    for pid in program_pids("jackd"):
        args = pid_cmdline(pid)
        name = "default"
        for flag, value in zip(args, args[1:]):
            if flag in ("-n", "--name"):
                name = value
        names.add(name)
    return names


class JackServer(ServerBase):
    """A private ``jackd`` with the dummy driver (exactly paced; non-realtime by default).

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
    realtime : bool, optional
        Start jackd with realtime scheduling (``jackd -R``) instead of
        without (``jackd -r``). Realtime needs the privilege to use
        SCHED_FIFO (root, ``CAP_SYS_NICE`` or an rtprio limit); where it is
        missing, jackd runs its threads with normal scheduling (it logs
        ``Cannot use real-time scheduling``).
    clock_error_ppm : float, optional
        How far the server's clock is off, in ppm (default 0: exact):
        positive runs fast, so more than `rate` frames arrive per real
        second. A non-zero value runs jackd under libfaketime (Debian
        package ``faketime``); within +-10,000 ppm.

    Attributes
    ----------
    env : dict of str
        ``JACK_DEFAULT_SERVER`` (selects this server in libjack, hence in
        PortAudio) and ``JACK_NO_START_SERVER=1``; exported into
        ``os.environ`` by :meth:`start`, and ``AUDIORING_JACK_DIR`` once
        started. Pass ``{**os.environ, **env}`` to subprocesses otherwise.
    directory : pathlib.Path or None
        Private directory while running; jackd logs to ``directory /
        "jackd.log"``.
    pid : int or None
        jackd's process id while running.

    Raises
    ------
    ValueError
        If `clock_error_ppm` is not a finite number within +-10,000.

    Notes
    -----
    Needs the programs ``jackd`` and ``jack_lsp`` (Debian package
    ``jackd2``); :meth:`inject_tones` also needs the Python package
    JACK-Client (``pip install 'audioring[testing]'``), and a
    `clock_error_ppm` libfaketime's ``libfaketimeMT.so.1`` (Debian package
    ``faketime``).

    Examples
    --------
    >>> import sounddevice
    >>> from audioring.testing import JackServer, refresh_portaudio
    >>> with JackServer(48000, 256, 2) as server:   # doctest: +SKIP
    ...     refresh_portaudio()
    ...     with server.inject_tones([1000, 2000]) as injector:
    ...         with sounddevice.InputStream(device="system", channels=2) as s:
    ...             injector.wait_connected()
    ...             x, _ = s.read(4800)
    ...     server.stop()                           # before PortAudio re-scans
    ...     refresh_portaudio()

    A server whose clock runs 200 ppm fast, measured from a callback's times:

    >>> import time
    >>> from audioring.testing import fit_rate
    >>> times, frames = [], [0]
    >>> def callback(indata, n, time_info, status):
    ...     times.append(time.monotonic())
    ...     frames.append(frames[-1] + n)
    >>> with JackServer(48000, 480, 2, clock_error_ppm=200) as server:   # doctest: +SKIP
    ...     refresh_portaudio()
    ...     with sounddevice.InputStream(device="system", channels=2, callback=callback):
    ...         time.sleep(10)
    ...     server.stop()
    ...     refresh_portaudio()
    >>> fit_rate(times, frames[:-1]).rate                # doctest: +SKIP
    48009.6...
    """

    def __init__(self, rate: int = 48000, period: int = 256, channels: int = 8,
                 name: Optional[str] = None, timeout: float = 15.0,
                 realtime: bool = False, clock_error_ppm: float = 0.0) -> None:
        self.clock_error_ppm = validate_clock_error_ppm(clock_error_ppm)
        self.rate = int(rate)
        self.period = int(period)
        self.channels = int(channels)
        self.realtime = bool(realtime)
        self._fixed_name = name is not None
        self.name = name or _JACK_NAMES[0]
        self.timeout = timeout
        self.directory: Optional[Path] = None
        self.pid: Optional[int] = None
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._injectors: list[Injector] = []
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        rt = ", realtime=True" if self.realtime else ""
        clock = f", clock_error_ppm={self.clock_error_ppm:g}" if self.clock_error_ppm else ""
        return (f"JackServer(rate={self.rate}, period={self.period}, "
                f"channels={self.channels}, name={self.name!r}{rt}{clock}; {state})")

    @property
    def running(self) -> bool:
        """True while jackd runs."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def _dir(self) -> Path:
        if self.directory is None:
            raise AudioServerError("jackd is not running")
        return self.directory

    def start(self) -> JackServer:
        """Start jackd and wait until it answers.

        Returns
        -------
        JackServer
            self, running, with :attr:`env` exported into ``os.environ``.

        Raises
        ------
        AudioServerUnavailable
            If ``jackd`` or ``jack_lsp`` is not installed, or libfaketime
            for a `clock_error_ppm` (nothing is installed automatically; the
            message says which packages to install).
        AudioServerError
            If jackd exits, or does not answer within the timeout.
        """
        if self.running:
            return self
        require_programs("jack")
        # Found before anything starts: a missing libfaketime is reported as such.
        faketime = faketime_env(self.clock_error_ppm) if self.clock_error_ppm else {}
        in_use = _names_in_use()
        if self._fixed_name:
            if self.name in in_use:
                raise AudioServerError(f"a jackd named {self.name!r} is already running")
            names = [self.name]
        else:
            names = [n for n in _JACK_NAMES if n not in in_use]
            if not names:
                raise AudioServerError(f"all private JACK server names are in use: {_JACK_NAMES}")
        for attempt, name in enumerate(names):
            self._set_name(name)
            try:
                return self._start_named(faketime)
            except AudioServerError as error:
                log = str(error)
                if ("Too many servers already active" in log and attempt == 0
                        and not program_running("jackd")):
                    # Entries of killed servers fill the registry; with no jackd
                    # alive it holds nothing of value, so start afresh.
                    _JACK_REGISTRY.unlink(missing_ok=True)
                    return self._start_named(faketime)
                if "already active" not in log or name == names[-1]:
                    raise  # not a name clash, or no name left
        raise AssertionError("unreachable")

    def _set_name(self, name: str) -> None:
        self.name = name
        self.env = {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}

    def _start_named(self, faketime: dict[str, str]) -> JackServer:
        self.directory = d = private_dir("audioring-jack-")
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1",
                    "AUDIORING_JACK_DIR": str(d)}
        cmd = ["jackd", "-n", self.name, "-R" if self.realtime else "-r",
               # A generous client timeout: the Python tone generator may be
               # late on a loaded 2-core CI machine.
               "-t", "5000",
               "-d", "dummy", "-r", str(self.rate), "-p", str(self.period),
               "-C", str(self.channels), "-P", str(self.channels)]
        # libfaketime goes to jackd alone: its clients keep the real clock.
        env = {**os.environ, **self.env, **faketime}
        try:
            with open(d / "jackd.log", "wb") as log:
                # Own session: a Ctrl-C meant for pytest reaches jackd only
                # through stop(), after the clients are gone.
                self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
            self.pid = self._proc.pid
            stop_at_exit(self)
            self._wait_ready()
            self.activate()
            (d / "server.json").write_text(json.dumps(
                {"kind": "jack", "pid": self.pid, "env": self.env, "rate": self.rate,
                 "period": self.period, "channels": self.channels,
                 "realtime": self.realtime, "clock_error_ppm": self.clock_error_ppm}))
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        last = f"system:capture_{self.channels}"
        log = self._dir() / "jackd.log"
        deadline = time.monotonic() + self.timeout
        while True:
            if not self.running:
                raise AudioServerError(f"jackd exited:\n{tail(log)}")
            try:
                if last in self.ports():
                    return
            except (AudioServerError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise AudioServerError(
                    f"jackd did not answer within {self.timeout} s:\n{tail(log)}")
            time.sleep(0.05)

    def ports(self, connections: bool = False) -> list[str]:
        """Port names on this server (``jack_lsp``), with connections if asked.

        Parameters
        ----------
        connections : bool, optional
            List each connected peer after its port, indented by three
            spaces (``jack_lsp -c`` format).

        Returns
        -------
        list of str
            Lines of ``jack_lsp``'s output.

        Raises
        ------
        AudioServerError
            If ``jack_lsp`` fails (e.g. the server is gone).
        """
        env = {**os.environ, **self.env}
        r = subprocess.run(["jack_lsp", "-s", self.name, *(["-c"] if connections else [])],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=5, check=False)
        if r.returncode != 0:
            raise AudioServerError(f"jack_lsp failed: {r.stderr.strip()}")
        return r.stdout.splitlines()

    def late_clients(self) -> list[str]:
        """Clients that jackd reported late (an xrun) since it started, once per report.

        jackd logs ``JackEngine::XRun: client = NAME was not finished`` for
        each client that had not completed its cycle when the period ended;
        a test that finds input overflow flags can tell from this whose
        lateness caused them (an xrun of any client is flagged to every
        client).

        Returns
        -------
        list of str
            Client names in the order jackd reported them; empty if none,
            or if this object did not start the server (no log).
        """
        if self.directory is None or not (self.directory / "jackd.log").exists():
            return []
        text = (self.directory / "jackd.log").read_text(errors="replace")
        return re.findall(r"JackEngine::XRun: client = (.+?) was not finished", text)

    def inject_tones(self, freqs: Sequence[float], target_client_prefix: str = "PortAudio",
                     amplitude: float = 0.5, timeout: float = 10.0) -> Injector:
        """Feed a distinct sine per channel into another client's input ports.

        A separate process registers one output port per frequency and,
        whenever input ports of a client whose name starts with
        `target_client_prefix` appear, connects output ``i`` to that client's
        ``i``-th input port in numeric order (so to channel ``i`` of a
        PortAudio stream, also of one opened later). Runs until stopped.

        Parameters
        ----------
        freqs : sequence of float
            Frequency in Hz for channel 0, 1, ... Integer Hz loop seamlessly.
        target_client_prefix : str, optional
            Client name prefix of the recorder; ``PortAudio`` for sounddevice.
        amplitude : float, optional
            Peak amplitude.
        timeout : float, optional
            Seconds to wait for the generator to be active.

        Returns
        -------
        Injector
            Handle with ``wait_connected(n)`` and ``stop()``; also a context
            manager.

        Raises
        ------
        AudioServerUnavailable
            If the JACK-Client package is not installed.
        AudioServerError
            If jackd is not running or the generator does not become active.
        """
        if not self.running:
            raise AudioServerError("jackd is not running")
        require_python_module("jack", "JACK-Client", "testing")
        inj = Injector(self, [float(f) for f in freqs], target_client_prefix, amplitude, timeout)
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
        with portaudio_released(self.running):
            self._stop_process()

    def _stop_process(self) -> None:
        if self._proc is not None:
            # jackd cleans up its shared memory on SIGTERM; give it time.
            stop_popen(self._proc, timeout=10.0)
            self._proc = None
        elif self.pid is not None:
            kill_pid(self.pid, "jackd")
        self.pid = None
        self._forget()


class Injector:
    """A tone generator JACK client running in a separate process.

    Created by :meth:`JackServer.inject_tones`; stopped by :meth:`stop` (or
    when this process goes away: it exits when its stdin closes). A context
    manager: leaving the block stops it.

    Attributes
    ----------
    server : JackServer
        The server it runs on.
    freqs : list of float
        The frequency of each output port, in port order.
    """

    def __init__(self, server: JackServer, freqs: list[float], target: str, amplitude: float,
                 timeout: float) -> None:
        self.server = server
        self.freqs = freqs
        self._lines: list[str] = []
        self._cond = threading.Condition()
        cmd = [sys.executable, "-m", "audioring.testing._inject",
               "--server", server.name, "--target", target,
               "--amplitude", str(amplitude), "--freqs", *map(str, freqs)]
        self._err_path = server._dir() / f"inject-{id(self)}.log"
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
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._cond:
                self._lines.append(line.strip())
                self._cond.notify_all()
        with self._cond:
            self._lines.append("exit")
            self._cond.notify_all()

    def _wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: pred() or "exit" in self._lines, timeout)
            if ok and pred():
                return
        raise AudioServerError(f"tone injector did not {what} within {timeout} s:\n"
                               f"{self._lines}\n{tail(self._err_path)}")

    @property
    def connections(self) -> list[tuple[str, str]]:
        """``(own port, target port)`` pairs connected now (gone ports dropped)."""
        current: dict[tuple[str, str], None] = {}
        with self._cond:
            for line in self._lines:
                word, *pair = line.split()
                if len(pair) != 2:
                    continue
                if word == "connected":
                    current[(pair[0], pair[1])] = None
                elif word == "disconnected":
                    current.pop((pair[0], pair[1]), None)
        return list(current)

    def wait_connected(self, n: Optional[int] = None, timeout: float = 10.0) -> None:
        """Wait until `n` output ports are connected.

        Parameters
        ----------
        n : int, optional
            Number of connections; all output ports by default.
        timeout : float, optional
            Seconds to wait.

        Raises
        ------
        AudioServerError
            If fewer are connected after `timeout`, or the generator exited.
        """
        want = len(self.freqs) if n is None else n
        self._wait(lambda: len(self.connections) >= want, timeout, f"connect {want} ports")

    def stop(self) -> None:
        """Close the generator's stdin (it then exits) and reap it."""
        if self._proc.poll() is None:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_popen(self._proc)
        self._reader.join(5)
        self._err_path.unlink(missing_ok=True)

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
