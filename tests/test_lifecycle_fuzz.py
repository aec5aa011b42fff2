"""Randomized lifecycles: one invariant through restarts, stops, closes, attaches and producer crashes.

Every block a stream hands out, and every ``read(copy=True)`` window at or
after the recording's first frame, must be device audio of the recording it
belongs to, in order, once: a virtual ramp numbers the device's frames, so
a cleared zero, a frame of another recording or a repeated frame breaks the
count (`recording.RampChecker`). Producers run in this process (threads
restarting and closing) and in child processes that a test SIGKILLs at
random. The seed is printed; ``AUDIORING_LIFECYCLE_SEED`` replays its
choices (thread timing aside) and ``AUDIORING_LIFECYCLE_SECONDS`` runs longer.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import random
import signal
import sys
import threading
import time

import numpy as np
import pytest

from audioring import (
    AudioRecord,
    ProducerLostError,
    RecorderClosedError,
    VirtualInput,
    attach,
)
from recording import RAMP_MODULUS, RampChecker

RATE = 16000
SECONDS = float(os.environ.get("AUDIORING_LIFECYCLE_SECONDS", "25"))
SEED = int(os.environ.get("AUDIORING_LIFECYCLE_SEED", str(random.randrange(2**32))))
SPAWN = multiprocessing.get_context("spawn")
_names = itertools.count()


def _ramp_recorder(rng: random.Random, share: str | None = None) -> AudioRecord:
    return AudioRecord(
        1, RATE, rng.choice([2048, 8192]), device=VirtualInput("ramp", speed=rng.choice([1, 4])),
        dtype="int32", headroom=rng.choice([0, 4096, 16384]), blocksize=rng.choice([0, 64, 256]), share=share,
    )


def _check_read(reader, checker: RampChecker, rng: random.Random) -> None:
    """read(): a window judged intact, at or after the first frame read after that, is the recording's audio."""
    view = reader.read(rng.randint(2, reader.buffer_size))
    copy = np.array(view)
    if reader.is_intact(view) and reader.frame_of(view) >= reader.first_frame:
        checker.check_block(copy, reader.frame_of(view), None)


def _stream_until(reader, deadline: float, checker: RampChecker, rng: random.Random, ended) -> None:
    """Make streams of ``reader`` and check every block until ``deadline`` or ``ended()``."""
    while time.monotonic() < deadline and not ended():
        try:
            if rng.random() < 0.2:
                _check_read(reader, checker, rng)
            blocks = reader.stream(rng.choice([32, 160, 512]), timeout=1.0)
        except RuntimeError as error:  # stopped between a stop and a start, or closed
            if isinstance(error, RecorderClosedError):
                return
            time.sleep(0.001)
            continue
        try:
            checker.check_stream(itertools.islice(blocks, rng.randint(1, 200)), reader)
        except (RecorderClosedError, TimeoutError):
            return  # closed under the stream (ProducerLostError is one), or a stopped producer
        if not reader.recording:
            time.sleep(0.001)  # an ended stream of a stopped recorder: do not spin


