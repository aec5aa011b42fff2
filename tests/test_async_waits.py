"""asyncio waits that end leave nothing behind (issue 17, item 7).

- Abandoned waits: while one wait on a loop stays pending, any number of timed-out and cancelled
  ``wait_frames`` (and ``astream`` blocks) leave the loop's waits, and the futures alive in the process, as
  they were; the pending waits still get their frames, in order.
- A loop closed with a wait pending prints nothing of audioring's on stderr when the wait's task is destroyed
  (asyncio's own "Task was destroyed but it is pending!" goes to the loop's exception handler, as always).
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import textwrap

import numpy as np

from audioring import Ring, _watch

#: Abandoned waits per kind: enough that a per-wait leftover shows (each used to keep ~250 bytes).
ABANDONED = 2000


def live_futures() -> int:
    """asyncio futures alive in this process (a leftover wait keeps its future)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, asyncio.Future) and not isinstance(obj, asyncio.Task))


async def abandon_waits(wait, count: int) -> None:
    """Let ``count`` waits time out and ``count`` more be cancelled while they wait."""
    for i in range(count):
        try:
            await wait(i, 0)
            raise AssertionError("a wait for an unwritten frame returned")
        except TimeoutError:
            pass
        task = asyncio.ensure_future(wait(i, None))
        await asyncio.sleep(0)  # the wait is in the heap now
        task.cancel()
        try:
            await task
            raise AssertionError("a cancelled wait returned")
        except asyncio.CancelledError:
            pass
        del task  # its exception's traceback holds the wait's frame (and future): the caller's, not a leftover


def test_abandoned_waits_leave_nothing_while_one_stays_pending():
    ring = Ring(1, 4096, "int16")

    async def main():
        loop = asyncio.get_running_loop()
        pending = asyncio.ensure_future(ring.wait_frames(1))

        async def wait(i, timeout):
            return await ring.wait_frames(2 + i, timeout=timeout)

        await abandon_waits(wait, 1)  # asyncio keeps the last cancellation's traceback: in the baseline too
        baseline = (live_futures(), _watch.entries(ring._core, loop))
        assert baseline[1] == 1
        await abandon_waits(wait, ABANDONED)
        after = (live_futures(), _watch.entries(ring._core, loop))
        ring.write(np.ones((1, 1), "int16"))
        return baseline, after, await asyncio.wait_for(pending, 10)

    baseline, after, written = asyncio.run(main())
    assert after == baseline  # (futures alive, the loop's waits): back to where they were
    assert written == 1  # the pending wait was kept, and resolved


def test_abandoned_stream_blocks_leave_nothing_while_a_consumer_waits():
    # The same through astream: blocks that time out, and consumers cancelled while they wait.
    ring = Ring(1, 4096, "int16")

    async def main():
        loop = asyncio.get_running_loop()
        pending = asyncio.ensure_future(ring.astream(1).__anext__())

        async def wait(i, timeout):
            return await ring.astream(1 + i % 64, timeout=timeout).__anext__()

        await abandon_waits(wait, 1)  # asyncio keeps the last cancellation's traceback: in the baseline too
        baseline = (live_futures(), _watch.entries(ring._core, loop))
        await abandon_waits(wait, ABANDONED)
        after = (live_futures(), _watch.entries(ring._core, loop))
        ring.write(np.full((1, 1), 7, "int16"))
        return baseline, after, await asyncio.wait_for(pending, 10)

    baseline, after, block = asyncio.run(main())
    assert baseline[1] == 1
    assert after == baseline
    assert block.tolist() == [[7]]


def test_pending_waits_among_abandoned_ones_resolve_in_order():
    # Dropping the ended entries must keep the heap's order: every pending wait, at its own frame, resolves
    # once that frame is written, lower frames first, whichever were abandoned around it.
    ring = Ring(1, 4096, "int16")
    pending_frames = list(range(1, 200, 3))

    async def main():
        loop = asyncio.get_running_loop()
        resolved: list[tuple[int, int]] = []

        async def pending_wait(frame):
            resolved.append((frame, await ring.wait_frames(frame)))

        tasks = [asyncio.ensure_future(pending_wait(frame)) for frame in reversed(pending_frames)]
        await asyncio.sleep(0)

        async def wait(i, timeout):
            return await ring.wait_frames(1 + i % 250, timeout=timeout)

        await abandon_waits(wait, ABANDONED)
        entries = _watch.entries(ring._core, loop)
        for _ in range(200):
            ring.write(np.ones((1, 1), "int16"))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return entries, resolved

    entries, resolved = asyncio.run(main())
    # Under twice the waits in progress, whatever was abandoned.
    assert entries < 2 * len(pending_frames)
    assert [frame for frame, _ in resolved] == pending_frames
    assert all(written >= frame for frame, written in resolved)


CLOSED_LOOP = r"""
import asyncio, gc, json
from audioring import Ring

ring = Ring(1, 4096, "int16")
reported = []
for make in (lambda: ring.wait_frames(10), lambda: ring.wait_frames(10, timeout=60),
             lambda: ring.astream(16).__anext__()):
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
    task = loop.create_task(make())
    loop.run_until_complete(asyncio.sleep(0.05))
    loop.close()
    del task, loop
    gc.collect()
# A closed loop's waits are dropped (their tasks destroyed) when a new loop waits on the ring.
try:
    asyncio.run(ring.wait_frames(10, timeout=0.01))
except TimeoutError:
    pass
gc.collect()
print(json.dumps(reported))
"""


def test_closing_a_loop_with_a_pending_wait_prints_nothing():
    done = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(CLOSED_LOOP)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # asyncio's own report of each destroyed task went to the loop's handler, not to stderr.
    assert json.loads(done.stdout) == ["Task was destroyed but it is pending!"] * 3
