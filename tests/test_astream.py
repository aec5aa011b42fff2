"""asyncio streams (issue #12): ``AudioRecord.astream``, ``Ring.astream``, ``wait_frames``, under the battery
``stream()`` gets.

- Lossless: every frame once, in order, for every dtype, a free-running 10**6-frame ramp, overlapping windows,
  blocks of a converting recorder.
- Overruns: ``frames_lost`` is exactly the gap in the ramp (the checks of test_overruns.py, shared through
  tests/overrun_checks.py), also with overlapping windows and when the block in use is overwritten; the stream
  goes on.
- Ends: ``TimeoutError`` within its timeout; ``stop()`` ends the iteration after the last complete block;
  ``close()`` from another thread or task wakes every waiting consumer with ``RecorderClosedError``.
- Costs: 200 consumers on one loop share one watcher thread and get the same frames; while they wait the
  process uses no CPU; the watcher thread sleeps untouched while no consumer waits, however much audio flows.
- Cancellation (``task.cancel()``, ``asyncio.wait_for``, ``asyncio.timeout``) leaves no descriptor, thread,
  task or registered reader behind, and the stream goes on afterwards; ``close()`` joins the watcher thread
  and closes its descriptors; so does a ``Ring`` going away.
- Processes and loops: a forked child refuses the parent's recorder and ring; consumers in several event
  loops (threads) of one process share one watcher thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audioring import AsyncFrameStream, AudioRecord, OverrunError, RecorderClosedError, Ring, VirtualInput
from overrun_checks import Delivery, check_exact_gaps, check_overlapping_windows
from recording import RAMP_MODULUS, assert_consecutive, ramp_counter

RATE = 48000
#: Generous bound on any single test's event loop: a hang fails instead of blocking the suite.
GUARD_S = 120


def run(coroutine):
    """asyncio.run, failing (not hanging) after GUARD_S seconds."""
    async def guarded():
        return await asyncio.wait_for(coroutine, GUARD_S)

    return asyncio.run(guarded())


# ---- measuring the process ----------------------------------------------------------------------


def watcher_threads() -> list[int]:
    """Thread ids of this process's frame watchers (the native threads are named ``audioring-watch``)."""
    found = []
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            if Path(f"/proc/self/task/{tid}/comm").read_text().strip() == "audioring-watch":
                found.append(int(tid))
    return found


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def kernel_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def wakeups(tid: int) -> int:
    """How often thread ``tid`` was scheduled in (voluntary + involuntary context switches)."""
    status = Path(f"/proc/self/task/{tid}/status").read_text().splitlines()
    return sum(int(line.split()[1]) for line in status if "ctxt_switches:" in line)


def registered_readers(loop: asyncio.AbstractEventLoop) -> int:
    """Descriptors the loop watches (its own self-pipe included)."""
    return len(loop._selector.get_map())  # type: ignore[attr-defined]  # the selector loop's own map


# ---- lossless -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(RAMP_MODULUS))
def test_astream_delivers_every_frame_once_in_order(dtype):
    total = 200_000
    rec = AudioRecord(1, RATE, 4096, dtype=dtype, device=VirtualInput("ramp", speed=20), blocksize=512)

    async def consume():
        expected, blocks = None, 0
        async for block in rec.astream(1000, timeout=2):
            expected = assert_consecutive(ramp_counter(block), RAMP_MODULUS[dtype], expected)
            blocks += 1
            if blocks == total // 1000:
                break
        return blocks

    with rec:
        assert run(consume()) == total // 1000  # the stream did not end early


