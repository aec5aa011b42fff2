"""pytest plugin: fixtures that start real audio servers for a test.

Registered through the ``pytest11`` entry point, so it is active in every
pytest run where audioring is installed; importing it starts nothing and
imports neither ``sounddevice`` nor ``jack``: servers start only when a test
uses a fixture. Disable it with ``-p no:audioring``.

Fixtures
--------
pulse_server
    The session's PulseAudio server, 48 kHz stereo, active.
pulse_server_factory
    ``(rate=48000, channels=2) -> PulseServer``, for other specs.
jack_server_factory
    ``(rate=48000, period=256, channels=8, realtime=False, clock_error_ppm=0) -> JackServer``
    (a `clock_error_ppm` runs the server's clock that far off: a drifting device).

Each fixture leaves PortAudio re-scanned (:func:`~audioring.testing.refresh_portaudio`),
so ``sounddevice`` and audioring see the server's devices: ``pulse`` and
``default`` (ALSA) for PulseAudio, ``system`` (JACK) for jackd.

When a server cannot start
--------------------------
On a developer's machine without PulseAudio or jackd the test is skipped,
with the reason (what to install). Under CI (environment ``CI=true``, also
``1`` or ``yes``) it fails instead: CI must never pass by silently skipping
real audio. The command-line option ``--audio-servers=require`` (or the ini
option ``audio_servers = require``) makes it fail anywhere;
``--audio-servers=skip-unavailable`` makes it skip even under CI.

Marker
------
``@pytest.mark.audio_server`` labels tests that need a real audio server
(``pytest -m "not audio_server"`` deselects them); the fixtures do not need
it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Callable, NoReturn

import pytest

if TYPE_CHECKING:
    from audioring.testing import JackServer, PulseServer

__all__ = ["jack_server_factory", "pulse_server", "pulse_server_factory"]

_DEFAULT_PULSE = (48000, 2)
_POLICIES = ("auto", "require", "skip-unavailable")
_CI_VALUES = ("true", "1", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("audioring", "audioring audio servers")
    group.addoption(
        "--audio-servers", choices=_POLICIES, default=None, dest="audioring_audio_servers",
        help="when an audio server fixture cannot start a server: 'auto' (default) skips the "
        "test, but fails it under CI=true; 'require' always fails; 'skip-unavailable' always skips",
    )
    parser.addini("audio_servers", "default of --audio-servers (auto, require, skip-unavailable)",
                  default="auto")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "audio_server: needs a real audio server from audioring.testing "
        "(skipped if it cannot start; fails under CI=true or --audio-servers=require)",
    )


def _must_start(config: pytest.Config) -> bool:
    """Whether a server that cannot start fails the test (else it is skipped)."""
    policy = config.getoption("audioring_audio_servers") or config.getini("audio_servers")
    if policy not in _POLICIES:
        raise pytest.UsageError(f"audio_servers must be one of {', '.join(_POLICIES)}, not {policy!r}")
    if policy == "auto":
        return os.environ.get("CI", "").strip().lower() in _CI_VALUES
    return bool(policy == "require")


def _unavailable(config: pytest.Config, what: str, error: BaseException) -> NoReturn:
    """Skip, or fail (CI=true, --audio-servers=require), because `what` could not start."""
    reason = f"{what} could not start: {type(error).__name__}: {error}"
    if _must_start(config):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class _PulseServers:
    """PulseAudio servers of the session, by (rate, channels).

    Starting one takes about 2 s, so servers are kept for the session: the
    default one and the last other one (each runs a loopback that costs CPU).
    A spec that failed to start is not retried.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.servers: dict[tuple[int, int], PulseServer] = {}
        self.failed: dict[tuple[int, int], BaseException] = {}

    def get(self, rate: int, channels: int) -> PulseServer:
        from audioring.testing import PulseServer

        key = (rate, channels)
        what = f"PulseAudio {rate} Hz x {channels}"
        if key in self.failed:
            _unavailable(self.config, what, self.failed[key])
        server = self.servers.get(key)
        if server is None or not server.running:
            for other in [k for k in self.servers if k not in (key, _DEFAULT_PULSE)]:
                self.servers.pop(other).stop()
            server = PulseServer(rate, channels)
            try:
                server.start()
            except Exception as e:  # noqa: BLE001 - reported (skip, or failure under CI) below
                self.failed[key] = e
            if key in self.failed:  # reported outside `except`: no chained traceback
                _unavailable(self.config, what, self.failed[key])
            self.servers[key] = server
        self.activate(server)
        return server

    @staticmethod
    def activate(server: PulseServer) -> None:
        from audioring.testing import refresh_portaudio

        # PULSE_SERVER selects the server for the ALSA `pulse` device; the
        # re-scan makes sure PortAudio lists that device at all.
        server.activate()
        refresh_portaudio()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def _audioring_pulse_servers(pytestconfig: pytest.Config) -> Iterator[_PulseServers]:
    servers = _PulseServers(pytestconfig)
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def pulse_server(_audioring_pulse_servers: _PulseServers) -> PulseServer:
    """The session's PulseAudio server, 48 kHz stereo, active in ``os.environ``.

    PortAudio shows it as the ALSA devices ``pulse`` and ``default``; play
    into it with ``pulse_server.play(...)``. Skips the test if PulseAudio
    cannot start (fails under ``CI=true``).
    """
    return _audioring_pulse_servers.get(*_DEFAULT_PULSE)


