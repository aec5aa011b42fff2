"""Helpers shared by the tests that record through audioring."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from audioring import AudioRecord
from audioring.testing.pytest_plugin import _unavailable


def wait_for_frames(rec: AudioRecord, frames: int, timeout: float = 10.0) -> None:
    """Wait until ``rec`` has recorded ``frames`` frames; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while rec.frames_recorded < frames:
        assert time.monotonic() < deadline, f"only {rec.frames_recorded} of {frames} frames in {timeout} s"
        time.sleep(0.005)


def realtime_permitted() -> bool:
    """Whether this machine lets a process use SCHED_FIFO (root, CAP_SYS_NICE, rtprio limit)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False).returncode == 0


def require_realtime_scheduling(config: pytest.Config) -> None:
    """Skip without SCHED_FIFO, or fail under CI=true, like any server that cannot start."""
    if not realtime_permitted():
        _unavailable(config, "jackd -R (realtime)",
                     PermissionError("this machine does not permit realtime scheduling (SCHED_FIFO)"))