def test_a_free_running_ramp_of_a_million_frames_streams_losslessly():
    total, blocksize = 1_000_000, 4097  # odd: blocks straddle the producer's
    # Free-running, the producer outruns the consumer; the ring holds the whole run, so the
    # consumer lags but must still get every frame once, in order.
    rec = AudioRecord(1, RATE, 65536, dtype="int32", headroom=total,
                      device=VirtualInput("ramp", realtime=False, frames=total))

    async def consume():
        expected, seen = 0, 0
        async for block in rec.astream(blocksize, timeout=5):
            expected = assert_consecutive(ramp_counter(block), 2**32, expected)
            seen += len(block)
            await asyncio.sleep(0)  # other tasks run between blocks
            if seen + blocksize > total:
                break
        return seen

    with rec:
        seen = run(consume())
    assert seen > total - blocksize and rec.stats.frames == total


def test_a_paced_ramp_with_a_busy_loop_streams_losslessly():
    # Real time (10x), with the loop busy in other tasks between blocks: every frame once.
    rec = AudioRecord(1, RATE, 8192, dtype="int32", device=VirtualInput("ramp", speed=10))

    async def busy():
        while True:
            sum(range(20_000))  # about a millisecond without yielding
            await asyncio.sleep(0)

    async def consume():
        others = [asyncio.create_task(busy()) for _ in range(3)]
        expected, blocks = 0, 0
        try:
            async for block in rec.astream(2400, timeout=2):
                expected = assert_consecutive(ramp_counter(block), 2**32, expected)
                blocks += 1
                if blocks == 200:  # 480,000 frames, 1 s at 10x
                    break
        finally:
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        return blocks

    with rec:
        assert run(consume()) == 200


def test_astream_overlapping_windows():
    rec = AudioRecord(1, RATE, 4096, dtype="int32", device=VirtualInput("ramp", speed=20))

    async def consume():
        blocks = []
        async for block in rec.astream(1000, hop=250, timeout=2):
            blocks.append(ramp_counter(block))
            if len(blocks) == 20:
                break
        return blocks

    with rec:
        blocks = run(consume())
    assert len(blocks) == 20  # the stream did not end early
    for previous, block in zip(blocks, blocks[1:]):
        np.testing.assert_array_equal(block[:750], previous[250:])
    assert_consecutive(np.concatenate([b[:250] for b in blocks]), 2**32)


def test_a_converting_recorder_streams_its_converted_frames():
    rec = AudioRecord(1, 16000, 16000, dtype="int16", device=VirtualInput("sine", 1000, rate=48000))

    async def consume():
        starts = []
        async for block in rec.astream(480, timeout=2):
            assert block.shape == (480, 1) and block.dtype == np.int16
            starts.append(rec.frame_of(block))
            if len(starts) == 50:
                break
        return starts

    with rec:
        assert rec.converting
        starts = run(consume())
    assert starts == list(range(rec.first_frame, rec.first_frame + 50 * 480, 480))


# ---- overruns: the accounting test_overruns.py holds stream() to ---------------------------------


async def consume_with_random_stalls(rec: AudioRecord, blocksize: int, hop: int, rounds: int, seed: int):
    """Stream asynchronously, stalling now and then; return the deliveries and the errors before each."""
    rng = random.Random(seed)
    stream = rec.astream(blocksize, hop=hop, timeout=2, start=rec.first_frame)
    events: list = []
    errors: list[OverrunError] = []
    while len(events) < rounds:
        try:
            block = await stream.__anext__()
        except OverrunError as error:
            assert error.position == stream.position
            errors.append(error)
            continue
        events.append((Delivery(rec, block), errors))
        errors = []
        stall = rng.choice([0, 0, 0, 0, 0.0005, 0.002, 0.02])
        if stall:
            await asyncio.sleep(stall)
    return events


@pytest.mark.parametrize("blocksize", [128, 1000, 4096])
def test_astream_overrun_frames_lost_is_the_exact_gap_in_the_ramp(blocksize):
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0, device=VirtualInput("ramp", speed=10))
    with rec:
        events = run(consume_with_random_stalls(rec, blocksize, blocksize, rounds=400, seed=blocksize))
    overruns = check_exact_gaps(events, blocksize, rec.first_frame)
    assert overruns >= 3, f"only {overruns} overruns: the test did not stress the consumer"
    assert sum(1 for _, errors in events if not errors) > 100


