"""What the processes of tests/test_shared.py run: producers and readers of shared recordings.

Module-level functions, so that multiprocessing's spawn and forkserver start
methods can import them in a fresh interpreter.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Optional

import numpy as np

import audioring

RAMP_RATE = 48000


def ramp_producer(name: str, speed: float, frames: int, seconds_of_ring: float, started: Event, stop: Event,
                  readers: Sequence[Event] = ()) -> None:
    """Share an int32 ramp (each frame holds its number since the start) until ``stop`` or ``frames``.

    Recording starts once every event of ``readers`` is set (the readers attached).
    """
    source = audioring.VirtualInput("ramp", speed=speed, frames=frames or None)
    ring_frames = int(seconds_of_ring * RAMP_RATE * speed)
    rec = audioring.AudioRecord(1, RAMP_RATE, ring_frames, device=source, dtype="int32", share=name)
    for ready in readers:  # shared (and idle) from here on: recording starts when the readers are there
        ready.wait(60)
    with rec:
        started.set()
        # A virtual input that reached its frame limit still counts as started: stop on the count.
        while not stop.is_set() and (not frames or rec.frames_recorded < frames):
            time.sleep(0.01)


def wait_until_recording(name: str, attached: Optional[Event] = None, timeout: float = 60.0
                         ) -> audioring.SharedRecording:
    """Attach to ``name`` once it is shared (then set ``attached``), and wait until its producer records."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mic = audioring.attach(name)
            break
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    if attached is not None:
        attached.set()
    while not mic.recording:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name!r} did not start recording")
        time.sleep(0.005)
    return mic


def stream_ramp(name: str, blocksize: int, results: Queue, ready: Event) -> None:
    """Stream ``name`` to its end; report (frames, first value, whether every frame came once, in order)."""
    try:
        with wait_until_recording(name, ready) as mic:
            expected = 0
            in_order = True
            frames = 0
            for block in mic.stream(blocksize, timeout=10):
                values = block[:, 0].astype(np.int64)
                if values[0] != expected or np.any(np.diff(values) != 1):
                    in_order = False
                expected = int(values[-1]) + 1
                frames += len(values)
            results.put(("stream", os.getpid(), frames, in_order, None))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        ready.set()
        results.put(("stream", os.getpid(), 0, False, repr(error)))


def sample_latest_windows(name: str, results: Queue, ready: Event) -> None:
    """Take latest windows at random times until the producer stops; count intact ones with wrong content."""
    try:
        rng = random.Random(os.getpid())
        with wait_until_recording(name, ready) as mic:
            checked = wrong = 0
            while mic.recording:
                n = rng.randint(1, mic.buffer_size)
                view = mic.read(n)
                start = mic.frame_of(view)
                values = view[:, 0].astype(np.int64)
                # Frame f of the recording holds f - first_frame (the ramp counts from the
                # start); the frames before it are the zeros start_recording() cleared.
                numbers = np.arange(start, start + n) - mic.first_frame
                right = np.array_equal(values, np.where(numbers >= 0, numbers, 0))
                if mic.is_intact(view):
                    checked += 1
                    wrong += not right
                time.sleep(rng.random() * 0.002)
            results.put(("latest", os.getpid(), checked, wrong, None))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        ready.set()
        results.put(("latest", os.getpid(), 0, 0, repr(error)))


def stream_until_lost(name: str, results: Queue, ready: Event) -> None:
    """Stream ``name`` without a timeout; report what ended the stream and when (CLOCK_MONOTONIC)."""
    try:
        with wait_until_recording(name, ready) as mic:
            expected = None
            in_order = True
            try:
                for block in mic.stream(480):
                    values = block[:, 0].astype(np.int64)
                    if expected is not None and values[0] != expected:
                        in_order = False
                    expected = int(values[-1]) + 1
                outcome = "ended"
            except audioring.ProducerLostError:
                outcome = "ProducerLostError"
            results.put((os.getpid(), outcome, time.monotonic(), in_order))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        ready.set()
        results.put((os.getpid(), repr(error), time.monotonic(), False))


def dominant_frequencies(name: str, frames: int, results: Queue) -> None:
    """Read the latest ``frames`` of ``name`` once it has that many; report each channel's dominant frequency."""
    from audioring.testing import dominant_frequency

    try:
        with wait_until_recording(name) as mic:
            deadline = time.monotonic() + 20
            while mic.frames_recorded < frames and time.monotonic() < deadline:
                time.sleep(0.01)
            data = mic.read(frames, copy=True)
            results.put((list(dominant_frequency(data, mic.sampling_rate)), None))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        results.put(([], repr(error)))


def preroll(name: str, seconds_back: float, seconds_after: float, results: Queue) -> None:
    """Attach late and stream from ``seconds_back`` before now; report the first frame asked and what came."""
    try:
        with audioring.attach(name) as mic:
            rate = mic.sampling_rate
            start = mic.frames_written - int(seconds_back * rate)
            want = int((seconds_back + seconds_after) * rate)
            got = []
            for block in mic.stream(rate // 10, start=start, timeout=5):
                got.append(block[:, 0].astype(np.int64))
                if sum(map(len, got)) >= want:
                    break
            results.put((start - mic.first_frame, np.concatenate(got)[:want], None))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        results.put((0, np.zeros(0, np.int64), repr(error)))


def latest_sum(mic: audioring.SharedRecording, frames: int) -> tuple[int, int, int]:
    """For Pool workers: (pid, producer pid, sum of the latest frames): a worker that got the reader pickled."""
    view = mic.read(frames)
    return os.getpid(), mic.producer_pid, int(np.asarray(view, dtype=np.int64).sum())
