"""Lifecycle torture: audioring keeps working, and leaks nothing, however often it is started, stopped,
opened, closed, read from many threads, or run next to other recorders.

Issue #6, item 2, on the VirtualInput and on the PulseAudio server (with both
drivers there):

- 1000 start/stop cycles and 200 open/close cycles, with the process's
  resources measured before and after (after a 50-cycle warm-up): resident
  memory (VmRSS), Python allocations (tracemalloc), threads (Python's and the
  kernel's /proc/self/task), file descriptors (/proc/self/fd) and ring
  mappings (memfd mappings in /proc/self/maps). Tolerances, and why:

  * threads, descriptors, ring mappings: exactly zero growth. Each is whole
    objects; one leaked per cycle would be 200-1000.
  * RSS: 3 MiB. One ring here is ~400 KiB, a thread's touched stack or an
    ALSA stream's buffers tens of KiB: a leak of any of them per cycle is
    8 MiB or more. What remains is allocator noise (glibc arenas of the
    PortAudio and PulseAudio threads): at most ~0.2 MiB measured.
  * tracemalloc: 256 bytes per cycle. One leaked AudioRecord, Ring, capture
    or sounddevice stream is well over 1 KiB with its attributes; numpy's and
    sounddevice's own caches add ~60 bytes per cycle while they fill (the
    dtype-name strings sounddevice makes), measured.

  On PulseAudio each cycle opens or starts a real ALSA stream on the server,
  ~6-9 ms per start/stop and ~15 ms per open/close on 2 cores (every 10th
  cycle also waits for its first block of audio), so the full counts fit in
  under 10 s per test: no cycle count is reduced.
- ``close()`` wakes a thread waiting in ``stream()`` with
  RecorderClosedError, on PulseAudio too.
- Zero-copy arrays (``read()`` views and ``stream()`` blocks) outlive their
  recorder after it is garbage-collected, on PulseAudio too; the ring's
  memory goes with the last array (and, with the Python driver, at once, not
  only when the cyclic GC runs).
- ``read()`` from several Python threads at once (also against concurrent
  stop/start and close) returns consistent data: every copy, and every view
  judged intact, is a consecutive run of the ramp at the frames its start
  frame names.
- Two recorders at once: on the same PulseAudio device (both drivers), on
  PulseAudio and JACK, and on PulseAudio and the VirtualInput.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import random
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Callable

import numpy as np
import pytest
import sounddevice as sd

from audioring import AudioRecord, OverrunError, RecorderClosedError, VirtualInput
from audioring.testing import dominant_frequency, tone
from recording import wait_for_frames, wait_until_waiting_in_stream

RATE = 48000
DRIVERS = ["native", "python"]
WARM_UP = 50

RSS_TOLERANCE_KIB = 3 * 1024
TRACED_BYTES_PER_CYCLE = 256


# ---- measuring the process ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Resources:
    rss_kib: int
    python_threads: int
    kernel_threads: int
    fds: int
    ring_mappings: int
    traced_bytes: int

    @classmethod
    def now(cls) -> Resources:
        gc.collect()
        with open("/proc/self/status") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        with open("/proc/self/maps") as maps:
            rings = sum("memfd:audioring" in line for line in maps)
        return cls(
            rss_kib=rss,
            python_threads=threading.active_count(),
            kernel_threads=len(os.listdir("/proc/self/task")),
            fds=len(os.listdir("/proc/self/fd")),
            ring_mappings=rings,
            traced_bytes=tracemalloc.get_traced_memory()[0],
        )


def ring_mappings() -> int:
    """The memfd ring mappings of this process, without a garbage collection first."""
    with open("/proc/self/maps") as maps:
        return sum("memfd:audioring" in line for line in maps)


def assert_no_leak(before: Resources, after: Resources, cycles: int, what: str) -> None:
    growth = {f.name: getattr(after, f.name) - getattr(before, f.name) for f in dataclasses.fields(Resources)}
    print(f"\n{what}: {cycles} cycles, growth {growth}")
    assert growth["python_threads"] == 0 and growth["kernel_threads"] == 0, growth
    assert growth["fds"] == 0, growth
    assert growth["ring_mappings"] == 0, growth
    assert growth["rss_kib"] <= RSS_TOLERANCE_KIB, growth
    assert growth["traced_bytes"] <= TRACED_BYTES_PER_CYCLE * cycles, growth


def torture(cycle: Callable[[int], None], cycles: int, what: str) -> None:
    """Run ``cycle`` WARM_UP times, then ``cycles`` times with the resources measured around."""
    for i in range(WARM_UP):
        cycle(i)
    tracemalloc.start()
    try:
        before = Resources.now()
        started = time.monotonic()
        for i in range(cycles):
            cycle(i)
        took = time.monotonic() - started
        after = Resources.now()
    finally:
        tracemalloc.stop()
    assert_no_leak(before, after, cycles, f"{what} ({took:.1f} s)")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def ramp(block: np.ndarray) -> np.ndarray:
    return block[:, 0].astype(np.int64)


@pytest.fixture
def tone_on_pulse(pulse_server) -> Iterator[None]:
    """A 1 kHz tone playing into the session's PulseAudio server."""
    with pulse_server.play(tone([1000, 1000], RATE)):
        yield