@pytest.fixture
def pulse_server_factory(
    _audioring_pulse_servers: _PulseServers,
) -> Iterator[Callable[..., PulseServer]]:
    """A function ``(rate=48000, channels=2) -> PulseServer``.

    The returned server is the active one (``PULSE_SERVER``) for the rest of
    the test, and PortAudio has re-scanned. Servers are reused across tests;
    afterwards the default server, if running, is active again.
    """

    def get(rate: int = 48000, channels: int = 2) -> PulseServer:
        return _audioring_pulse_servers.get(rate, channels)

    yield get
    default = _audioring_pulse_servers.servers.get(_DEFAULT_PULSE)
    if default is not None and default.running:
        _audioring_pulse_servers.activate(default)


@pytest.fixture
def jack_server_factory(pytestconfig: pytest.Config) -> Iterator[Callable[..., JackServer]]:
    """A function ``(rate=48000, period=256, channels=8, realtime=False, clock_error_ppm=0) -> JackServer``.

    Starts a private jackd (dummy driver) that PortAudio then shows as the
    JACK device ``system``; at most one runs at a time (another spec replaces
    it) and it stops at the end of the test. Starting takes well under 1 s.
    """
    from audioring.testing import JackServer, refresh_portaudio

    current: list[JackServer] = []

    def get(rate: int = 48000, period: int = 256, channels: int = 8,
            realtime: bool = False, clock_error_ppm: float = 0.0) -> JackServer:
        if current:
            old = current.pop()
            spec = (rate, period, channels, realtime, float(clock_error_ppm))
            if (old.rate, old.period, old.channels, old.realtime, old.clock_error_ppm) == spec and old.running:
                current.append(old)
                return old
            old.stop()  # also releases PortAudio's JACK client first
        server, error = JackServer(rate, period, channels, realtime=realtime, clock_error_ppm=clock_error_ppm), None
        try:
            server.start()
        except Exception as e:  # noqa: BLE001 - reported (skip, or failure under CI) below
            error = e
        if error is not None:  # reported outside `except`: no chained traceback
            clock = f", clock {clock_error_ppm:+g} ppm" if clock_error_ppm else ""
            what = f"jackd {rate} Hz x {channels} (period {period}{', realtime' if realtime else ''}{clock})"
            _unavailable(pytestconfig, what, error)
        current.append(server)
        refresh_portaudio()  # PortAudio connects to JACK only when it initializes
        return server

    yield get
    for server in current:
        server.stop()
    refresh_portaudio()
