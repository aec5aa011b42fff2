"""The native ring writer alone: ``FrameRing::write`` in C++ (``ring_write.cpp``, no Python) next to
``std::memcpy`` of the same blocks.

GB/s for blocks of 64 ... 65536 frames of 2 and 8 float32 channels, on
mirrored (memfd) and plain memory, next to ``std::memcpy`` of the same blocks
into an ordinary buffer of the ring's size with the same wrap-around. The
ring holds 10 s at 48 kHz, the working set of a recorder that keeps the last
seconds. The three writers run interleaved in one process; medians over
repetitions. Plain memory stores each frame twice, so about half of memcpy is
its ceiling. (``Ring.latest(n)`` from Python is in the read case.)
"""

from __future__ import annotations

import json
import shlex

from harness.context import RunContext
from harness.native import run_checked
from reports.ring_write import TITLE, markdown, targets

__all__ = ["TITLE", "markdown", "run", "targets"]


def run(ctx: RunContext) -> dict:
    program = ctx.helper("ring_write")
    command = [str(program)] + (["--quick"] if ctx.quick else [])
    output = run_checked(command, "ring_write")
    data = json.loads(output.stdout)
    if output.stderr.strip():
        data["stderr"] = output.stderr.strip()
    data["command"] = shlex.join(command)
    return data