@pytest.mark.parametrize(("blocksize", "hop"), [(1000, 250), (1024, 1023)])
def test_astream_overrun_with_overlapping_windows(blocksize, hop):
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0, device=VirtualInput("ramp", speed=10))
    with rec:
        events = run(consume_with_random_stalls(rec, blocksize, hop, rounds=300, seed=hop))
    overruns = check_overlapping_windows(events, blocksize, hop, rec.first_frame)
    assert overruns >= 3, f"only {overruns} overruns: the test did not stress the consumer"


def test_astream_overrun_when_the_block_in_use_is_overwritten_counts_it_as_lost():
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0, device=VirtualInput("ramp", speed=2))

    async def consume():
        stream = rec.astream(1000, timeout=2, start=rec.frames_written)
        delivered = [Delivery(rec, await stream.__anext__()) for _ in range(3)]
        assert all(d.valid for d in delivered)
        for _ in range(5):
            await asyncio.sleep(0.2)  # 19,200 frames: laps the 4,096-frame ring several times
            with pytest.raises(OverrunError) as info:
                await stream.__anext__()
            error = info.value
            previous = delivered[-1]
            assert error.position - error.frames_lost == previous.start
            resumed = Delivery(rec, await stream.__anext__())
            assert resumed.start == error.position and resumed.valid
            assert int(resumed.counters[0]) - int(previous.counters[0]) == error.frames_lost
            following = Delivery(rec, await stream.__anext__())
            assert int(following.counters[0]) == int(resumed.counters[-1]) + 1
            delivered += [resumed, following]

    with rec:
        run(consume())


# ---- how a stream ends --------------------------------------------------------------------------


def test_astream_times_out_when_no_audio_arrives():
    rec = AudioRecord(1, RATE, 4096, device=VirtualInput("ramp", realtime=False, frames=1500))

    async def consume():
        stream = rec.astream(1000, timeout=0.2)
        await stream.__anext__()
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no audio"):
            await stream.__anext__()
        return time.monotonic() - started

    with rec:
        assert 0.15 < run(consume()) < 2


@pytest.mark.parametrize("stopper", ["task", "thread"])
def test_stop_ends_the_iteration_after_the_last_complete_block(stopper):
    rec = AudioRecord(1, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=4), blocksize=300)

    async def consume():
        loop = asyncio.get_running_loop()
        if stopper == "task":
            loop.call_later(0.3, rec.stop)
        else:
            threading.Timer(0.3, rec.stop).start()
        counters = [ramp_counter(block) async for block in rec.astream(1000, timeout=5)]
        return counters

    with rec:
        counters = run(consume())
        # Every complete block recorded before the stop was delivered, consecutively, from frame 0.
        assert len(counters) == rec.frames_recorded // 1000 > 10
        assert_consecutive(np.concatenate(counters), 2**32, 0)
        assert not rec.recording