def jack_input_device() -> int:
    for device in sd.query_devices():
        if device["name"] == "system" and "JACK" in sd.query_hostapis(device["hostapi"])["name"]:
            return int(device["index"])
    pytest.fail(f"no JACK device 'system' in:\n{sd.query_devices()}")


# ---- 1000 start/stop and 200 open/close cycles -----------------------------------------------------


def test_virtual_input_1000_start_stop_cycles_leak_nothing():
    rec = AudioRecord(2, RATE, 4800, dtype="int32", device=VirtualInput("ramp", speed=20), blocksize=64)

    def cycle(i: int) -> None:
        rec.start_recording()
        # Every cycle really records: a block arrives (64 frames at 20x: ~70 us).
        wait_for(lambda: rec.frames_recorded >= 64, what=f"a block in cycle {i}")
        rec.stop()
        if i % 100 == 0:
            data = rec.read(rec.frames_recorded, copy=True)
            assert np.all(np.diff(ramp(data)) == 1)

    try:
        torture(cycle, 1000, "VirtualInput start/stop")
    finally:
        rec.close()


def test_virtual_input_200_open_close_cycles_leak_nothing():
    def cycle(i: int) -> None:
        with AudioRecord(2, RATE, 4800, dtype="int32", device=VirtualInput("ramp", speed=20), blocksize=64) as rec:
            wait_for(lambda: rec.frames_recorded >= 64, what=f"a block in cycle {i}")

    torture(cycle, 200, "VirtualInput open/close")


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", DRIVERS)
def test_pulse_1000_start_stop_cycles_leak_nothing(tone_on_pulse, driver):
    rec = AudioRecord(2, RATE, 4800, driver=driver)
    checked = []

    def cycle(i: int) -> None:
        rec.start_recording()
        if i % 10 == 0:  # every 10th cycle waits for audio (a first block takes ~10 ms)
            wait_for(lambda: rec.frames_recorded > 0, what=f"audio in cycle {i}")
            checked.append(i)
        rec.stop()

    try:
        torture(cycle, 1000, f"PulseAudio start/stop, {driver} driver")
        # Still records the tone after all that.
        rec.start_recording()
        wait_for(lambda: rec.frames_recorded >= 4800, what="0.1 s of audio")
        assert dominant_frequency(rec.read(4800), RATE) == pytest.approx([1000, 1000], abs=10)
    finally:
        rec.close()
    assert len(checked) == (WARM_UP + 1000) // 10


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", DRIVERS)
def test_pulse_200_open_close_cycles_leak_nothing(tone_on_pulse, driver):
    def cycle(i: int) -> None:
        rec = AudioRecord(2, RATE, 4800, driver=driver)
        try:
            rec.start_recording()
            if i % 10 == 0:
                wait_for(lambda: rec.frames_recorded > 0, what=f"audio in cycle {i}")
        finally:
            rec.close()

    torture(cycle, 200, f"PulseAudio open/close, {driver} driver")


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", DRIVERS)
def test_pulse_recorder_memory_goes_at_once(pulse_server, driver):
    # The Python driver's stream and callback form a reference cycle in
    # sounddevice; the ring (through the capture) must not hang on to it.
    gc.collect()
    baseline = ring_mappings()
    gc.disable()
    try:
        for _ in range(5):
            rec = AudioRecord(2, RATE, 4800, driver=driver)
            rec.start_recording()
            rec.close()
            del rec
            assert ring_mappings() == baseline, "a closed, unreferenced recorder still holds its ring"
    finally:
        gc.enable()