def _in_thread(target, errors: list[BaseException], *args) -> threading.Thread:
    """Run ``target(*args)`` in a daemon thread; what it raises goes to ``errors``."""
    def run() -> None:
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _live_randomly(rec: AudioRecord, until: float, seed: int) -> None:
    """Restart, stop and start ``rec`` at random until ``until``, then close it under its readers' feet."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        time.sleep(rng.uniform(0, 0.03))
        choice = rng.random()
        if choice < 0.4:
            rec.stop()
            rec.start_recording()
        elif choice < 0.6:
            rec.stop()
        else:
            rec.start_recording()
    rec.close()


async def _astreams(rec: AudioRecord, checker: RampChecker, seed: int) -> None:
    """astream() after astream() of ``rec``, checking every block, until it is closed."""
    rng = random.Random(seed)
    while not rec.closed:
        try:
            blocks = rec.astream(rng.choice([32, 160]), timeout=1.0)
        except RuntimeError:
            await asyncio.sleep(0.001)
            continue
        try:
            await checker.check_astream(blocks, rec)
        except RecorderClosedError:
            return


def test_threads_restarting_stopping_and_closing_a_recorder_never_hand_out_foreign_frames():
    rng = random.Random(SEED)
    print(f"\nseed {SEED} (AUDIORING_LIFECYCLE_SEED), {SECONDS} s")
    checker = RampChecker(RAMP_MODULUS["int32"])
    deadline = time.monotonic() + SECONDS / 2
    recorders = 0
    while time.monotonic() < deadline:
        rec = _ramp_recorder(rng)
        recorders += 1
        rec.start_recording()
        life = time.monotonic() + rng.uniform(0.3, 1.5)
        errors: list[BaseException] = []
        threads = [
            _in_thread(_live_randomly, errors, rec, life, rng.randrange(2**32)),
            _in_thread(asyncio.run, errors, _astreams(rec, checker, rng.randrange(2**32))),
        ] + [
            _in_thread(_stream_until, errors, rec, life + 5, checker, random.Random(rng.randrange(2**32)),
                       lambda rec=rec: rec.closed)
            for _ in range(2)
        ]
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive(), "a reader did not end after close()"
        assert not errors, errors
    print(f"{recorders} recorders: {checker.blocks} blocks checked in {checker.streams} streams, "
          f"{checker.overruns} overruns reported, {checker.overwritten_in_use} blocks overwritten in use")
    assert checker.blocks > 0 and checker.streams > recorders


def _produce(name: str, seed: int, seconds: float, ready) -> None:
    """A producer process: a shared ramp recorder that restarts, stops and starts at random, then closes."""
    rng = random.Random(seed)
    rec = _ramp_recorder(rng, share=name)
    rec.start_recording()
    ready.set()
    _live_randomly(rec, time.monotonic() + seconds, rng.randrange(2**32))


def _read_until_the_producer_ends(name: str, life: float, checker: RampChecker, seed: int,
                                  outcomes: list[str]) -> None:
    rng = random.Random(seed)
    try:
        with attach(name) as mic:
            _stream_until(mic, time.monotonic() + life + 5, checker, rng, lambda: not mic.producer_alive)
            outcomes.append("ended")
    except FileNotFoundError:
        outcomes.append("gone")  # closed before this reader attached
    except ProducerLostError:
        outcomes.append("lost")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sharing needs Linux")
def test_readers_in_threads_of_producers_that_restart_close_and_get_killed_never_take_foreign_frames():
    rng = random.Random(SEED + 1)
    print(f"\nseed {SEED} (AUDIORING_LIFECYCLE_SEED), {SECONDS} s")
    checker = RampChecker(RAMP_MODULUS["int32"])
    name = f"t{os.getpid()}-lifecycle-{next(_names)}"  # one name, reused by producer after producer
    deadline = time.monotonic() + SECONDS / 2
    producers = kills = 0
    outcomes: list[str] = []
    while time.monotonic() < deadline:
        ready = SPAWN.Event()
        life = rng.uniform(0.5, 2.0)
        producer = SPAWN.Process(target=_produce, args=(name, rng.randrange(2**32), life, ready))
        producer.start()
        producers += 1
        assert ready.wait(30), "the producer did not start"
        errors: list[BaseException] = []
        readers = [
            _in_thread(_read_until_the_producer_ends, errors, name, life, checker, rng.randrange(2**32), outcomes)
            for _ in range(2)
        ]
        if rng.random() < 0.4:
            time.sleep(rng.uniform(0.1, life))
            if producer.is_alive():
                os.kill(producer.pid, signal.SIGKILL)
                kills += 1
        producer.join(30)
        for reader in readers:
            reader.join(30)
            assert not reader.is_alive(), "a reader did not end after its producer ended"
        assert not errors, errors
    print(f"{producers} producers ({kills} SIGKILLed): {checker.blocks} blocks checked in {checker.streams} "
          f"streams, {checker.overruns} overruns reported; readers: {outcomes}")
    assert checker.blocks > 0 and producers > 2