@pytest.mark.parametrize("closer", ["task", "thread"])
def test_close_wakes_every_waiting_consumer_with_recorder_closed_error(closer):
    rec = AudioRecord(1, RATE, RATE * 10, device=VirtualInput("sine", 440))
    fds_before, threads_before = fds(), kernel_threads()  # (the virtual input's thread runs from here to close())
    rec.start_recording()

    async def wait_for_a_far_block():
        async for _ in rec.astream(RATE * 10, start=rec.frames_written, timeout=30):
            pass

    async def main():
        consumers = [asyncio.create_task(wait_for_a_far_block()) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert len(watcher_threads()) == 1
        if closer == "task":
            rec.close()
        else:
            closing = threading.Thread(target=rec.close)
            closing.start()
            await asyncio.get_running_loop().run_in_executor(None, closing.join)
        return await asyncio.gather(*consumers, return_exceptions=True)

    outcomes = run(main())
    assert len(outcomes) == 5 and all(isinstance(o, RecorderClosedError) for o in outcomes), outcomes
    gc.collect()
    # close() joined the watcher thread; its loop's bell closed once the loop had woken its consumers.
    assert watcher_threads() == []
    assert (fds(), kernel_threads()) == (fds_before, threads_before)


def test_astream_requires_recording_and_an_open_recorder():
    rec = AudioRecord(1, RATE, 1000, device=VirtualInput())
    with pytest.raises(RuntimeError, match="start_recording"):
        rec.astream(100)
    with pytest.raises(ValueError, match="blocksize"):
        rec.astream(0)
    rec.close()
    with pytest.raises(RecorderClosedError, match="closed"):
        rec.astream(100)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"blocksize": 0}, ValueError, "blocksize"),
        ({"blocksize": 100.0}, TypeError, "blocksize"),
        ({"hop": 101}, ValueError, "hop"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": float("nan")}, ValueError, "timeout"),
        ({"start": 1.0}, TypeError, "start"),
        ({"start": 2**62 + 1}, ValueError, "start"),
    ],
    ids=repr,
)
def test_astream_and_wait_frames_name_the_bad_argument(kwargs, error, match):
    with AudioRecord(1, RATE, RATE, device=VirtualInput("ramp", speed=4)) as rec:
        with pytest.raises(error, match=match):
            rec.astream(**{"blocksize": 100, **kwargs})
        if "timeout" in kwargs:
            with pytest.raises(error, match=match):
                run(rec.wait_frames(100, **kwargs))
        with pytest.raises(TypeError, match="frames"):
            run(rec.wait_frames(1.5))


def test_astream_takes_any_timeout_and_start():
    with AudioRecord(1, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=4)) as rec:

        async def main():
            await rec.wait_frames(1000, timeout=5)
            for timeout in (0, 1e-9, 2, float("inf"), 10**400):
                stream = rec.astream(100, timeout=timeout, start=rec.frames_written - 100)
                assert (await stream.__anext__()).shape == (100, 1)  # those frames are there: no wait at all
            stream = rec.astream(100, timeout=10**400, start=rec.frames_written)
            assert (await stream.__anext__()).shape == (100, 1)  # waits for the next frames, as long as it takes
            future = rec.astream(100, timeout=0.05, start=2**62)
            with pytest.raises(TimeoutError, match="no audio"):
                await future.__anext__()
            # Never recorded (cleared, or before any recording): it begins where the recording does.
            assert rec.astream(100, timeout=2, start=-(2**62)).position == rec.first_frame
            capacity = rec.frames_written - rec.first_frame + rec.headroom + rec.buffer_size
            await rec.wait_frames(capacity + 100, timeout=10)
            past = rec.astream(100, timeout=2, start=rec.first_frame)  # recorded, then overwritten
            with pytest.raises(OverrunError) as info:
                await past.__anext__()
            assert info.value.frames_lost == info.value.position - rec.first_frame
            assert rec.frame_of(await past.__anext__()) == info.value.position

        run(main())


def test_an_async_stream_cannot_be_pickled_or_copied():
    import copy
    import pickle

    with AudioRecord(1, RATE, RATE, device=VirtualInput()) as rec:
        stream = rec.astream(100)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(stream)
        with pytest.raises(TypeError, match="cannot be pickled"):
            copy.copy(stream)


def test_a_stream_is_iterated_by_one_task_at_a_time():
    rec = AudioRecord(1, RATE, RATE, device=VirtualInput("sine", 440))

    async def main():
        stream = rec.astream(RATE, timeout=5)
        first = asyncio.create_task(stream.__anext__())
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="another task"):
            await stream.__anext__()
        assert (await first).shape == (RATE, 1)  # the first task was not disturbed
        assert isinstance(stream, AsyncFrameStream)

    with rec:
        run(main())


# ---- cancellation, and what a watcher leaves behind ---------------------------------------------------


