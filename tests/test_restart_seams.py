"""A stream belongs to one recording: a restart (or Ring.clear()) never reaches it as audio.

start_recording() clears the ring with ``capacity`` frames of zeros, which
count as frames written so that no old view passes as intact. Streams,
``wait_frames`` and ``frames_recorded`` must never take those zeros (nor a
later recording's frames) for the recording they belong to, in this process
or in a reader attached from another.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
import time

import numpy as np
import pytest

import audioring
from audioring import AudioRecord, OverrunError, Ring, VirtualInput, attach
from recording import RAMP_MODULUS, RampChecker, ramp_counter, wait_until_waiting_in_stream

RATE = 16000
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sharing needs Linux")
_names = itertools.count()


def unique(label: str) -> str:
    return f"t{os.getpid()}-{next(_names)}-{label}"


def restart_for(rec: AudioRecord, seconds: float, every: float = 0.02) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(every)
            rec.stop()
            rec.start_recording()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("reader", ["recorder", "attached"])
def test_streams_across_restarts_every_20_ms_hand_out_only_device_audio(reader):
    """The probe that found the bug: ramp at 4x, a 2,048-frame ring, restarts every 20 ms for 4 s."""
    name = unique("restarts") if reader == "attached" else None
    if name is not None and not sys.platform.startswith("linux"):
        pytest.skip("sharing needs Linux")
    ramp = VirtualInput("ramp", speed=4)
    with AudioRecord(1, RATE, 2048, device=ramp, dtype="int32", headroom=0, share=name) as rec:
        source = rec if name is None else attach(name)
        checker = RampChecker(RAMP_MODULUS["int32"])
        restarter = restart_for(rec, 4.0)
        while restarter.is_alive():
            try:
                blocks = source.stream(256, timeout=1.0)
            except RuntimeError:  # caught between a stop and a start
                continue
            checker.check_stream(blocks, source)
        restarter.join()
        if source is not rec:
            source.close()
    print(f"\n{reader}: {checker.blocks} blocks in {checker.streams} streams, {checker.overruns} overruns")
    due = 4.0 * RATE * 4 / 256  # blocks the device delivered meanwhile
    assert checker.blocks > due / 4  # the consumer really streamed meanwhile ...
    assert checker.streams > 50  # ... across many restarts


def test_async_streams_across_restarts_hand_out_only_device_audio():
    ramp = VirtualInput("ramp", speed=4)
    checker = RampChecker(RAMP_MODULUS["int32"])
    with AudioRecord(1, RATE, 2048, device=ramp, dtype="int32", headroom=0) as rec:
        restarter = restart_for(rec, 3.0)

        async def consume() -> None:
            while restarter.is_alive():
                try:
                    blocks = rec.astream(256, timeout=1.0)
                except RuntimeError:
                    continue
                await checker.check_astream(blocks, rec)

        asyncio.run(consume())
        restarter.join()
    due = 3.0 * RATE * 4 / 256
    assert checker.blocks > due / 4 and checker.streams > 30, vars(checker)


def test_a_stream_waiting_at_a_restart_ends_after_every_block_of_its_recording():
    with Ring(1, 4096, "int16") as ring:
        ring.write(np.arange(8, dtype="int16").reshape(8, 1))
        blocks = ring.stream(4, timeout=5)
        assert [next(blocks)[0, 0], next(blocks)[0, 0]] == [0, 4]
        ended = threading.Event()

        def wait_for_the_next_block() -> None:
            with pytest.raises(StopIteration):
                next(blocks)  # not the zeros, not the next recording
            ended.set()

        waiter = threading.Thread(target=wait_for_the_next_block)
        interrupts = ring._core.interrupt_count
        waiter.start()
        wait_until_waiting_in_stream([waiter])
        ring.clear()  # a new recording: 4096 zeros, then whatever comes
        ring.write(np.arange(100, 108, dtype="int16").reshape(8, 1))
        waiter.join(5)
        assert ended.is_set() and ring._core.interrupt_count == interrupts
        assert [b[0, 0] for b in itertools.islice(ring.stream(4, timeout=0.5), 2)] == [100, 104]


def test_a_restart_that_clears_blocks_not_yet_taken_raises_overrun_counting_them_then_ends():
    with Ring(1, 4096, "int16") as ring:
        ring.write(np.arange(18, dtype="int16").reshape(18, 1))
        blocks = ring.stream(4, timeout=0.5)
        next(blocks)
        restart = ring.frames_written
        ring.clear()
        with pytest.raises(OverrunError) as info:
            next(blocks)
        # The block in use (frames 0..3: zero-copy, so cleared under the consumer) and frames
        # 4..17, never taken: three complete blocks and a partial one.
        assert (info.value.frames_lost, info.value.position) == (restart, restart)
        assert "restarted before the consumer read 18 of its frames (from frame 0)" in str(info.value)
        with pytest.raises(StopIteration):
            next(blocks)


def test_a_block_in_use_when_a_restart_clears_it_is_reported():
    with Ring(1, 4096, "int16") as ring:
        ring.write(np.arange(4, dtype="int16").reshape(4, 1))
        blocks = ring.stream(4, timeout=0.5)
        in_use = next(blocks)
        ring.clear()
        assert not ring.is_intact(in_use)
        with pytest.raises(OverrunError) as info:
            next(blocks)
        assert info.value.frames_lost == 4
        with pytest.raises(StopIteration):
            next(blocks)


def test_a_start_before_the_recordings_first_frame_begins_at_it_never_in_the_zeros():
    with Ring(1, 4096, "int16") as ring:
        ring.write(np.ones((10, 1), dtype="int16"))
        ring.clear()
        assert ring.first_frame == ring.frames_written == 4096 + 10
        ring.write(np.arange(1, 9, dtype="int16").reshape(8, 1))
        blocks = ring.stream(4, start=5, timeout=0.5)  # 5: a zero of the clear (once a frame of before)
        assert blocks.position == 4106
        assert next(blocks)[:, 0].tolist() == [1, 2, 3, 4]


@linux_only
def test_wait_frames_never_counts_a_restarts_zeros():
    name = unique("wait")
    with Ring(1, 4096, "int16", share=name) as ring, attach(name) as mic:
        ring.write(np.ones((10, 1), dtype="int16"))

        async def main() -> int:
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, ring.clear)  # 4096 zeros: far more than the 100 frames waited for
            loop.call_later(0.2, ring.write, np.ones((100, 1), dtype="int16"))
            return await mic.wait_frames(100, timeout=5)

        started = time.monotonic()
        assert asyncio.run(main()) == 100
        assert time.monotonic() - started >= 0.15  # it waited for the real frames, not the zeros
        assert mic.frames_recorded == 100


@linux_only
def test_a_reader_that_streams_before_the_producers_first_start_waits_for_that_recording():
    name = unique("idle")
    ramp = VirtualInput("ramp", speed=4)
    rec = AudioRecord(1, RATE, RATE, device=ramp, dtype="int32", share=name)
    try:
        with attach(name) as mic:
            blocks = mic.stream(160, timeout=5)
            assert blocks.position is None  # pending: no recording has begun
            got: list[np.ndarray] = []
            reader = threading.Thread(target=lambda: got.extend(itertools.islice(blocks, 3)))
            reader.start()
            time.sleep(0.1)
            assert reader.is_alive()  # waiting, not ended (idle is not stopped)
            rec.start_recording()
            reader.join(10)
            assert len(got) == 3
            assert [mic.frame_of(b) for b in got] == [rec.first_frame + 160 * i for i in range(3)]
            counters = np.concatenate([ramp_counter(b) for b in got])
            assert (np.diff(counters) == 1).all()
    finally:
        rec.close()


@linux_only
def test_a_pending_reader_times_out_saying_no_recording_began():
    name = unique("never")
    with AudioRecord(1, RATE, RATE, device=VirtualInput("sine"), share=name) as rec:
        rec.stop()
    rec = AudioRecord(1, RATE, RATE, device=VirtualInput("sine"), share=name)
    try:
        with attach(name) as mic, pytest.raises(TimeoutError, match="no recording began within 0.1 s"):
            next(iter(mic.stream(160, timeout=0.1)))
    finally:
        rec.close()


@linux_only
def test_shared_lists_the_frames_of_the_current_recording_not_the_zeros_of_a_restart():
    name = unique("listed")
    with Ring(1, 4096, "int16", share=name) as ring:
        ring.write(np.ones((10, 1), dtype="int16"))
        ring.clear()
        ring.write(np.ones((7, 1), dtype="int16"))
        (entry,) = [e for e in audioring.shared() if e.name == name]
        assert (entry.frames_recorded, entry.frames_written) == (7, 10 + ring.capacity + 7)