# ---- close() wakes a waiting stream() ------------------------------------------------------------


def close_while_waiting(rec: AudioRecord) -> BaseException | None:
    """Close ``rec`` while another thread waits in ``next(rec.stream(...))``; what the waiter got."""
    stream = rec.stream(rec.buffer_size, start=rec.frames_written)  # far more than arrives soon: it waits
    outcome: dict[str, BaseException] = {}

    def consume() -> None:
        try:
            next(stream)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            outcome["error"] = error

    waiter = threading.Thread(target=consume)
    waiter.start()
    wait_until_waiting_in_stream([waiter])  # asleep in the ring's wait, not merely started
    closed_at = time.monotonic()
    rec.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive(), "close() did not wake the waiting stream"
    assert time.monotonic() - closed_at < 2
    return outcome.get("error")


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", DRIVERS)
def test_close_wakes_a_stream_waiting_on_pulse(pulse_server, driver):
    rec = AudioRecord(2, RATE, RATE * 10, driver=driver)
    rec.start_recording()
    wait_for(lambda: rec.frames_recorded > 0, what="audio")
    error = close_while_waiting(rec)
    assert isinstance(error, RecorderClosedError), repr(error)


@pytest.mark.audio_server
def test_close_wakes_many_waiting_streams(pulse_server):
    # Several threads, each waiting in its own stream() of the same recorder.
    rec = AudioRecord(2, RATE, RATE * 10)
    rec.start_recording()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for _ in rec.stream(RATE * 10, start=rec.frames_written, timeout=30):
                pass
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    waiters = [threading.Thread(target=consume) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    wait_until_waiting_in_stream(waiters)
    rec.close()
    for waiter in waiters:
        waiter.join(timeout=5)
    assert not any(w.is_alive() for w in waiters)
    assert len(errors) == 4 and all(isinstance(e, RecorderClosedError) for e in errors), errors


# ---- arrays outlive a garbage-collected recorder --------------------------------------------------


def arrays_outlive(make: Callable[[], AudioRecord], frames: int) -> None:
    """Take views and stream blocks of a recorder, drop it, check the arrays; the ring goes with them."""
    rec = make()
    rec.start_recording()  # recording when dropped: its __del__ stops and closes the stream
    wait_for_frames(rec, 2 * frames, timeout=5.0)  # (a lambda here would have to outlive `del rec`)
    view = rec.read(frames)
    block = next(rec.stream(frames // 2, start=rec.frames_written - frames // 2))
    expected_view, expected_block = view.copy(), block.copy()
    assert np.abs(expected_view).max() > 0  # real audio, not zeros
    gc.collect()  # earlier tests' garbage must not count
    mappings_with_ring = ring_mappings()
    del rec
    gc.collect()
    # The recorder is gone and its stream closed; the memory stays while the arrays are alive.
    assert ring_mappings() == mappings_with_ring
    np.testing.assert_array_equal(view, expected_view)
    np.testing.assert_array_equal(block, expected_block)
    del view
    gc.collect()
    np.testing.assert_array_equal(block, expected_block)
    del block
    gc.collect()
    assert ring_mappings() < mappings_with_ring  # the last array took the ring's memory with it


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", DRIVERS)
def test_arrays_outlive_a_collected_recorder_on_pulse(tone_on_pulse, driver):
    arrays_outlive(lambda: AudioRecord(2, RATE, RATE, driver=driver), 9600)


def test_arrays_outlive_a_collected_recorder_on_the_virtual_input():
    arrays_outlive(lambda: AudioRecord(2, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=10)), 9600)


# ---- read() from several threads at once -------------------------------------------------------------


def check_ramp_read(rec: AudioRecord, rng: random.Random) -> None:
    """One read by a reader thread, a copy or a view, checked: zeros, then a consecutive ramp."""
    size = rng.choice([1, 7, 256, 1000, rng.randint(1, rec.buffer_size)])
    if rng.random() < 0.5:
        data = rec.read(size, copy=True)  # validated by read() itself
    else:
        view = rec.read(size)
        data = view.copy()
        if not rec.is_intact(view):
            return  # lapped while copied, and the view says so: nothing to check
    counters = ramp(data)
    # A recording starts from a zeroed ring; the ramp then counts on from where the
    # virtual input stopped (its very first frame, counter 0, reads like a zero).
    recorded = np.flatnonzero(counters)
    if recorded.size:
        first = int(recorded[0])
        assert np.all(np.diff(counters[first:]) == 1), f"not a consecutive ramp: {counters[first:first + 8]}..."


def test_read_from_many_threads_is_consistent_even_across_stop_start_and_close():
    rec = AudioRecord(2, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=10), blocksize=128)
    rec.start_recording()
    stop = threading.Event()
    failures: list[BaseException] = []
    reads = [0] * 6

    def reader(k: int) -> None:
        rng = random.Random(k)
        try:
            while not stop.is_set():
                check_ramp_read(rec, rng)
                reads[k] += 1
        except RecorderClosedError:
            pass  # the end of the test
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    observed = {"rounds": 0, "timed": 0, "not_yet": 0, "closed": 0, "last": 0.0}
    timed_recordings: set[int] = set()  # first frames of the recordings time_at() answered in

    def observer() -> None:  # everything else a thread may ask meanwhile, for the whole test
        try:
            while not stop.is_set():
                try:
                    rec.stats, rec.frames_written, rec.overflows, rec.recording, rec.headroom  # noqa: B018
                    if rec.recording:
                        try:
                            first = rec.first_frame
                            rec.time_at(rec.frames_written)
                            observed["timed"] += 1
                            timed_recordings.add(first)
                        except RuntimeError:
                            observed["not_yet"] += 1  # between a restart and its first block
                except RecorderClosedError:
                    observed["closed"] += 1
                observed["rounds"] += 1
                observed["last"] = time.monotonic()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(len(reads))]
    threads.append(threading.Thread(target=observer))
    for thread in threads:
        thread.start()
    try:
        for _ in range(20):  # restarts under the readers' feet
            time.sleep(0.05)
            rec.stop()
            time.sleep(0.01)
            rec.start_recording()
        time.sleep(0.2)
        rec.close()  # and a close
        closed_at = time.monotonic()
        time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        rec.close()
    assert not failures, failures[:3]
    assert not any(t.is_alive() for t in threads)
    assert min(reads) > 50, reads
    # The observer asked all along: through the restarts (times from most of the 21 recordings) and past the close.
    assert observed["rounds"] > 200 and observed["timed"] > 50, observed
    assert len(timed_recordings) > 10, (timed_recordings, observed)
    assert observed["last"] > closed_at, observed


