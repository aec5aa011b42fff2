"""Process helpers for the server daemons: liveness by pid, stopping, logs, directories.

The servers daemonize (PulseAudio) or run in their own session (jackd), so
they are watched and stopped by pid through ``/proc`` (Linux):

* A daemon reparented to PID 1 is a zombie for a moment after it exits: a
  zombie counts as exited here (:func:`pid_alive`).
* A pid is signalled only while its command line still names the program
  started, so a recycled pid is never hit (:func:`kill_pid`).
* :func:`kill_pid` returns only once the process is gone: a second jackd must
  not start before the first has exited (it would find the first one's
  shared memory and fail).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from ._errors import AudioServerError

__all__ = ["kill_pid", "pid_alive", "pid_cmdline", "private_dir", "program_pids", "program_running", "stop_popen",
           "tail"]


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not reaped yet) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The state follows the parenthesized command name.
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def pid_cmdline(pid: int) -> list[str]:
    """The command line of `pid` (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def kill_pid(pid: int, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM `pid`, then SIGKILL after `timeout`; wait until it has exited.

    `marker` must occur in its command line, so that a recycled pid is never
    signalled.

    Raises
    ------
    AudioServerError
        If the process survives SIGKILL for 5 s.
    """
    if not pid_alive(pid) or not any(marker in a for a in pid_cmdline(pid)):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.02)
    raise AudioServerError(f"process {pid} ({marker}) did not exit")


def stop_popen(proc: Optional[subprocess.Popen[Any]], timeout: float = 5.0) -> None:
    """Terminate and reap a child (kill it if it does not exit in time); close its pipes."""
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


def tail(path: Path, n: int = 2000) -> str:
    """The last `n` characters of a log file ("" if it cannot be read)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def program_pids(comm: str) -> list[int]:
    """Processes named `comm` on this machine (zombies included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def program_running(comm: str) -> bool:
    """True if a process named `comm` exists on this machine (zombies included)."""
    return bool(program_pids(comm))


def private_dir(prefix: str) -> Path:
    """A new private (0700) temporary directory with a short path.

    Unix socket paths are limited to 108 bytes, so a long ``TMPDIR`` is
    replaced by ``/tmp``.
    """
    base = tempfile.gettempdir()
    if len(base) > 60 and os.path.isdir("/tmp"):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
