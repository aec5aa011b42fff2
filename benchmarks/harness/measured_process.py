"""A recorder run as its own process, its CPU and wall time measured the same way whatever it is.

C programs (jack_capture), audioring's command line and the Python workers
are all measured from outside, alike, by watching the directory they write
into (nothing else is written there meanwhile): from the moment its files hold
`START_BYTES` (audio is being written: start-up, imports and opening the
device are left out) to the process's exit (finishing and closing counted).
CPU is the process's own user + system time, all its threads:
``/proc/PID/stat`` at the start, ``wait4``'s resource usage at exit. Write
throughput: the bytes the files grew by from the start to when they last grew,
over that time (a recorder that keeps up writes at the data rate).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

_TICKS = os.sysconf("SC_CLK_TCK")
START_BYTES = 1 << 20


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds of a running process (all threads), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15 of stat(5))


def _bytes_in(directory: Path) -> int:
    total = 0
    for entry in os.scandir(directory):
        try:
            total += entry.stat().st_size if entry.is_file() else 0
        except OSError:
            continue  # deleted or renamed while we looked
    return total


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def run_measured(command: Sequence[str], *, directory: Path, timeout: float, log_stem: Path,
                 env: Optional[dict] = None) -> dict:
    """Run `command` to its end, watching what it writes into `directory`: CPU and wall time from when the files
    there hold START_BYTES to its exit, and the write throughput.

    stdout and stderr go to ``log_stem.out`` / ``log_stem.err`` (their ends are returned). A process still
    running after `timeout` seconds is killed and reported so.
    """
    out_path, err_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env={**os.environ, **(env or {})})
    started = time.monotonic()
    began: Optional[float] = None  # when the files first held START_BYTES
    cpu_at_start: Optional[float] = None
    bytes_at_start = size = 0
    grew_at = started
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.monotonic()
        current = _bytes_in(directory)
        if current > size:
            size, grew_at = current, now
        if began is None and size >= START_BYTES:
            cpu_at_start, began, bytes_at_start = cpu_seconds(proc.pid), now, size
        if now - started > timeout:
            timed_out = True
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    ended = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen, so it never waits again
    final = _bytes_in(directory)
    if final > size:
        size, grew_at = final, ended  # it grew after the last look (at most one look's time ago)
    result = {
        "command": list(command),
        "returncode": proc.returncode,
        "cpu_total_s": usage.ru_utime + usage.ru_stime,
        "wall_total_s": ended - started,
        "stdout_tail": _tail(out_path),
        "stderr_tail": _tail(err_path),
    }
    if timed_out:
        result["error"] = f"still running after {timeout:.0f} s: killed"
    if began is None or cpu_at_start is None:
        said = (result["stderr_tail"].strip().splitlines() or ["nothing on stderr"])[-1]
        result.setdefault("error", f"never wrote {START_BYTES} bytes into {directory} (exit status "
                                   f"{proc.returncode}; its last line: {said[-400:]})")
        return result
    result.update(wall_s=ended - began, cpu_s=result["cpu_total_s"] - cpu_at_start, writing_s=grew_at - began,
                  bytes_written_measured=size - bytes_at_start)
    if result["writing_s"] > 0:
        result["throughput_mb_s"] = result["bytes_written_measured"] / result["writing_s"] / 1e6
    return result
