"""What readers of a recording (`AudioRecord`, `SharedRecording`) count alike: the current recording's frames."""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

from . import _core, _watch


def recorded_frames(ring: _core.FrameRing) -> int:
    """Frames of the ring's current recording: ``frames_written - first_frame``, from one consistent pair.

    A restart (``FrameRing::clear``) stores the new first frame before it
    publishes its zeros, so a pair read in between (first moved, written
    not yet) would count negative, and a first read before a restart with
    written read after it would count the zeros. The pair is taken again
    until first_frame is the same on both sides of written and written has
    reached it; a restart in progress (one memset) is waited out.
    """
    while True:
        first = ring.first_frame
        written = ring.frames_written
        if written >= first and ring.first_frame == first:
            return written - first
        os.sched_yield()


async def wait_recorded(ring: _core.FrameRing, frames: int, timeout: Optional[float],
                        producing: Callable[[], bool]) -> tuple[_core.WaitStatus, int]:
    """Wait in asyncio until the current recording holds ``frames`` frames; return the status and the count.

    The count is that of the recording current when the wait ends: a
    restart begins the count again (as ``frames_recorded`` does), and the
    zeros it writes are never counted. Ends early (``interrupted``) when
    ``producing()`` says no more frames come.
    """
    def due() -> int:
        return ring.first_frame + frames

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        status = await _watch.wait_until_written(ring, due, left, producing)
        recorded = recorded_frames(ring)
        # A restart between due() and the look at frames_written can pass for readiness: look again.
        if status != _core.WaitStatus.ready or recorded >= frames:
            return status, recorded
