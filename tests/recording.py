"""Helpers shared by the tests that record through audioring."""

from __future__ import annotations

import time

from audioring import AudioRecord


def wait_for_frames(rec: AudioRecord, frames: int, timeout: float = 10.0) -> None:
    """Wait until ``rec`` has recorded ``frames`` frames; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while rec.frames_recorded < frames:
        assert time.monotonic() < deadline, f"only {rec.frames_recorded} of {frames} frames in {timeout} s"
        time.sleep(0.005)
