"""Bad input never crashes audioring: a specific error that names the argument, and everything still works.

Issue #6, item 1. Two layers:

- A matrix of hand-picked bad values (wrong types, zero, negatives, NaN, inf,
  values past every bound, sizes whose bytes overflow 64 bits or exceed the
  machine's memory, arrays where scalars belong, wrong dtypes, shapes and
  memory layouts) for every constructor argument and method parameter of
  `AudioRecord`, `VirtualInput` and `Ring`, and for ``stream``, ``astream``
  and ``wait_frames`` on recorders, rings and attached shared readers alike. Each must
  raise its documented `ValueError`, `TypeError` or `MemoryError` with the
  argument's name in the message, and afterwards a recorder keeps recording a
  consecutive ramp. ``test_ring.py`` and ``test_record_virtual.py`` already
  hold the basic cases; these are the ones they lack.
- Hypothesis fuzzing: random values of random types (numbers of every size,
  NaN and inf, strings, bytes, containers, numpy scalars and arrays, plain
  objects) for each parameter of the public API. Only the documented
  exception types may come out, and their messages name the parameter.

Sizes are chosen so that a *valid* fuzzed value never allocates more than
~100 MB: every huge value is far past the machine's memory (MemoryError
before any allocation), never just below it.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import threading
import time
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audioring import AudioRecord, OverrunError, Ring, VirtualInput, attach
from recording import wait_for_frames

RATE = 48000
NAN, INF = math.nan, math.inf

#: Hypothesis settings of the fuzz tests: 500 random calls each.
FUZZ = settings(max_examples=500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---- helpers ---------------------------------------------------------------------------------------


def ramp_counters(block: np.ndarray) -> np.ndarray:
    """The frame counters an int32 ramp block carries (first channel)."""
    return block[:, 0].astype(np.int64)


def assert_still_records(rec: AudioRecord, frames: int = 2048, timeout: float = 5.0) -> None:
    """New frames keep arriving, and the latest ones are a consecutive ramp."""
    target = rec.frames_recorded + frames
    deadline = time.monotonic() + timeout
    while rec.frames_recorded < target:
        assert time.monotonic() < deadline, f"recording stalled at {rec.frames_recorded} frames"
        time.sleep(0.002)
    latest = rec.read(frames, copy=True)
    assert np.all(np.diff(ramp_counters(latest)) == 1), "the ramp is not consecutive"


@pytest.fixture(scope="module")
def ramp_record():
    """A recorder taking a real-time int32 ramp for the whole module."""
    rec = AudioRecord(2, RATE, RATE, dtype="int32", device=VirtualInput("ramp"), blocksize=256)
    rec.start_recording()
    yield rec
    rec.close()


def record_args(**overrides: Any) -> dict[str, Any]:
    """Small, valid AudioRecord arguments on a virtual ramp, with ``overrides``."""
    args: dict[str, Any] = dict(channels=1, sampling_rate=8000, buffer_size=64, device=VirtualInput("ramp"),
                                headroom=0)
    args.update(overrides)
    return args


def try_recording(rec: AudioRecord) -> None:
    """A freshly built recorder starts, reads and closes."""
    try:
        rec.start_recording()
        assert rec.read(1).shape == (1, rec.channels)
        rec.stop()
    finally:
        rec.close()


# ---- AudioRecord(...) ------------------------------------------------------------------------------

#: (argument, bad value, exception, what else the message must say). All are in record_args()' terms.
CONSTRUCTOR_CASES = [
    # channels
    ("channels", NAN, TypeError, "integer"),
    ("channels", INF, TypeError, "integer"),
    ("channels", "2", TypeError, "integer"),
    ("channels", None, TypeError, "integer"),
    ("channels", [1], TypeError, "integer"),
    ("channels", np.float64(1.0), TypeError, "integer"),
    ("channels", np.array([1]), TypeError, "integer"),
    ("channels", True, TypeError, "integer"),
    ("channels", 1 + 0j, TypeError, "integer"),
    ("channels", 2**16 + 1, ValueError, "1..65536"),
    ("channels", 2**64, ValueError, "1..65536"),
    ("channels", -(2**70), ValueError, "positive"),
    ("channels", np.int64(-3), ValueError, "positive"),
    # sampling_rate
    ("sampling_rate", NAN, TypeError, "integer"),
    ("sampling_rate", -INF, TypeError, "integer"),
    ("sampling_rate", 8000.0, TypeError, "integer"),
    ("sampling_rate", b"8000", TypeError, "integer"),
    ("sampling_rate", 10_000_001, ValueError, "1..10000000"),
    ("sampling_rate", 2**100, ValueError, "1..10000000"),
    ("sampling_rate", np.int16(-1), ValueError, "positive"),
    # buffer_size: bytes beyond 64 bits, beyond the address space, beyond memory
    ("buffer_size", NAN, TypeError, "integer"),
    ("buffer_size", INF, TypeError, "integer"),
    ("buffer_size", "64", TypeError, "integer"),
    ("buffer_size", 64.0, TypeError, "integer"),
    ("buffer_size", 2**64, ValueError, "buffer_size must be"),
    ("buffer_size", 2**70, ValueError, "buffer_size must be"),
    ("buffer_size", 2**48, MemoryError, "does not fit in memory"),  # 1 PiB: the largest buffer_size
    ("buffer_size", 2**40, MemoryError, "does not fit in memory"),  # 4 TiB
    ("buffer_size", -(2**63), ValueError, "positive"),
    # headroom
    ("headroom", NAN, TypeError, "integer"),
    ("headroom", 1.0, TypeError, "integer"),
    ("headroom", "0", TypeError, "integer"),
    ("headroom", -1, ValueError, "0.."),
    ("headroom", 2**64, ValueError, "headroom must be"),
    ("headroom", 2**42, MemoryError, "does not fit in memory"),
    # blocksize
    ("blocksize", NAN, TypeError, "integer"),
    ("blocksize", INF, TypeError, "integer"),
    ("blocksize", None, TypeError, "integer"),
    ("blocksize", "256", TypeError, "integer"),
    ("blocksize", 2**24 + 1, ValueError, "0..16777216"),
    ("blocksize", -(2**63), ValueError, "0..16777216"),
    # latency
    ("latency", NAN, ValueError, "seconds"),
    ("latency", INF, ValueError, "seconds"),
    ("latency", -INF, ValueError, "seconds"),
    ("latency", 10.001, ValueError, "seconds"),
    ("latency", 10**400, ValueError, "seconds"),
    ("latency", "", ValueError, "seconds"),
    ("latency", b"low", ValueError, "seconds"),
    ("latency", "LOW", ValueError, "seconds"),
    ("latency", [0.1], ValueError, "seconds"),
    ("latency", np.array([0.1, 0.2]), ValueError, "seconds"),
    ("latency", True, ValueError, "seconds"),
    ("latency", 0.1j, ValueError, "seconds"),
    # dtype
    ("dtype", "(2,", TypeError, "float32"),  # numpy itself raises SyntaxError for this one
    ("dtype", {}, TypeError, "float32"),
    ("dtype", "f4,f4", TypeError, "float32"),
    ("dtype", np.float64, TypeError, "float32"),
    ("dtype", "float32 ", TypeError, "float32"),
    ("dtype", ">i4" if np.little_endian else "<i4", TypeError, "float32"),
    ("dtype", object(), TypeError, "float32"),
    ("dtype", np.array([1], "int16"), TypeError, "float32"),
    ("dtype", NAN, TypeError, "float32"),
    # driver
    ("driver", None, ValueError, "native, python"),
    ("driver", "NATIVE", ValueError, "native, python"),
    ("driver", b"native", ValueError, "native, python"),
    ("driver", np.array(["native"]), ValueError, "native, python"),  # `in` would have let it through
    ("driver", np.array(["native", "python"]), ValueError, "native, python"),  # `in` would have raised
    ("driver", ["native"], ValueError, "native, python"),
    # device (no PortAudio device is involved: these fail before any stream opens)
    ("device", 1.5, TypeError, "VirtualInput"),
    ("device", NAN, TypeError, "VirtualInput"),
    ("device", b"pulse", TypeError, "VirtualInput"),
    ("device", {0}, TypeError, "VirtualInput"),
    ("device", np.float32(0), TypeError, "VirtualInput"),
    ("device", True, TypeError, "VirtualInput"),
    ("device", 2**70, ValueError, "Available input devices"),  # sounddevice said OverflowError
    ("device", -(2**70), ValueError, "Available input devices"),
    ("device", 10**6, ValueError, "Available input devices"),
    ("device", "no such device \u2603", ValueError, "Available input devices"),
    # share: a name, never a path
    ("share", "", ValueError, "1..64 characters"),
    ("share", "a/b", ValueError, "1..64 characters"),
    ("share", "..", ValueError, "1..64 characters"),
    ("share", ".hidden", ValueError, "1..64 characters"),
    ("share", "x" * 65, ValueError, "1..64 characters"),
    ("share", "mic\u00e9", ValueError, "1..64 characters"),
    ("share", "a\0b", ValueError, "1..64 characters"),
    ("share", b"mic", TypeError, "a str"),
    ("share", 5, TypeError, "a str"),
    # device_rate
    ("device_rate", 0, ValueError, "1..10000000"),
    ("device_rate", 10**8, ValueError, "1..10000000"),
    ("device_rate", 8000.0, TypeError, "integer"),
    ("device_rate", "8000", TypeError, "integer"),
    ("device_rate", True, TypeError, "integer"),
    ("device_rate", NAN, TypeError, "integer"),
    # mapping (record_args() records 1 channel)
    ("mapping", [0], ValueError, "did you mean [1]"),
    ("mapping", [-1], ValueError, "from 1"),
    ("mapping", [1, 2], ValueError, "one device channel per recorded channel (1)"),
    ("mapping", [], ValueError, "one device channel per recorded channel (1)"),
    ("mapping", [2**16 + 1], ValueError, "1..65536"),
    ("mapping", [2**70], ValueError, "1..65536"),
    ("mapping", "1", TypeError, "sequence"),
    ("mapping", 1, TypeError, "sequence"),
    ("mapping", [1.0], TypeError, "integers"),
    ("mapping", [True], TypeError, "integers"),
    ("mapping", [NAN], TypeError, "integers"),
    # quality
    ("quality", "best", ValueError, "'very high'"),
    ("quality", "HIGH", ValueError, "'very high'"),
    ("quality", b"high", ValueError, "'very high'"),
    ("quality", None, ValueError, "'very high'"),
    ("quality", 1, ValueError, "'very high'"),
]


@pytest.mark.parametrize(("argument", "value", "error", "says"), CONSTRUCTOR_CASES,
                         ids=[f"{a}={v!r}"[:60] for a, v, _, _ in CONSTRUCTOR_CASES])
def test_constructor_names_the_bad_argument(ramp_record, argument, value, error, says):
    threads = threading.active_count()
    with pytest.raises(error, match=argument) as info:
        AudioRecord(**record_args(**{argument: value}))
    assert says in str(info.value)
    gc.collect()  # a half-built recorder must leave nothing running behind
    assert threading.active_count() == threads
    try_recording(AudioRecord(**record_args()))
    assert_still_records(ramp_record, 512)


def test_buffer_size_plus_headroom_past_the_ring_bound_names_both():
    # Each in range, their sum (2**48 + one second) past the largest ring.
    with pytest.raises(ValueError, match=r"buffer_size=281474976710656 \+ headroom=8000 .* do not fit"):
        AudioRecord(1, 8000, 2**48, device=VirtualInput())


def test_memory_error_names_buffer_size_and_channels_for_many_channels():
    # 8 channels x (2**37 + 8000) frames x 4 bytes = 4 TiB: no machine running this has it.
    with pytest.raises(MemoryError, match=r"buffer_size=137438953472 .*channels=8"):
        AudioRecord(8, 8000, 2**37, device=VirtualInput())
    with pytest.raises(MemoryError, match=r"headroom=137438953472 .*channels=8"):
        AudioRecord(8, 8000, 100, headroom=2**37, device=VirtualInput())
    try_recording(AudioRecord(8, 8000, 100, device=VirtualInput()))


# ---- VirtualInput(...) -------------------------------------------------------------------------------

VIRTUAL_CASES = [
    ("signal", None, ValueError),
    ("signal", b"sine", ValueError),
    ("signal", "Sine", ValueError),
    ("signal", np.array(["sine"]), ValueError),  # `in` would have let it through
    ("signal", np.array(["sine", "ramp"]), ValueError),  # `in` would have raised, naming nothing
    ("signal", ["sine"], ValueError),
    ("frequency", None, TypeError),
    ("frequency", object(), TypeError),
    ("frequency", 1 + 1j, TypeError),
    ("frequency", NAN, ValueError),
    ("frequency", INF, ValueError),
    ("frequency", -440, ValueError),
    ("frequency", [440, NAN], ValueError),
    ("frequency", [440, "880"], ValueError),
    ("frequency", "440", ValueError),
    ("frequency", True, ValueError),
    ("frequency", np.array([], float), ValueError),
    ("amplitude", NAN, ValueError),
    ("amplitude", INF, ValueError),
    ("amplitude", 1.0000001, ValueError),
    ("amplitude", -0.1, ValueError),
    ("amplitude", "0.5", ValueError),
    ("amplitude", None, ValueError),
    ("realtime", 1, TypeError),
    ("realtime", "yes", TypeError),
    ("realtime", None, TypeError),
    ("realtime", np.array([True]), TypeError),
    ("speed", 0, ValueError),
    ("speed", -1.0, ValueError),
    ("speed", NAN, ValueError),
    ("speed", INF, ValueError),
    ("speed", "fast", ValueError),
    ("speed", [2.0], ValueError),
    ("frames", -1, ValueError),
    ("frames", 2**63, ValueError),  # the native side holds int64: this once escaped as an unnamed TypeError
    ("frames", 2**70, ValueError),
    ("frames", 1.5, TypeError),
    ("frames", NAN, TypeError),
    ("frames", "100", TypeError),
    ("frames", True, TypeError),
    ("seed", -1, ValueError),
    ("seed", 2**64, ValueError),
    ("seed", 1.0, ValueError),
    ("seed", None, ValueError),
]


@pytest.mark.parametrize(("argument", "value", "error"), VIRTUAL_CASES,
                         ids=[f"{a}={v!r}"[:60] for a, v, _ in VIRTUAL_CASES])
def test_virtual_input_names_the_bad_argument(ramp_record, argument, value, error):
    kwargs = {argument: value}
    if argument not in ("signal", "frequency"):
        kwargs["signal"] = "ramp"
    with pytest.raises(error, match=argument):
        VirtualInput(**kwargs)
    assert_still_records(ramp_record, 512)


def test_virtual_input_accepts_numpy_numbers_and_arrays():
    # Numbers of any real type work, as they would in numpy code.
    vi = VirtualInput("sine", np.array([440.0, 880.0]), amplitude=np.float32(0.25), speed=np.float64(2.0),
                      frames=np.int64(4800))
    assert vi.frequencies == [440.0, 880.0] and vi.frames == 4800 and isinstance(vi.frames, int)
    assert VirtualInput("sine", np.float32(440)).frequencies == [440.0]
    assert VirtualInput("sine", np.int16(440)).frequencies == [440.0]
    with AudioRecord(2, RATE, 4800, device=vi) as rec:
        _wait(lambda: rec.frames_recorded >= 4800)


def test_a_tiny_speed_crawls_instead_of_running_free():
    # speed * rate / frame used to overflow the clock's int64 nanoseconds (undefined
    # behaviour; on x86 the due time wrapped into the past and the input free-ran).
    for speed in (1e-300, 1e-12):
        with AudioRecord(1, RATE, 4800, device=VirtualInput("ramp", speed=speed)) as rec:
            time.sleep(0.2)
            assert rec.frames_recorded == 0, f"speed={speed} delivered {rec.frames_recorded} frames"
            started = time.monotonic()
        assert time.monotonic() - started < 1.0  # and stopping does not wait for the crawl
    with AudioRecord(1, RATE, 4800, device=VirtualInput("ramp", speed=1e300)) as rec:  # as fast as it goes
        _wait(lambda: rec.frames_recorded > 100_000)


def test_virtual_input_that_does_not_fit_the_recorder_names_why(ramp_record):
    with pytest.raises(ValueError, match="half the sampling rate"):
        AudioRecord(1, 8000, 64, device=VirtualInput("sine", 1e300))
    with pytest.raises(ValueError, match="2 frequencies"):
        AudioRecord(3, 8000, 64, device=VirtualInput("sine", [100, 200]))
    assert_still_records(ramp_record, 512)


# ---- Ring(...) (test_ring.py holds the basic cases) -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"channels": NAN}, TypeError, "channels"),
        ({"channels": INF}, TypeError, "channels"),
        ({"capacity": NAN}, TypeError, "capacity"),
        ({"capacity": -INF}, TypeError, "capacity"),
        ({"capacity": np.array([64])}, TypeError, "capacity"),
        ({"dtype": "(2,"}, TypeError, "dtype"),  # numpy raises SyntaxError
        ({"dtype": {"names": ["a"], "formats": ["f4"]}}, TypeError, "dtype"),
        ({"dtype": np.array([1.0])}, TypeError, "dtype"),
        ({"mirrored": np.array([True])}, ValueError, "mirrored"),
        ({"mirrored": NAN}, ValueError, "mirrored"),
        ({"capacity": 2**47, "channels": 2**16}, MemoryError, "capacity"),  # bytes overflow 64 bits
        ({"share": ""}, ValueError, "share"),
        ({"share": "../ring"}, ValueError, "share"),
        ({"share": 3}, TypeError, "share"),
        ({"sampling_rate": -1}, ValueError, "sampling_rate"),
        ({"sampling_rate": 10**8}, ValueError, "sampling_rate"),
        ({"sampling_rate": 1.5}, TypeError, "sampling_rate"),
        ({"sampling_rate": "48000"}, TypeError, "sampling_rate"),
    ],
    ids=repr,
)
def test_ring_constructor_names_the_bad_argument(kwargs, error, match):
    args: dict[str, Any] = {"channels": 1, "capacity": 64, **kwargs}
    with pytest.raises(error, match=match):
        Ring(**args)
    ring = Ring(1, 64, "int16")
    ring.write(np.ones((3, 1), np.int16))
    assert ring.latest(3).tolist() == [[1], [1], [1]]


@pytest.mark.parametrize("copy", ["yes", "", None, 1, 0, 1.0, [True], np.array([True, False])], ids=repr)
def test_copy_must_be_a_bool(ramp_record, copy):
    # Truthiness is not enough: copy="no" would have copied, an array raised an unnamed ValueError.
    with pytest.raises(TypeError, match="copy must be True or False"):
        ramp_record.read(10, copy=copy)
    with pytest.raises(TypeError, match="copy must be True or False"):
        Ring(1, 64).latest(10, copy=copy)
    assert ramp_record.read(10, copy=np.bool_(True)).flags.owndata  # numpy's bools are bools
    assert_still_records(ramp_record, 512)


# ---- read(), time_at(), is_intact(), frame_of() ------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "error", "match"),
    [
        (NAN, TypeError, "size"),
        (INF, TypeError, "size"),
        (None, TypeError, "size"),
        ("10", TypeError, "size"),
        (np.float64(10), TypeError, "size"),
        (np.array([10]), TypeError, "size"),
        (True, TypeError, "size"),
        (2**64, ValueError, "Cannot read more samples than the size of the buffer."),
        (-(2**64), ValueError, "Size must be positive."),
        (np.int64(0), ValueError, "Size must be positive."),
        (np.uint64(2**63), ValueError, "Cannot read more samples"),
    ],
    ids=repr,
)
def test_read_names_the_bad_size(ramp_record, size, error, match):
    with pytest.raises(error, match=match):
        ramp_record.read(size)
    assert ramp_record.read(np.int64(5)).shape == (5, 2)
    assert_still_records(ramp_record, 512)


@pytest.mark.parametrize(
    ("frame", "error"),
    [(NAN, TypeError), (INF, TypeError), (1.5, TypeError), (None, TypeError), ("0", TypeError),
     (np.array([0]), TypeError), (2**62 + 1, ValueError), (-(2**62) - 1, ValueError), (2**100, ValueError)],
    ids=repr,
)
def test_time_at_names_the_bad_frame(ramp_record, frame, error):
    with pytest.raises(error, match="frame"):
        ramp_record.time_at(frame)
    assert ramp_record.time_at(np.int64(ramp_record.frames_written)) == pytest.approx(ramp_record.time, abs=0.5)
    assert math.isfinite(ramp_record.time_at(2**62))  # the extremes of the range are fine


def test_is_intact_and_frame_of_check_their_array(ramp_record):
    other = AudioRecord(2, RATE, 4800, dtype="int32", device=VirtualInput("ramp"))
    view = ramp_record.read(1000)
    start = ramp_record.frame_of(view)
    refused = {
        "a copy": view.copy(),
        "read(copy=True)": ramp_record.read(1000, copy=True),
        "Fortran-order copy": np.asfortranarray(view),
        "another recorder's view": other.read(1000),
        "numpy zeros": np.zeros((1000, 2), np.int32),
        "a float64 cast": view.astype(np.float64),
    }
    for method in (ramp_record.is_intact, ramp_record.frame_of, ramp_record.start_frame):
        for what, array in refused.items():
            try:
                method(array)
            except ValueError as error:
                assert str(error) == "array was not returned by a zero-copy read of this ring", what
            else:
                pytest.fail(f"{method.__name__} accepted {what}")
        for value in (None, [[0, 0]], view.tolist(), memoryview(b"\0" * 8), view.base, 3):
            with pytest.raises(TypeError, match="array must be a numpy.ndarray"):
                method(value)
    # Views of its own views, of any layout and dtype, are accepted.
    assert ramp_record.frame_of(view[::3]) == start
    assert ramp_record.frame_of(view[10:, 1]) == start + 10
    assert ramp_record.frame_of(view.T) == start
    assert ramp_record.frame_of(view.view(np.uint8)) == start
    assert ramp_record.frame_of(view[::-1]) == start + 999  # reversed: its first row is the last frame
    # A closed recorder still judges its views.
    view_of_other = other.read(10)
    other.close()
    assert other.is_intact(view_of_other) and other.frame_of(view_of_other) == other.frames_written - 10
    assert_still_records(ramp_record, 512)


# ---- stream() ------------------------------------------------------------------------------------------


#: Bad arguments of stream()/astream() (blocksize 100 unless given), the same on every object that streams.
STREAM_CASES = [
    ({"blocksize": 0}, ValueError, "blocksize"),
    ({"blocksize": -1}, ValueError, "blocksize"),
    ({"blocksize": 2**63}, ValueError, "blocksize"),
    ({"blocksize": NAN}, TypeError, "blocksize"),
    ({"blocksize": 100.0}, TypeError, "blocksize"),
    ({"blocksize": None}, TypeError, "blocksize"),
    ({"blocksize": "100"}, TypeError, "blocksize"),
    ({"hop": 0}, ValueError, "hop"),
    ({"hop": 101}, ValueError, "hop"),
    ({"hop": -1}, ValueError, "hop"),
    ({"hop": NAN}, TypeError, "hop"),
    ({"hop": "50"}, TypeError, "hop"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": -1e-9}, ValueError, "timeout"),
    ({"timeout": NAN}, ValueError, "timeout"),
    ({"timeout": -INF}, ValueError, "timeout"),
    ({"timeout": -(10**400)}, ValueError, "timeout"),
    ({"timeout": "1"}, ValueError, "timeout"),
    ({"timeout": True}, ValueError, "timeout"),
    ({"timeout": [1.0]}, ValueError, "timeout"),
    ({"timeout": 1j}, ValueError, "timeout"),
    ({"start": NAN}, TypeError, "start"),
    ({"start": 1.0}, TypeError, "start"),
    ({"start": "0"}, TypeError, "start"),
    ({"start": 2**62 + 1}, ValueError, "start"),
    ({"start": -(2**62) - 1}, ValueError, "start"),
]


@pytest.fixture(scope="module")
def streaming(ramp_record):
    """Everything that streams: the ramp recorder, a shared ring and a reader attached to it."""
    ring = Ring(2, 4096, "int32", share=f"input-validation-{os.getpid()}", sampling_rate=RATE)
    reader = attach(ring.shared_name)
    yield {"AudioRecord": ramp_record, "Ring": ring, "SharedRecording": reader}
    reader.close()
    ring.close()


def next_block(streaming: dict[str, Any], owner: str, method: str) -> np.ndarray:
    """The next block of a new, valid stream of ``owner``, from frames it has not seen yet."""
    target = streaming[owner]
    start = target.frames_written
    if owner != "AudioRecord":
        streaming["Ring"].write(np.arange(start, start + 100, dtype=np.int32).repeat(2).reshape(100, 2))
    stream = getattr(target, method)(100, timeout=2, start=start)
    if method == "astream":
        return asyncio.run(stream.__anext__())
    return next(stream)


@pytest.mark.parametrize(("owner", "method"),
                         [(o, m) for o in ("AudioRecord", "Ring", "SharedRecording") for m in ("stream", "astream")])
@pytest.mark.parametrize(("kwargs", "error", "match"), STREAM_CASES, ids=repr)
def test_stream_names_the_bad_argument(streaming, owner, method, kwargs, error, match):
    args = {"blocksize": 100, **kwargs}
    with pytest.raises(error, match=match):
        getattr(streaming[owner], method)(**args)
    block = next_block(streaming, owner, method)
    assert block.shape == (100, 2)
    assert np.all(np.diff(ramp_counters(block)) == 1)


#: Bad arguments of wait_frames() (frames 1 unless given), the same on every object that has it.
WAIT_CASES = [
    ({"frames": -1}, ValueError, "frames"),
    ({"frames": 2**63}, ValueError, "frames"),
    ({"frames": 1.0}, TypeError, "frames"),
    ({"frames": "1"}, TypeError, "frames"),
    ({"frames": None}, TypeError, "frames"),
    ({"frames": True}, TypeError, "frames"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": NAN}, ValueError, "timeout"),
    ({"timeout": "1"}, ValueError, "timeout"),
]


@pytest.mark.parametrize("owner", ["AudioRecord", "Ring", "SharedRecording"])
@pytest.mark.parametrize(("kwargs", "error", "match"), WAIT_CASES, ids=repr)
def test_wait_frames_names_the_bad_argument(streaming, owner, kwargs, error, match):
    target = streaming[owner]
    args = {"frames": 1, **kwargs}
    with pytest.raises(error, match=match):
        asyncio.run(target.wait_frames(**args))
    assert next_block(streaming, owner, "astream").shape == (100, 2)


def test_stream_takes_any_timeout_from_zero_to_forever(ramp_record):
    # inf and ints too large for a float (10**400 once raised OverflowError) mean "wait as long as it takes".
    for timeout in (0, 0.0, 1e-9, 2, INF, 10**400, np.float64(2.0)):
        stream = ramp_record.stream(100, timeout=timeout, start=ramp_record.frames_written - 100)
        assert next(stream).shape == (100, 2)  # those frames are there: no wait at all
    stream = ramp_record.stream(100, timeout=10**400, start=ramp_record.frames_written)
    assert next(stream).shape == (100, 2)  # waits for the next frames, as long as it takes


def test_stream_start_outside_the_ring_says_so(ramp_record):
    # Far in the future: nothing arrives in time.
    future = ramp_record.stream(100, timeout=0.05, start=2**62)
    with pytest.raises(TimeoutError, match="no audio"):
        next(future)
    # Far in the past: before the recording's first frame, never recorded by it (cleared zeros at best):
    # the stream begins where the recording does.
    assert ramp_record.stream(100, timeout=2, start=-(2**62)).position == ramp_record.first_frame
    # In the recording but overwritten long ago: reported as lost, then it continues from the newest frame.
    capacity = ramp_record.buffer_size + ramp_record.headroom
    wait_for_frames(ramp_record, capacity + 100)
    past = ramp_record.stream(100, timeout=2, start=ramp_record.first_frame)
    with pytest.raises(OverrunError) as info:
        next(past)
    assert info.value.frames_lost == info.value.position - ramp_record.first_frame
    block = next(past)
    assert ramp_record.frame_of(block) == info.value.position


# ---- hypothesis: random values of random types for every parameter ----------------------------------

_NUMPY_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.integers(-128, 127).map(np.int8),
    st.floats(width=32).map(np.float32),
    st.floats().map(np.float64),
    st.booleans().map(np.bool_),
)
_ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int16, np.uint8, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
#: int16 blocks of one channel: right for a Ring(1, ..., "int16") unless sliced, reordered or byte-swapped.
_BLOCKS = hnp.arrays(np.int16, st.tuples(st.integers(0, 200), st.sampled_from([1, 1, 1, 2])))
#: Integers that are either small or far beyond any machine's memory, never a few GiB in between.
_INTEGERS = st.one_of(
    st.integers(-5, 5000),
    st.sampled_from([0, -1, 1, 2**16, 2**16 + 1, 2**24, 2**24 + 1, 2**48, 2**48 + 1,
                     2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**64)]),
    st.integers(2**40, 2**70),
    st.integers(-(2**70), -(2**40)),
    st.integers(min_value=2**100),
)
_FLOATS = st.one_of(st.floats(), st.sampled_from([NAN, INF, -INF, 0.0, -0.0, 1e-300, 1e300, 0.1, 440.0]))
_WORDS = st.sampled_from(["float32", "int32", "int16", "int8", "uint8", "float64", "sine", "noise", "ramp",
                          "native", "python", "low", "high", "memfd", "shm", "", "(2,", "f4,f4", "O"])
ANYTHING = st.one_of(
    st.none(), st.booleans(), _INTEGERS, _FLOATS, st.text(max_size=6), _WORDS, st.binary(max_size=4),
    st.complex_numbers(max_magnitude=1e6), _NUMPY_SCALARS, _ARRAYS,
    st.lists(_INTEGERS, max_size=3), st.tuples(_FLOATS),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([object(), Ellipsis, NotImplemented, int, float, np.float32, np.dtype("int16")]),
)


def assert_documented(error: BaseException, allowed: tuple[type[BaseException], ...], names: tuple[str, ...]) -> None:
    """``error`` is one of the documented types and its message names one of ``names``."""
    assert isinstance(error, allowed), f"undocumented {type(error).__name__}: {error}"
    if isinstance(error, (ValueError, TypeError, MemoryError)):
        message = str(error).lower()
        assert any(name.lower() in message for name in names), f"{type(error).__name__} names none of {names}: {error}"


@FUZZ
@given(argument=st.sampled_from(["channels", "sampling_rate", "buffer_size", "dtype", "blocksize", "latency",
                                 "headroom", "driver", "device", "device_rate", "quality", "share"]),
       value=ANYTHING)
def test_fuzz_audio_record_constructor(argument: str, value: object) -> None:
    import sounddevice as sd

    allowed: tuple[type[BaseException], ...] = (ValueError, TypeError, MemoryError)
    if argument == "device":  # a random string may name a real device that then refuses these settings
        allowed += (sd.PortAudioError,)
    names = (argument, "size must be positive") if argument != "device" else ("device",)
    try:
        rec = AudioRecord(**record_args(**{argument: value}))
    except Exception as error:  # noqa: BLE001 - judged right here
        assert_documented(error, allowed, names)
        return
    try_recording(rec)


@FUZZ
@given(argument=st.sampled_from(["signal", "frequency", "amplitude", "realtime", "speed", "frames", "seed"]),
       value=ANYTHING)
def test_fuzz_virtual_input(argument: str, value: object) -> None:
    kwargs: dict[str, Any] = {argument: value}
    if argument != "frequency" and argument != "signal":
        kwargs["signal"] = "ramp"
    try:
        device = VirtualInput(**kwargs)
    except Exception as error:  # noqa: BLE001 - judged right here
        assert_documented(error, (ValueError, TypeError), (argument,))
        return
    try:
        rec = AudioRecord(1, RATE, 64, headroom=0, device=device)
    except Exception as error:  # noqa: BLE001 - a sine too high for the rate, say
        assert_documented(error, (ValueError,), ("frequency", "frequencies"))
        return
    try_recording(rec)


@FUZZ
@given(argument=st.sampled_from(["channels", "capacity", "dtype", "mirrored"]), value=ANYTHING,
       block=st.one_of(ANYTHING, hnp.arrays(np.int16, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
                       _BLOCKS, _BLOCKS.map(lambda a: a[::2]),
                       _BLOCKS.map(np.asfortranarray), _BLOCKS.map(lambda a: a.astype(">i2"))),
       frames=ANYTHING, copy=ANYTHING)
def test_fuzz_ring(argument: str, value: object, block: object, frames: object, copy: object) -> None:
    try:
        ring = Ring(**{"channels": 1, "capacity": 64, "dtype": "int16", argument: value})  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - judged right here
        assert_documented(error, (ValueError, TypeError, MemoryError, OSError), (argument,))
        ring = Ring(1, 64, "int16")
    before = ring.frames_written
    try:
        ring.write(block)  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - judged right here
        assert_documented(error, (ValueError, TypeError), ("block",))
        assert ring.frames_written == before  # a refused block changes nothing
    try:
        ring.latest(frames, copy=copy)  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - judged right here
        assert_documented(error, (ValueError, TypeError), ("frames", "copy"))
    for check in (ring.is_intact, ring.frame_of, ring.start_frame):
        try:
            check(block)  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - judged right here
            assert_documented(error, (ValueError, TypeError), ("array",))
    ring.write(np.full((3, ring.channels), 7, ring.dtype))
    assert (ring.latest(3) == 7).all()


@FUZZ
@given(method=st.sampled_from(["read", "time_at", "is_intact", "frame_of", "start_frame", "stream"]),
       first=ANYTHING, second=ANYTHING, third=ANYTHING, fourth=ANYTHING)
def test_fuzz_record_methods(ramp_record: AudioRecord, method: str, first: object, second: object,
                             third: object, fourth: object) -> None:
    rec = ramp_record
    call: Callable[[], object]
    names: tuple[str, ...]
    if method == "read":
        call, names = (lambda: rec.read(first, copy=second)), ("size", "copy")  # type: ignore[arg-type]
    elif method == "time_at":
        call, names = (lambda: rec.time_at(first)), ("frame",)  # type: ignore[arg-type]
    elif method in ("is_intact", "frame_of", "start_frame"):
        call, names = (lambda: getattr(rec, method)(first)), ("array",)
    else:
        call, names = (lambda: rec.stream(first, hop=second, timeout=third, start=fourth)), (  # type: ignore[arg-type]
            "blocksize", "hop", "timeout", "start")
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - judged right here
        assert_documented(error, (ValueError, TypeError), names)
        return
    if method == "stream":
        stream = result
        # Only wait where the wait is bounded: a short timeout, or frames that are already there.
        if ((stream.timeout is not None and stream.timeout <= 0.1)
                or stream.position + stream.blocksize <= rec.frames_written):
            try:
                block = next(stream)
            except (TimeoutError, OverrunError):
                pass
            else:
                assert block.shape == (stream.blocksize, 2)
                assert rec.frame_of(block) == stream.position - stream.hop


def test_recorder_survived_the_fuzzing(ramp_record):
    assert ramp_record.recording
    assert_still_records(ramp_record, 4800)


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