def test_cancellation_leaves_nothing_behind():
    rec = AudioRecord(1, RATE, RATE * 10, device=VirtualInput("sine", 440))
    before_any_wait = (fds(), kernel_threads())  # (the virtual input's thread runs from here to close())
    rec.start_recording()

    async def main():
        loop = asyncio.get_running_loop()
        readers, tasks = registered_readers(loop), len(asyncio.all_tasks())  # the loop's own (its self-pipe)
        far = rec.astream(RATE * 10, start=rec.frames_written, timeout=60)  # a block that will not come
        far_start = far.position
        # Warm up: the watcher thread and this loop's bell (a descriptor) exist from the first wait on;
        # the loop watches the bell only while someone waits, and stops at its next turn once no one does.
        await rec.astream(480, timeout=2).__anext__()
        await asyncio.sleep(0)
        baseline = (fds(), kernel_threads(), readers, tasks)
        assert baseline == (fds(), kernel_threads(), registered_readers(loop), len(asyncio.all_tasks()))
        assert len(watcher_threads()) == 1
        for _ in range(100):
            task = asyncio.create_task(far.__anext__())
            await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(far.__anext__(), 0.001)
            if sys.version_info >= (3, 11):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.001):
                        await far.__anext__()
            # Many waiting at once, then all cancelled together.
            many = [asyncio.create_task(rec.astream(RATE, start=rec.frames_written + RATE).__anext__())
                    for _ in range(20)]
            await asyncio.sleep(0)
            for task in many:
                task.cancel()
            await asyncio.gather(*many, return_exceptions=True)
        await asyncio.sleep(0)  # the loop's next turn
        after = (fds(), kernel_threads(), registered_readers(loop), len(asyncio.all_tasks()))
        assert after == baseline, f"(fds, threads, readers, tasks) {baseline} -> {after}"
        # The cancelled stream was left where it was: it still delivers.
        near = rec.astream(480, timeout=2, start=rec.frames_written)
        assert (await near.__anext__()).shape == (480, 1)
        assert far.position == far_start
        rec.close()  # joins the watcher thread; the idle bell's descriptor goes with the watcher

    try:
        run(main())
    finally:
        rec.close()  # also when the test failed: a watcher thread left running would fail the next tests
    gc.collect()
    assert watcher_threads() == []
    assert (fds(), kernel_threads()) == before_any_wait


def test_a_ring_that_goes_takes_its_watcher_thread_and_descriptors():
    before = (fds(), kernel_threads())
    ring = Ring(1, 4096, "int16")

    async def main(ring: Ring) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, ring.write, np.zeros((100, 1), "int16"))
        assert (await ring.astream(100, timeout=2).__anext__()).shape == (100, 1)
        assert len(watcher_threads()) == 1

    run(main(ring))
    del ring
    gc.collect()
    assert watcher_threads() == []
    assert (fds(), kernel_threads()) == before


# ---- many consumers, and what waiting costs ----------------------------------------------------------


def test_two_hundred_consumers_on_one_loop_get_every_frame_and_share_one_thread():
    rec = AudioRecord(1, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=2), blocksize=480)

    watchers: list[int] = []

    async def consume(stream: AsyncFrameStream) -> np.ndarray:
        counters = []
        async for block in stream:
            counters.append(ramp_counter(block))
            watchers.append(len(watcher_threads()))
            if len(counters) == 10:
                break
        return np.concatenate(counters)

    async def main():
        streams = [rec.astream(4800, timeout=5) for _ in range(200)]
        return await asyncio.gather(*(consume(s) for s in streams))

    with rec:
        results = run(main())
    assert max(watchers) == 1  # one watcher thread for all 200
    for counters in results:
        assert_consecutive(counters, 2**32, 0)
        np.testing.assert_array_equal(counters, results[0])  # everyone got the same 48,000 frames


