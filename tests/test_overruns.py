"""Overruns: a consumer that falls behind. audioring says exactly what was lost, and goes on.

Issue #6, item 4 (item 3, server faults, is test_server_faults.py).

A consumer that falls behind gets OverrunError whose ``frames_lost`` is
exactly the gap in the VirtualInput's ramp between the last frame it was
validly given and the next frame it is given, and it goes on from
``position``, the frame the stream continues from. With overlapping windows
(``hop < blocksize``) ``frames_lost`` is how far the window start jumped past
where the next window was due; ``max(0, frames_lost - (blocksize - hop))`` of
those frames were in no intact window at all (FrameStream's docstring says
the same).
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from audioring import AudioRecord, OverrunError, VirtualInput
from audioring.testing import dominant_frequency
from overrun_checks import Delivery, check_exact_gaps, check_overlapping_windows, ramp

RATE = 48000


def consume_with_random_stalls(rec: AudioRecord, blocksize: int, hop: int, rounds: int, seed: int):
    """Stream, stalling now and then; return the deliveries, and the errors raised before each of them."""
    rng = random.Random(seed)
    stream = rec.stream(blocksize, hop=hop, timeout=2, start=rec.first_frame)
    events: list[tuple[Delivery, list[OverrunError]]] = []
    errors: list[OverrunError] = []
    while len(events) < rounds:
        try:
            block = next(stream)
        except OverrunError as error:
            assert error.position == stream.position
            errors.append(error)
            continue
        events.append((Delivery(rec, block), errors))
        errors = []
        stall = rng.choice([0, 0, 0, 0, 0.0005, 0.002, 0.02])
        if stall:
            time.sleep(stall)
    return events


@pytest.mark.parametrize("blocksize", [128, 1000, 4096])
def test_overrun_frames_lost_is_the_exact_gap_in_the_ramp(blocksize):
    # A 4096-frame ring (headroom 0) filled at 480,000 frames/s: 8.5 ms of slack, so
    # the 20 ms stalls overrun it and the shorter ones sometimes do.
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0,
                      device=VirtualInput("ramp", speed=10))
    assert rec.buffer_size + rec.headroom == 4096  # the ring's capacity
    with rec:
        events = consume_with_random_stalls(rec, blocksize, blocksize, rounds=400, seed=blocksize)
    overruns = check_exact_gaps(events, blocksize, rec.first_frame)
    assert overruns >= 3, f"only {overruns} overruns: the test did not stress the consumer"
    assert sum(1 for _, errors in events if not errors) > 100


def test_overrun_when_the_block_in_use_is_overwritten_counts_it_as_lost():
    # A stall far longer than the ring (deterministic): the previous block is gone too.
    # 96,000 frames/s into a 4,096-frame ring: 40 ms of slack, which a busy machine's scheduling
    # hiccups do not reach, while each 0.2 s stall (19,200 frames) laps the ring several times.
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0, device=VirtualInput("ramp", speed=2))
    with rec:
        stream = rec.stream(1000, timeout=2, start=rec.frames_written)
        delivered = [Delivery(rec, next(stream)) for _ in range(3)]
        assert all(d.valid for d in delivered)
        for _ in range(5):
            time.sleep(0.2)
            with pytest.raises(OverrunError) as info:
                next(stream)
            error = info.value
            previous = delivered[-1]
            assert error.position - error.frames_lost == previous.start
            resumed = Delivery(rec, next(stream))
            assert resumed.start == error.position and resumed.valid
            # Gap from the end of the block before the lost one: (previous.counters[0] - 1) + 1.
            assert int(resumed.counters[0]) - int(previous.counters[0]) == error.frames_lost
            following = Delivery(rec, next(stream))
            assert int(following.counters[0]) == int(resumed.counters[-1]) + 1  # and on it goes, losslessly
            delivered += [resumed, following]


@pytest.mark.parametrize(("blocksize", "hop"), [(1000, 250), (1024, 1023), (2048, 1)])
def test_overrun_with_overlapping_windows(blocksize, hop):
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0,
                      device=VirtualInput("ramp", speed=10 if hop > 1 else 1))
    with rec:
        events = consume_with_random_stalls(rec, blocksize, hop, rounds=300, seed=hop)
    overruns = check_overlapping_windows(events, blocksize, hop, rec.first_frame)
    # hop=1 too: a window a frame further per next() falls behind a 48 kHz ramp at once (21 overruns, measured).
    assert overruns >= 3, f"only {overruns} overruns: the test did not stress the consumer"


def test_overrun_leaves_the_recording_and_other_streams_alone():
    # One consumer falls behind; the recording, read() and a second, timely consumer (a thread) are untouched.
    rec = AudioRecord(1, RATE, 8192, dtype="int32", headroom=RATE, device=VirtualInput("ramp", speed=2))
    counters: list[np.ndarray] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def steady() -> None:
        try:
            for block in rec.stream(480, timeout=2, start=rec.first_frame):
                counters.append(ramp(block))
                if done.is_set():
                    break
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    with rec:
        consumer = threading.Thread(target=steady)
        consumer.start()
        slow = rec.stream(1024, timeout=2, start=rec.frames_written)
        next(slow)
        for _ in range(3):
            time.sleep(0.7)  # 67,200 frames: past the 56,000-frame ring for `slow`
            with pytest.raises(OverrunError):
                next(slow)
            assert next(slow).shape == (1024, 1)  # and it goes on
        done.set()
        consumer.join(timeout=10)
        latest = rec.read(8192, copy=True)
    assert not failures, failures
    assert len(counters) > 300
    assert np.all(np.diff(np.concatenate(counters)) == 1), "the timely consumer lost frames"
    assert np.all(np.diff(ramp(latest)) == 1)


def test_played_tone_survives_a_consumer_overrun_on_the_virtual_sine():
    # The data after an overrun is the signal, not garbage: a sine stays a clean sine.
    # The ring holds 34 ms at 10x speed: a consumer descheduled that long
    # overruns again, which says nothing about the data, so it then asks again.
    rec = AudioRecord(1, RATE, 4096, headroom=3 * 4096, device=VirtualInput("sine", 1000, speed=10))
    with rec:
        stream = rec.stream(4096, timeout=2, start=rec.frames_written)
        next(stream)
        time.sleep(0.2)
        with pytest.raises(OverrunError):
            next(stream)
        for _ in range(10):
            try:
                block = next(stream).copy()
                break
            except OverrunError:
                continue
        else:
            pytest.fail("every block after the overrun was overwritten before it was read")
    # At 10x speed a 1 kHz sine in the device's frames is 1 kHz at the nominal rate.
    assert dominant_frequency(block, RATE) == pytest.approx([1000], abs=15)
