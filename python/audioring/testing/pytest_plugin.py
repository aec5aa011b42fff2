"""Pytest fixtures that start real audio servers (see :mod:`audioring.testing`).

A server that cannot start skips the test on a developer's machine, but fails
it under ``CI=true``: CI must never pass by silently skipping real audio.
"""

from __future__ import annotations

import os

import pytest

from audioring.testing import JackServer, PulseServer, refresh_portaudio

_DEFAULT_PULSE = (48000, 2)


def _unavailable(what: str, error: BaseException):
    """Skip (developer) or fail (CI=true) because `what` could not start."""
    reason = f"{what} could not start: {type(error).__name__}: {error}"
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class _PulseServers:
    """PulseAudio servers of the session, by (rate, channels).

    Starting one takes about 2 s, so servers are kept for the session: the
    default one and the last other one (each runs a loopback that costs CPU).
    A spec that failed to start is not retried.
    """

    def __init__(self):
        self.servers: dict[tuple[int, int], PulseServer] = {}
        self.failed: dict[tuple[int, int], BaseException] = {}

    def get(self, rate: int, channels: int) -> PulseServer:
        key = (rate, channels)
        if key in self.failed:
            _unavailable(f"PulseAudio {rate} Hz x {channels}", self.failed[key])
        server = self.servers.get(key)
        if server is None or not server.running:
            for other in [k for k in self.servers if k not in (key, _DEFAULT_PULSE)]:
                self.servers.pop(other).stop()
            server = PulseServer(rate, channels)
            try:
                server.start()
            except Exception as e:
                self.failed[key] = e
            if key in self.failed:  # reported outside `except`: no chained traceback
                _unavailable(f"PulseAudio {rate} Hz x {channels}", self.failed[key])
            self.servers[key] = server
        self.activate(server)
        return server

    @staticmethod
    def activate(server: PulseServer) -> None:
        # PULSE_SERVER selects the server for the ALSA `pulse` device; the
        # re-scan makes sure PortAudio lists that device at all.
        server.activate()
        refresh_portaudio()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def _pulse_servers():
    servers = _PulseServers()
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def pulse_server(_pulse_servers) -> PulseServer:
    """The session's PulseAudio server, 48 kHz stereo, active in ``os.environ``.

    PortAudio shows it as the ALSA devices ``pulse`` and ``default``; play
    into it with ``pulse_server.play(...)``.
    """
    return _pulse_servers.get(*_DEFAULT_PULSE)


@pytest.fixture
def pulse_server_factory(_pulse_servers):
    """A function ``(rate=48000, channels=2) -> PulseServer``.

    The returned server is the active one (``PULSE_SERVER``) for the rest of
    the test, and PortAudio has re-scanned. Servers are reused across tests;
    afterwards the default server, if running, is active again.
    """

    def get(rate: int = 48000, channels: int = 2) -> PulseServer:
        return _pulse_servers.get(rate, channels)

    yield get
    default = _pulse_servers.servers.get(_DEFAULT_PULSE)
    if default is not None and default.running:
        _pulse_servers.activate(default)


@pytest.fixture
def jack_server_factory():
    """A function ``(rate=48000, period=256, channels=8) -> JackServer``.

    Starts a private jackd (dummy driver) that PortAudio then shows as the
    JACK device ``system``; at most one runs at a time (another spec replaces
    it) and it stops at the end of the test. Starting takes well under 1 s.
    """
    current: list[JackServer] = []

    def get(rate: int = 48000, period: int = 256, channels: int = 8) -> JackServer:
        if current:
            old = current.pop()
            if (old.rate, old.period, old.channels) == (rate, period, channels) and old.running:
                current.append(old)
                return old
            old.stop()  # also releases PortAudio's JACK client first
        server, error = JackServer(rate, period, channels), None
        try:
            server.start()
        except Exception as e:
            error = e
        if error is not None:  # reported outside `except`: no chained traceback
            _unavailable(f"jackd {rate} Hz x {channels} (period {period})", error)
        current.append(server)
        refresh_portaudio()  # PortAudio connects to JACK only when it initializes
        return server

    yield get
    for server in current:
        server.stop()
    refresh_portaudio()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "audio_server: needs a real audio server started by audioring.testing "
        "(skipped if it cannot start; fails under CI=true)",
    )