def test_two_hundred_waiting_consumers_cost_nothing():
    ring = Ring(1, 48000, "int16")

    async def main():
        threads = kernel_threads()
        consumers = [asyncio.create_task(ring.astream(480, timeout=30).__anext__()) for _ in range(200)]
        await asyncio.sleep(0.2)  # all waiting
        assert len(watcher_threads()) == 1 and kernel_threads() == threads + 1  # one thread for all of them
        (tid,) = watcher_threads()
        cpu, wakes = time.process_time(), wakeups(tid)
        await asyncio.sleep(1.0)
        cpu, wakes = time.process_time() - cpu, wakeups(tid) - wakes
        ring.write(np.arange(480, dtype="int16").reshape(480, 1))  # one write wakes them all
        blocks = await asyncio.gather(*consumers)
        return cpu, wakes, blocks

    cpu, wakes, blocks = run(main())
    print(f"\n200 waiting consumers: {cpu * 1000:.2f} ms of CPU in 1 s, watcher woken {wakes} times")
    assert cpu < 0.02, f"{cpu:.4f} s of CPU in 1 s while 200 consumers waited"
    assert wakes == 0
    assert all(block[:, 0].tolist() == list(range(480)) for block in blocks)


def test_the_watcher_sleeps_untouched_while_no_consumer_waits():
    # Audio keeps flowing (a block every 5 ms) but no one waits: the watcher thread sleeps on its own
    # condition, not on the ring, so no publish wakes it (and the producer has no waiter to wake).
    rec = AudioRecord(1, RATE, RATE, device=VirtualInput("sine", 440), blocksize=240)

    async def main():
        await rec.astream(480, timeout=2).__anext__()  # the watcher exists now
        await asyncio.sleep(0.05)
        (tid,) = watcher_threads()
        # SCHED_BATCH: woken by the producer, it must not preempt the audio thread inside its callback.
        assert os.sched_getscheduler(tid) == os.SCHED_BATCH
        idle = wakeups(tid)
        frames = rec.frames_recorded
        await asyncio.sleep(0.5)
        idle = wakeups(tid) - idle
        assert rec.frames_recorded - frames > 20000  # audio flowed meanwhile
        # The control: while a consumer waits, the same thread is woken by the publishes.
        busy = wakeups(tid)
        await rec.astream(RATE // 2, start=rec.frames_written, timeout=5).__anext__()
        return idle, wakeups(tid) - busy

    with rec:
        idle, busy = run(main())
    print(f"\nwatcher wake-ups: {idle} in 0.5 s idle, {busy} while one consumer waited 0.5 s")
    assert idle == 0
    assert busy > 20


def test_consumers_in_several_event_loops_share_one_watcher():
    rec = AudioRecord(1, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=2))
    results: dict[int, np.ndarray] = {}
    threads_seen: list[int] = []

    async def consume(key: int) -> None:
        counters = []
        async for block in rec.astream(2400, timeout=5):
            counters.append(ramp_counter(block))
            threads_seen.append(len(watcher_threads()))
            if len(counters) == 20:
                break
        results[key] = np.concatenate(counters)

    with rec:
        loops = [threading.Thread(target=run, args=(consume(k),)) for k in range(4)]
        for thread in loops:
            thread.start()
        for thread in loops:
            thread.join(timeout=GUARD_S)
    assert sorted(results) == [0, 1, 2, 3]
    for counters in results.values():
        assert_consecutive(counters, 2**32, 0)
    assert max(threads_seen) == 1


# ---- wait_frames ------------------------------------------------------------------------------------