def test_several_streams_of_one_recorder_see_the_same_frames():
    rec = AudioRecord(1, RATE, 8192, dtype="int32", device=VirtualInput("ramp", speed=5), headroom=RATE)
    seen: dict[int, list[int]] = {}
    failures: list[BaseException] = []

    def consume(k: int) -> None:
        try:
            stream = rec.stream(480, timeout=2, start=rec.first_frame)
            seen[k] = [int(ramp(block)[0]) for _, block in zip(range(200), stream)]
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    with rec:
        consumers = [threading.Thread(target=consume, args=(k,)) for k in range(3)]
        for consumer in consumers:
            consumer.start()
        for consumer in consumers:
            consumer.join(timeout=20)
    assert not failures, failures
    assert seen[0] == seen[1] == seen[2] == list(range(0, 200 * 480, 480))


@pytest.mark.audio_server
def test_read_from_many_threads_on_pulse(tone_on_pulse):
    # No ramp on a real device: where two intact reads overlap, they must hold the same samples.
    rec = AudioRecord(2, RATE, RATE)
    stop = threading.Event()
    failures: list[BaseException] = []
    checks = [0] * 4

    def reader(k: int) -> None:
        rng = random.Random(k)
        try:
            while not stop.is_set():
                a = rec.read(rng.randint(1, RATE))
                rec.read(rng.randint(1, RATE), copy=True)
                b = rec.read(rng.randint(1, RATE))
                a_start, b_start = rec.frame_of(a), rec.frame_of(b)
                a_copy, b_copy = a.copy(), b.copy()
                if rec.is_intact(a) and rec.is_intact(b):
                    assert a_start + len(a) <= b_start + len(b)  # b was read later
                    low, high = max(a_start, b_start), a_start + len(a)
                    if low < high:
                        np.testing.assert_array_equal(a_copy[low - a_start:high - a_start],
                                                      b_copy[low - b_start:high - b_start])
                        checks[k] += 1
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    with rec:
        wait_for(lambda: rec.frames_recorded >= RATE // 2, what="audio")
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(len(checks))]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        data = rec.read(RATE // 2)
    assert not failures, failures[:3]
    assert min(checks) > 10, checks
    assert dominant_frequency(data, RATE) == pytest.approx([1000, 1000], abs=4)


# ---- two recorders at once --------------------------------------------------------------------------


def record_both(first: AudioRecord, second: AudioRecord, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Record on both at once and close them; each must deliver ``seconds`` of audio in real time.

    Returns the last half second of each, read before closing.
    """
    with first, second:
        started = time.monotonic()
        wait_for(lambda: first.frames_recorded >= seconds * first.sampling_rate
                 and second.frames_recorded >= seconds * second.sampling_rate, timeout=5 * seconds + 5,
                 what="audio on both recorders")
        elapsed = time.monotonic() - started
        data = (first.read(first.sampling_rate // 2, copy=True), second.read(second.sampling_rate // 2, copy=True))
    for rec in (first, second):
        # Real time, give or take the start-up and the blocks in flight.
        assert rec.frames_recorded <= (elapsed + 0.5) * rec.sampling_rate, rec
    return data


@pytest.mark.audio_server
def test_two_recorders_on_the_same_pulse_device(tone_on_pulse):
    native = AudioRecord(2, RATE, RATE, driver="native")
    python = AudioRecord(2, RATE, RATE, driver="python")
    for data in record_both(native, python):
        assert dominant_frequency(data, RATE) == pytest.approx([1000, 1000], abs=4)


@pytest.mark.audio_server
def test_recorders_on_pulse_and_the_virtual_input_at_once(tone_on_pulse):
    pulse = AudioRecord(2, RATE, RATE)
    virtual = AudioRecord(2, 16000, 16000, device=VirtualInput("sine", [300, 700]))
    pulse_data, virtual_data = record_both(pulse, virtual)
    assert dominant_frequency(pulse_data, RATE) == pytest.approx([1000, 1000], abs=4)
    assert dominant_frequency(virtual_data, 16000) == pytest.approx([300, 700], abs=4)


@pytest.mark.audio_server
def test_recorders_on_pulse_and_jack_at_once(pulse_server, jack_server_factory):
    server = jack_server_factory(48000, 256, 2)  # re-initializes PortAudio: it then lists both servers
    jack = AudioRecord(2, RATE, RATE, device=jack_input_device())
    pulse = AudioRecord(2, RATE, RATE)  # the default device: ALSA through PulseAudio
    assert pulse.device != jack.device == "system"
    try:
        with pulse_server.play(tone([1000, 1000], RATE)), server.inject_tones([500, 1500]) as injector:
            jack.start_recording()
            injector.wait_connected(2)
            pulse_data, jack_data = record_both(pulse, jack)
    finally:
        jack.close()  # before the fixture stops jackd
        pulse.close()
    assert dominant_frequency(pulse_data, RATE) == pytest.approx([1000, 1000], abs=4)
    assert dominant_frequency(jack_data, RATE) == pytest.approx([500, 1500], abs=8)


def test_overrun_in_one_recorder_does_not_disturb_another():
    # Two virtual inputs at once; one consumer falls behind, the other does not.
    slow = AudioRecord(1, RATE, 2048, dtype="int32", headroom=0, device=VirtualInput("ramp", speed=10))
    steady = AudioRecord(1, RATE, 8192, dtype="int32", device=VirtualInput("ramp", speed=2))
    with slow, steady:
        slow_stream = slow.stream(1024, timeout=2, start=slow.frames_written)
        next(slow_stream)
        counters = []
        for i, block in zip(range(100), steady.stream(480, timeout=2)):
            counters.append(ramp(block))
            if i == 10:
                time.sleep(0.1)  # ~48,000 frames into a 4,096-frame ring for `slow`
        with pytest.raises(OverrunError):
            next(slow_stream)
    assert len(counters) == 100
    assert np.all(np.diff(np.concatenate(counters)) == 1)
