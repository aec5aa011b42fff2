"""JACK servers for the benchmark (``audioring.testing.JackServer``), the device PortAudio sees on them,
what jackd logged, and whether realtime scheduling was really granted.

One run uses one server name for all its servers, one server at a time:
JACK's server registry (``/dev/shm/jack-shm-registry``) has 8 slots for the
whole machine, and jackd reclaims the slot of a dead server of the same name
but never one of another name.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

SERVER_NAME = f"audioring-bench-{os.getpid()}"

#: Linux scheduling policies that are realtime (SCHED_FIFO, SCHED_RR).
_REALTIME_POLICIES = {1: "SCHED_FIFO", 2: "SCHED_RR"}


class RealtimeUnavailable(RuntimeError):
    """A realtime jackd (-R) was asked for and cannot be had here; the message says why."""


def realtime_supported() -> Optional[str]:
    """None if ``JackServer`` takes ``realtime=``, else why not."""
    from audioring.testing import JackServer

    if "realtime" not in inspect.signature(JackServer).parameters:
        return "this audioring.testing.JackServer has no realtime option (jackd -R)"
    return None


@contextlib.contextmanager
def jack_server(rate: int, period: int, channels: int, realtime: bool = False, attempts: int = 4,
                clock_error_ppm: float = 0.0) -> Iterator[Any]:
    """A started jackd with the dummy driver (``-R`` if `realtime`; its clock `clock_error_ppm` off, under
    libfaketime, if non-zero), stopped on exit.

    A full server registry (other servers running, or slots leaked by killed
    servers) is retried a few times, then reported. With `realtime`, raises
    RealtimeUnavailable if jackd runs but none of its threads got a realtime
    policy (the machine refused it): a row labelled realtime must be realtime.
    """
    from audioring.testing import AudioServerError, JackServer

    if realtime:
        reason = realtime_supported()
        if reason:
            raise RealtimeUnavailable(reason)
    options: dict = {"realtime": True} if realtime else {}
    if clock_error_ppm:
        options["clock_error_ppm"] = clock_error_ppm
    for attempt in range(attempts):
        server = JackServer(rate, period, channels, name=SERVER_NAME, **options)
        try:
            server.start()
            break
        except AudioServerError as error:
            if "Too many servers" not in str(error) or attempt == attempts - 1:
                raise AudioServerError(
                    f"{error}\n(JACK's server registry /dev/shm/jack-shm-registry holds 8 servers for the whole "
                    "machine; slots of killed jackd processes stay taken until a server of the same name starts)"
                ) from error
            time.sleep(3)
    try:
        if realtime:
            status = scheduling(server.pid)
            if not status["realtime_threads"]:
                raise RealtimeUnavailable(f"jackd -R started, but none of its threads runs with a realtime policy "
                                          f"({status}); jackd said: {log_text(server)[-600:]!r}")
        yield server
    finally:
        server.stop()


def scheduling(pid: Optional[int]) -> dict:
    """The scheduling policies of a process's threads: how many are realtime, and which."""
    realtime = {}
    threads = 0
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")) if pid else []:
        try:
            tid = int(task.name)
            policy = os.sched_getscheduler(tid)
            name = (task / "comm").read_text().strip()
        except (OSError, ValueError):
            continue
        threads += 1
        if policy in _REALTIME_POLICIES:
            priority = os.sched_getparam(tid).sched_priority
            realtime[f"{name}:{tid}"] = f"{_REALTIME_POLICIES[policy]} {priority}"
    return {"threads": threads, "realtime_threads": realtime}


def jack_device(sd: Any) -> int:
    """Index of PortAudio's JACK capture device ``system``."""
    hostapis = sd.query_hostapis()
    for device in sd.query_devices():
        if device["name"] == "system" and "JACK" in hostapis[device["hostapi"]]["name"]:
            return int(device["index"])
    raise RuntimeError(
        f"no JACK device 'system' (is jackd running, and JACK_DEFAULT_SERVER set?):\n{sd.query_devices()}"
    )


def log_text(server: Any) -> str:
    try:
        return (Path(server.directory) / "jackd.log").read_text(errors="replace")
    except (OSError, TypeError):
        return ""


class JackLog:
    """What jackd logged since the last `since()`: cycles missed, and which client was late."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.seen = len(log_text(server).splitlines())

    def since(self) -> dict:
        lines = log_text(self.server).splitlines()
        new, self.seen = lines[self.seen:], len(lines)
        return summarize_log(new)


def summarize_log(lines: list) -> dict:
    """Graph cycles jackd did not complete ("Process error"), the clients it blamed, its driver's own lateness."""
    late: dict = {}
    for line in lines:
        if "was not finished" in line and "client = " in line:
            client = line.split("client = ", 1)[1].split(" was not finished", 1)[0]
            late[client] = late.get(client, 0) + 1
    return {
        "process_errors": sum("Process error" in line for line in lines),
        "late_clients": late,
        "portaudio_late": sum(v for k, v in late.items() if k.startswith("PortAudio")),
        "driver_late": sum("JackTimedDriver::Process XRun" in line for line in lines),
    }


def realtime_text(status: dict) -> str:
    """ "1 of 4 threads (SCHED_FIFO 10)" for a scheduling() result."""
    policies = sorted(set(status.get("realtime_threads", {}).values()))
    count = len(status.get("realtime_threads", {}))
    return f"{count} of {status.get('threads', '?')} threads" + (f" ({', '.join(policies)})" if policies else "")


SERVER_KINDS = {
    False: "jackd -r (no realtime scheduling)",
    True: "jackd -R (realtime scheduling)",
}