def test_wait_frames():
    rec = AudioRecord(1, RATE, RATE, device=VirtualInput("sine", 440, speed=2))

    async def main():
        with pytest.raises(RuntimeError, match="start_recording"):
            await rec.wait_frames(100)
        rec.start_recording()
        got = await rec.wait_frames(RATE // 2, timeout=5)
        assert got >= RATE // 2 and rec.frames_recorded >= RATE // 2
        assert await rec.wait_frames(0) >= got  # already there: at once
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="frames recorded"):
            await rec.wait_frames(RATE * 1000, timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        # A stop ends the wait with what was recorded.
        asyncio.get_running_loop().call_later(0.1, rec.stop)
        short = await rec.wait_frames(RATE * 1000, timeout=5)
        assert short == rec.frames_recorded < RATE * 1000
        with pytest.raises(ValueError, match="frames"):
            await rec.wait_frames(-1)
        rec.start_recording()
        threading.Timer(0.1, rec.close).start()
        with pytest.raises(RecorderClosedError):
            await rec.wait_frames(RATE * 1000, timeout=5)

    run(main())


# ---- Ring.stream and Ring.astream ----------------------------------------------------------------------


def test_ring_streams_follow_its_writes_losslessly():
    ring = Ring(2, 65536, "int32")
    frames = np.arange(100_000, dtype="int32").repeat(2).reshape(-1, 2)

    def writer() -> None:
        for start in range(0, len(frames), 700):  # blocks of another size than the stream's
            ring.write(frames[start:start + 700])
            time.sleep(0.001)

    async def main():
        got = []
        threading.Thread(target=writer).start()
        async for block in ring.astream(1000, timeout=5):
            got.append(block.copy())
            if len(got) == 100:
                break
        return np.concatenate(got)

    got = run(main())
    np.testing.assert_array_equal(got, frames)
    # The synchronous stream of the same ring, from frame 0 (the default start), sees the same frames
    # while they are still in the ring, and says so when they are not.
    stream = ring.stream(1000, timeout=0.1)
    with pytest.raises(OverrunError) as info:
        next(stream)
    assert info.value.position == ring.frames_written == 100_000
    with pytest.raises(TimeoutError, match="no audio"):
        next(stream)
    tail = ring.stream(1000, start=ring.frames_written - 4000, timeout=0.1)
    np.testing.assert_array_equal(np.concatenate([next(tail) for _ in range(4)]), frames[-4000:])


def test_ring_astream_overrun_and_timeout():
    ring = Ring(1, 4096, "int16")

    async def main():
        stream = ring.astream(1024, timeout=0.2)
        ring.write(np.zeros((1024, 1), "int16"))
        first = await stream.__anext__()
        ring.write(np.ones((8192, 1), "int16"))  # laps the ring, and the block in use
        assert not ring.is_intact(first)
        with pytest.raises(OverrunError) as info:
            await stream.__anext__()
        assert (info.value.frames_lost, info.value.position) == (9216, 9216)  # the block in use counts
        with pytest.raises(TimeoutError, match="no audio"):
            await stream.__anext__()
        ring.write(np.full((1024, 1), 7, "int16"))
        assert (await stream.__anext__()).tolist() == [[7]] * 1024
        assert await ring.wait_frames(10_240) == 10_240
        with pytest.raises(TimeoutError, match="frames written"):
            await ring.wait_frames(10_241, timeout=0.1)

    run(main())


# ---- processes -----------------------------------------------------------------------------------------

FORK_CHILD = r"""
import asyncio, os, sys
from audioring import AudioRecord, Ring, VirtualInput

rec = AudioRecord(1, 48000, 48000, device=VirtualInput("sine", 440))
ring = Ring(1, 4096, "int16")

async def one_block(source, **kwargs):
    return await source.astream(480, timeout=5, **kwargs).__anext__()

with rec:
    asyncio.run(one_block(rec))  # the parent's watcher thread runs at the fork
    pid = os.fork()
    if pid == 0:
        refused = []
        for source in (rec, ring):
            try:
                asyncio.run(one_block(source))
            except RuntimeError as error:
                refused.append("forked child" in str(error) or "belongs to the process" in str(error))
        rec.close()  # must neither hang nor touch the parent's watcher
        os._exit(0 if refused == [True, True] else 1)
    _, status = os.waitpid(pid, 0)
    asyncio.run(one_block(rec))  # the parent goes on
    print("child", status)
"""


def test_a_forked_child_refuses_the_parents_recorder_and_ring():
    result = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0"], result.stdout + result.stderr
