"""Tests of the public `audioring.Ring`.

- A hypothesis state machine checks write / latest / is_intact / frame_of /
  frames_written / clear against a plain numpy model, for every sample format
  and every memory path.
- Zero-copy proofs: shared memory, read-only arrays, the native window base,
  one contiguous array across the wrap point, arrays that outlive the ring.
- Argument errors: type and range of every argument, messages that name it,
  and a ring that keeps working afterwards.
"""

from __future__ import annotations

import gc
import importlib.metadata
import mmap
import pickle
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import audioring
from audioring import Ring

DTYPES = ("float32", "int32", "int16", "int8", "uint8")

#: The ``mirrored`` argument of every memory path, and the memory it gives on Linux.
MEMORY_KIND = {True: "memfd", False: "plain", "memfd": "memfd", "shm": "shm"}
MIRRORED = [m for m in MEMORY_KIND if sys.platform.startswith("linux") or m != "memfd"]

PAGE = mmap.PAGESIZE

#: Modest settings: the whole file runs in well under a minute on 2 cores.
FAST = settings(max_examples=80, deadline=None, database=None)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memfd is Linux-only")


def memory_params():
    return [pytest.param(m, id=f"mirrored={m!r}", marks=[linux_only] if m == "memfd" else []) for m in MEMORY_KIND]


def random_block(rng: np.random.Generator, dtype: object, frames: int, channels: int) -> np.ndarray:
    """Random samples over the dtype's whole range, so that misplaced frames show up."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.standard_normal((frames, channels)) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=(frames, channels), endpoint=True, dtype=dtype)


def assert_works(ring: Ring) -> None:
    """The ring still accepts a write and serves it back, intact."""
    block = random_block(np.random.default_rng(7), ring.dtype, 3, ring.channels)
    before = ring.frames_written
    ring.write(block)
    assert ring.frames_written == before + 3
    view = ring.latest(3)
    np.testing.assert_array_equal(view, block)
    assert ring.is_intact(view)
    np.testing.assert_array_equal(ring.latest(3, copy=True), block)


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


class Model:
    """What a ring must hold: the latest ``capacity`` frames of everything written.

    ``tail`` holds frames ``[written - capacity, written)``; frames with
    negative numbers were never written and are zeros.
    """

    def __init__(self, capacity: int, channels: int, dtype: np.dtype) -> None:
        self.capacity = capacity
        self.written = 0
        self.tail = np.zeros((capacity, channels), dtype)

    def write(self, block: np.ndarray) -> None:
        self.written += len(block)
        self.tail = np.concatenate([self.tail, block])[-self.capacity :]

    def clear(self) -> None:
        self.write(np.zeros_like(self.tail))

    def frames(self, start: int, count: int) -> np.ndarray:
        """Frames ``[start, start + count)``, all among the latest ``capacity``."""
        first = self.written - self.capacity
        assert first <= start and start + count <= self.written
        return self.tail[start - first : start - first + count]

    def intact(self, start: int) -> bool:
        """No frame at or after ``start`` has been overwritten yet."""
        return self.written - start <= self.capacity

    def slots(self, start: int, count: int) -> np.ndarray:
        """What ring memory holds where frames ``[start, start + count)`` live now.

        The slot of frame f holds the latest written frame g with g = f (mod
        capacity): a zero-copy view always shows that, intact or not.
        """
        first = self.written - self.capacity
        return self.tail[(np.arange(start, start + count) - first) % self.capacity]


# ---------------------------------------------------------------------------
# Semantics against the model
# ---------------------------------------------------------------------------


class RingMachine(RuleBasedStateMachine):
    """Random writes, reads and clears; every view is rechecked after every step."""

    MAX_VIEWS = 6

    @initialize(
        dtype=st.sampled_from(DTYPES),
        channels=st.integers(1, 3),
        requested=st.one_of(st.integers(1, 16), st.integers(1, 6000)),
        mirrored=st.sampled_from(MIRRORED),
        seed=st.integers(0, 2**32 - 1),
    )
    def make(self, dtype: str, channels: int, requested: int, mirrored: object, seed: int) -> None:
        self.ring = Ring(channels, requested, dtype, mirrored=mirrored)
        assert self.ring.capacity >= requested
        assert self.ring.channels == channels
        assert self.ring.dtype == np.dtype(dtype)
        if sys.platform.startswith("linux"):
            assert self.ring.memory == MEMORY_KIND[mirrored]
        assert self.ring.mirrored == (self.ring.memory != "plain")
        self.model = Model(self.ring.capacity, channels, np.dtype(dtype))
        self.rng = np.random.default_rng(seed)
        self.views: list[tuple[np.ndarray, int]] = []

    def frame_counts(self, low: int, high: int) -> st.SearchStrategy[int]:
        """Few frames, any number, and the edges around ``capacity``."""
        capacity = self.model.capacity
        edges = [n for n in (capacity - 1, capacity, capacity + 1) if low <= n <= high]
        return st.one_of(st.integers(low, min(8, high)), st.integers(low, high), st.sampled_from(edges))

    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        capacity = self.model.capacity
        longer = st.integers(capacity, 3 * capacity + 5)
        frames = data.draw(st.one_of(self.frame_counts(0, capacity + 1), longer), label="frames")
        block = random_block(self.rng, self.ring.dtype, frames, self.ring.channels)
        self.ring.write(block)
        self.model.write(block)
        block[...] = 1  # the ring copied the block: changing it now changes nothing

    @rule(data=st.data())
    def read_view(self, data: st.DataObject) -> None:
        frames = data.draw(self.frame_counts(1, self.model.capacity), label="frames")
        view = self.ring.latest(frames)
        start = self.model.written - frames
        assert view.shape == (frames, self.ring.channels)
        assert view.dtype == self.ring.dtype
        assert view.flags.c_contiguous and not view.flags.writeable and not view.flags.owndata
        assert self.ring.frame_of(view) == start
        assert self.ring.is_intact(view)
        np.testing.assert_array_equal(view, self.model.frames(start, frames))
        self.views = [*self.views[-(self.MAX_VIEWS - 1) :], (view, start)]

    @rule(data=st.data())
    def read_copy(self, data: st.DataObject) -> None:
        frames = data.draw(self.frame_counts(1, self.model.capacity), label="frames")
        copy = self.ring.latest(frames, copy=True)
        assert copy.shape == (frames, self.ring.channels)
        assert copy.dtype == self.ring.dtype
        assert copy.flags.owndata and copy.flags.writeable and copy.flags.c_contiguous
        assert not np.shares_memory(copy, self.ring.latest(self.model.capacity))
        np.testing.assert_array_equal(copy, self.model.frames(self.model.written - frames, frames))
        copy[...] = 1  # an owned copy: the ring does not see this
        latest = self.model.frames(self.model.written - frames, frames)
        np.testing.assert_array_equal(self.ring.latest(frames), latest)

    @rule()
    def clear(self) -> None:
        self.ring.clear()
        self.model.clear()
        np.testing.assert_array_equal(self.ring.latest(self.model.capacity), 0)

    @invariant()
    def counters_agree(self) -> None:
        assert self.ring.frames_written == self.model.written

    @invariant()
    def views_agree(self) -> None:
        for view, start in self.views:
            assert self.ring.frame_of(view) == start
            intact = self.ring.is_intact(view)
            assert intact == self.model.intact(start), (start, self.model.written, self.model.capacity)
            if intact:
                np.testing.assert_array_equal(view, self.model.frames(start, len(view)))
            # Zero-copy: the view *is* the ring memory, overwritten or not.
            np.testing.assert_array_equal(view, self.model.slots(start, len(view)))


TestRingMachine = RingMachine.TestCase
TestRingMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None, database=None)


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize("dtype", DTYPES)
def test_memory_path_and_properties(dtype: str, mirrored: object) -> None:
    ring = Ring(2, 100, dtype, mirrored=mirrored)
    if sys.platform.startswith("linux"):
        assert ring.memory == MEMORY_KIND[mirrored]
    assert ring.mirrored is (ring.memory != "plain")
    assert ring.channels == 2
    assert ring.dtype == np.dtype(dtype)
    assert isinstance(ring.dtype, np.dtype)
    assert ring.frames_written == 0
    assert repr(ring) == (
        f"Ring(channels=2, capacity={ring.capacity}, dtype='{dtype}', memory='{ring.memory}', frames_written=0)"
    )


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize("dtype", DTYPES)
def test_fresh_ring_reads_zeros_then_partial_history(dtype: str, mirrored: object) -> None:
    ring = Ring(2, 1, dtype, mirrored=mirrored)
    capacity = ring.capacity
    for copy in (False, True):
        np.testing.assert_array_equal(ring.latest(capacity, copy=copy), np.zeros((capacity, 2), dtype))
    block = random_block(np.random.default_rng(1), dtype, 5, 2)
    ring.write(block)
    for copy in (False, True):
        latest = ring.latest(8, copy=copy)
        np.testing.assert_array_equal(latest[:3], 0)
        np.testing.assert_array_equal(latest[3:], block)
    view = ring.latest(capacity)
    assert ring.frame_of(view) == 5 - capacity  # frames never written have negative numbers
    assert ring.is_intact(view)


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize("dtype", DTYPES)
def test_block_longer_than_capacity_keeps_latest_frames(dtype: str, mirrored: object) -> None:
    ring = Ring(1, 1, dtype, mirrored=mirrored)
    capacity = ring.capacity
    rng = np.random.default_rng(2)
    ring.write(random_block(rng, dtype, 7, 1))
    block = random_block(rng, dtype, 3 * capacity + 11, 1)
    ring.write(block)
    assert ring.frames_written == 7 + 3 * capacity + 11
    for copy in (False, True):
        np.testing.assert_array_equal(ring.latest(capacity, copy=copy), block[-capacity:])
    assert ring.frame_of(ring.latest(capacity)) == 7 + 2 * capacity + 11


@pytest.mark.parametrize("mirrored", memory_params())
def test_empty_block_changes_nothing(mirrored: object) -> None:
    ring = Ring(2, 1, "int16", mirrored=mirrored)
    ring.write(np.ones((4, 2), np.int16))
    view = ring.latest(4)
    ring.write(np.zeros((0, 2), np.int16))
    assert ring.frames_written == 4
    assert ring.is_intact(view)
    np.testing.assert_array_equal(ring.latest(4), 1)


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize("dtype", DTYPES)
def test_clear_zeroes_and_invalidates_earlier_views(dtype: str, mirrored: object) -> None:
    ring = Ring(3, 1, dtype, mirrored=mirrored)
    capacity = ring.capacity
    ring.write(random_block(np.random.default_rng(3), dtype, capacity // 2 + 1, 3))
    whole, one = ring.latest(capacity), ring.latest(1)
    ring.clear()
    assert ring.frames_written == capacity // 2 + 1 + capacity  # the zeros count as capacity frames
    assert not ring.is_intact(whole)
    assert not ring.is_intact(one)
    np.testing.assert_array_equal(whole, 0)  # zero-copy: the old view shows the zeroed memory
    for copy in (False, True):
        np.testing.assert_array_equal(ring.latest(capacity, copy=copy), 0)
    after = ring.latest(capacity)
    assert ring.is_intact(after)
    assert_works(ring)
    assert not ring.is_intact(after)  # write after clear laps a full-capacity view


@pytest.mark.parametrize("mirrored", memory_params())
def test_is_intact_boundary_is_exactly_capacity(mirrored: object) -> None:
    ring = Ring(1, 1, "uint8", mirrored=mirrored)
    capacity = ring.capacity
    ring.write(np.full((10, 1), 5, np.uint8))
    view = ring.latest(4)  # starts at frame 6
    ring.write(np.zeros((capacity - 4, 1), np.uint8))  # written since frame 6: exactly capacity
    assert ring.is_intact(view)
    np.testing.assert_array_equal(view, 5)
    ring.write(np.zeros((1, 1), np.uint8))  # one more overwrites frame 6
    assert not ring.is_intact(view)
    assert ring.frame_of(view) == 6


# ---------------------------------------------------------------------------
# Capacity rounding
# ---------------------------------------------------------------------------


@FAST
@given(
    channels=st.one_of(st.integers(1, 8), st.integers(1, 256)),
    requested=st.one_of(st.integers(1, 64), st.integers(1, 10_000)),
    dtype=st.sampled_from(DTYPES),
    mirrored=st.sampled_from(MIRRORED),
)
def test_capacity_is_smallest_page_multiple(channels: int, requested: int, dtype: str, mirrored: object) -> None:
    ring = Ring(channels, requested, dtype, mirrored=mirrored)
    frame_bytes = channels * np.dtype(dtype).itemsize
    capacity = ring.capacity
    assert capacity >= requested
    assert capacity * frame_bytes % PAGE == 0
    smaller = np.arange(requested, capacity, dtype=np.int64)
    assert not np.any(smaller * frame_bytes % PAGE == 0), "a smaller page-multiple capacity exists"


@pytest.mark.parametrize(
    ("channels", "requested", "dtype", "expected"),
    [
        (2, 1, "int16", PAGE // 4),
        (1, 1, "uint8", PAGE),
        (1, PAGE + 1, "uint8", 2 * PAGE),
        (3, 1, "int16", PAGE // 2),  # 6-byte frames: gcd with the page is 2
        (8, 1, "float32", PAGE // 32),
        (PAGE // 4, 1, "float32", 1),  # one frame is one page
        (PAGE // 4, 3, "float32", 3),
        (1, PAGE // 4, "float32", PAGE // 4),  # already a page multiple: unchanged
    ],
)
def test_capacity_rounding_examples(channels: int, requested: int, dtype: str, expected: int) -> None:
    assert Ring(channels, requested, dtype).capacity == expected
    assert Ring(channels, requested, dtype, mirrored=False).capacity == expected


# ---------------------------------------------------------------------------
# Zero-copy proofs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mirrored", memory_params())
def test_reads_share_ring_memory(mirrored: object) -> None:
    ring = Ring(2, 1, "float32", mirrored=mirrored)
    ring.write(random_block(np.random.default_rng(4), "float32", 100, 2))
    first, second = ring.latest(10), ring.latest(10)
    assert np.shares_memory(first, second)
    assert address(first) == address(second)
    shorter = ring.latest(4)  # the last 4 of the same frames, no wrap in between
    assert np.shares_memory(first, shorter)
    assert address(shorter) == address(first) + 6 * first.strides[0]


@pytest.mark.parametrize("mirrored", memory_params())
def test_view_sees_later_writes_to_its_slots(mirrored: object) -> None:
    ring = Ring(1, 1, "int32", mirrored=mirrored)
    capacity = ring.capacity
    ring.write(np.arange(capacity, dtype=np.int32).reshape(-1, 1))
    view = ring.latest(capacity)
    ring.write(np.array([[-7], [-8]], np.int32))  # overwrites the slots of the view's first two frames
    assert view[0, 0] == -7 and view[1, 0] == -8  # no copy was made
    np.testing.assert_array_equal(view[2:, 0], np.arange(2, capacity))
    assert not ring.is_intact(view)


@pytest.mark.parametrize("mirrored", memory_params())
def test_views_are_read_only(mirrored: object) -> None:
    ring = Ring(2, 1, "int16", mirrored=mirrored)
    view = ring.latest(5)
    assert not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        view[1:] += 1
    with pytest.raises(ValueError):
        view.flags.writeable = True
    with pytest.raises(ValueError):
        np.copyto(view, 3)
    np.testing.assert_array_equal(ring.latest(5), 0)
    assert_works(ring)


@pytest.mark.parametrize("mirrored", memory_params())
def test_view_base_is_native_window(mirrored: object) -> None:
    ring = Ring(2, 1, "int16", mirrored=mirrored)
    ring.write(np.ones((50, 2), np.int16))
    view = ring.latest(20)
    base = view.base
    assert base is not None
    assert not isinstance(base, np.ndarray)
    assert type(base).__name__ == "Window"
    assert type(base).__module__ == "audioring._core"
    assert base.start == ring.frame_of(view) == 30
    assert not view.flags.owndata
    with pytest.raises(AttributeError):
        base.start = 0


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 3])
def test_view_across_wrap_point_is_one_contiguous_array(channels: int, dtype: str, mirrored: object) -> None:
    ring = Ring(channels, 1, dtype, mirrored=mirrored)
    capacity = ring.capacity
    item = np.dtype(dtype).itemsize
    rng = np.random.default_rng(5)
    model = Model(capacity, channels, np.dtype(dtype))
    for frames in (capacity - 13, 20):  # frames_written = capacity + 7: the wrap point is 7 frames back
        block = random_block(rng, dtype, frames, channels)
        ring.write(block)
        model.write(block)
    for frames in (8, 20, capacity // 2, capacity):  # all of these start before the wrap point and end after it
        view = ring.latest(frames)
        assert ring.frame_of(view) % capacity + frames > capacity  # it does cross the wrap point
        assert view.shape == (frames, channels)
        assert view.flags.c_contiguous
        assert view.strides == (channels * item, item)
        assert view.base is not None and not isinstance(view.base, np.ndarray)  # not a concatenation
        assert address(view[-1:, -1:]) - address(view) == (frames * channels - 1) * item  # one span
        np.testing.assert_array_equal(view, model.frames(model.written - frames, frames))
        assert ring.is_intact(view)
        np.testing.assert_array_equal(ring.latest(frames, copy=True), view)


@pytest.mark.parametrize("mirrored", memory_params())
def test_view_outlives_ring(mirrored: object) -> None:
    ring = Ring(2, 1, "float32", mirrored=mirrored)
    capacity = ring.capacity
    block = random_block(np.random.default_rng(6), "float32", capacity + 5, 2)  # wraps
    ring.write(block)
    view = ring.latest(capacity)
    part = view[capacity - 10 :]
    del ring
    gc.collect()
    np.testing.assert_array_equal(view, block[-capacity:])
    del view
    gc.collect()
    np.testing.assert_array_equal(part, block[-10:])
    assert float(part.sum()) == pytest.approx(float(block[-10:].sum()))


@pytest.mark.parametrize("mirrored", memory_params())
def test_copy_is_owned_and_writeable(mirrored: object) -> None:
    ring = Ring(2, 1, "int32", mirrored=mirrored)
    block = random_block(np.random.default_rng(8), "int32", 30, 2)
    ring.write(block)
    copy = ring.latest(30, copy=True)
    view = ring.latest(30)
    assert copy.flags.owndata and copy.flags.writeable and copy.flags.c_contiguous
    assert copy.base is None
    assert not np.shares_memory(copy, view)
    np.testing.assert_array_equal(copy, block)
    copy[...] = 0
    np.testing.assert_array_equal(view, block)
    with pytest.raises(ValueError, match="zero-copy"):
        ring.is_intact(copy)
    with pytest.raises(ValueError, match="zero-copy"):
        ring.frame_of(copy)
    del ring
    gc.collect()
    np.testing.assert_array_equal(view, block)


def test_concurrent_writer_never_yields_torn_reads() -> None:
    """A writer thread laps a reader; intact views and copies are always consistent ramps."""
    ring = Ring(1, 1, "int32")  # smallest capacity, so the reader is lapped often
    capacity = ring.capacity
    ring.write(np.arange(1, capacity + 1, dtype=np.int32).reshape(-1, 1))  # frame f holds f + 1
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            rng = np.random.default_rng(9)
            frame = capacity
            while not stop.is_set():
                n = int(rng.integers(1, capacity // 2))
                ring.write((np.arange(frame + 1, frame + n + 1) % 2**31).astype(np.int32).reshape(-1, 1))
                frame += n
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    writer = threading.Thread(target=produce)
    writer.start()
    rng = np.random.default_rng(10)
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            frames = int(rng.integers(1, capacity + 1))
            view = ring.latest(frames)
            start = ring.frame_of(view)
            snapshot = view.copy()
            if ring.is_intact(view):
                expected = (np.arange(start + 1, start + frames + 1) % 2**31).astype(np.int32)
                np.testing.assert_array_equal(snapshot[:, 0], expected)
            copy = ring.latest(frames, copy=True)[:, 0]
            assert np.all(np.diff(copy) == 1)
    finally:
        stop.set()
        writer.join()
    assert not errors


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------

NOT_INTEGERS = ["2", 2.0, 1.5, None, True, False, [2], (2,), np.float32(2.0)]
OUT_OF_RANGE = [0, -1, -(2**63), 2**63, 2**64, 2**100]


@pytest.fixture(params=memory_params())
def ring(request: pytest.FixtureRequest) -> Ring:
    ring = Ring(2, 1, "int16", mirrored=request.param)
    ring.write(np.ones((5, 2), np.int16))
    return ring


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
@pytest.mark.parametrize("argument", ["channels", "capacity"])
def test_constructor_rejects_non_integers(argument: str, value: object) -> None:
    kwargs: dict[str, object] = {"channels": 2, "capacity": 100, argument: value}
    with pytest.raises(TypeError, match=f"^{argument} must be an integer"):
        Ring(**kwargs)  # type: ignore[arg-type]
    assert_works(Ring(2, 100))


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, 2**16 + 1], ids=repr)
def test_constructor_rejects_channels_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match=f"^channels must be .*, got {value}$"):
        Ring(value, 100)
    assert_works(Ring(2, 100))


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, 2**48 + 1], ids=repr)
def test_constructor_rejects_capacity_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match=f"^capacity must be .*, got {value}$"):
        Ring(2, value)
    assert_works(Ring(2, 100))


def test_constructor_accepts_integer_likes() -> None:
    ring = Ring(np.int64(2), np.uint16(100), np.dtype("int16"))
    assert ring.channels == 2 and ring.capacity >= 100
    assert_works(ring)
    assert Ring(channels=1, capacity=1, dtype=np.uint8).dtype == np.uint8
    assert Ring(1, 1, "f").dtype == np.float32
    assert Ring(1, 1, "<i2" if sys.byteorder == "little" else ">i2").dtype == np.int16
    assert Ring(1, 1).dtype == np.float32  # the default
    assert Ring(2**16, 1, "uint8").channels == 2**16  # the largest channel count


BAD_DTYPES = [
    "float64",
    np.float64,
    float,
    int,
    "int64",
    "uint16",
    "uint32",
    "float16",
    "complex64",
    complex,
    object,
    "O",
    bool,
    ">i2" if sys.byteorder == "little" else "<i2",  # non-native byte order
    ">f4" if sys.byteorder == "little" else "<f4",
    "U5",
    "S4",
    "V4",
    [("left", "f4"), ("right", "f4")],
    "(2,)f4",
    "M8[s]",
    None,  # numpy reads None as float64
    "nonsense",
    3,
    1.5,
]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=repr)
def test_constructor_rejects_bad_dtypes(dtype: object) -> None:
    with pytest.raises(TypeError, match="^dtype must be one of float32, int32, int16, int8, uint8, got"):
        Ring(2, 100, dtype)
    assert_works(Ring(2, 100))


@pytest.mark.parametrize(
    "mirrored",
    [None, "yes", "MEMFD", "Shm", "plain", "best", "", b"memfd", 2, -1, 0.5, [True], {}, ("memfd",)],
    ids=repr,
)
def test_constructor_rejects_bad_mirrored(mirrored: object) -> None:
    with pytest.raises(ValueError, match=r"^mirrored must be True, False, 'memfd' or 'shm', got "):
        Ring(2, 100, mirrored=mirrored)
    assert_works(Ring(2, 100))


@pytest.mark.parametrize("mirrored", [1, 0, 1.0, 0.0], ids=repr)
def test_constructor_rejects_numbers_as_mirrored(mirrored: object) -> None:
    with pytest.raises(ValueError, match="^mirrored must be"):
        Ring(2, 100, mirrored=mirrored)


def test_mirrored_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Ring(2, 100, "float32", False)  # type: ignore[misc]


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize(
    ("channels", "capacity", "dtype"),
    [(8, 2**40, "float32"), (1, 2**48, "uint8"), (2**16, 2**30, "int8")],
)
def test_capacity_beyond_memory_raises_memory_error(
    channels: int, capacity: int, dtype: str, mirrored: object
) -> None:
    with pytest.raises(MemoryError, match=f"capacity={capacity}"):
        Ring(channels, capacity, dtype, mirrored=mirrored)
    gc.collect()
    assert_works(Ring(2, 100, mirrored=mirrored))


def test_capacity_beyond_address_space_raises_memory_error() -> None:
    # Both arguments are inside their documented ranges; only their product is too big.
    with pytest.raises(MemoryError, match="capacity"):
        Ring(2**16, 2**44, "float32")


# -- write --------------------------------------------------------------------


@pytest.mark.parametrize(
    "block", [[[1, 2]], ((1, 2),), None, 3, b"\x00\x01\x02\x03", memoryview(b"\x00" * 4), "ab"], ids=repr
)
def test_write_rejects_non_arrays(ring: Ring, block: object) -> None:
    with pytest.raises(TypeError, match="^block must be a numpy.ndarray, got"):
        ring.write(block)  # type: ignore[arg-type]
    assert ring.frames_written == 5
    assert_works(ring)


@pytest.mark.parametrize("dtype", ["float32", "int32", "int8", "uint8", "uint16", "float64", "complex64", "O"])
def test_write_rejects_wrong_dtype(ring: Ring, dtype: str) -> None:
    with pytest.raises(TypeError, match="^block dtype must be int16, got"):
        ring.write(np.zeros((4, 2), dtype))
    assert ring.frames_written == 5
    assert_works(ring)


def test_write_rejects_non_native_byte_order(ring: Ring) -> None:
    swapped = np.zeros((4, 2), np.dtype("int16").newbyteorder())
    with pytest.raises(TypeError, match="^block dtype must be int16"):
        ring.write(swapped)
    assert_works(ring)


@pytest.mark.parametrize("shape", [(), (4,), (2,), (4, 1), (4, 3), (2, 4, 2), (1, 1, 2), (0,)], ids=repr)
def test_write_rejects_wrong_shape(ring: Ring, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"^block must have shape \(frames, 2\), got"):
        ring.write(np.zeros(shape, np.int16))
    assert ring.frames_written == 5
    assert_works(ring)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.zeros((8, 2), np.int16)[::2],
        lambda: np.asfortranarray(np.arange(8, dtype=np.int16).reshape(4, 2)),
        lambda: np.zeros((4, 3), np.int16)[:, :2],
        lambda: np.zeros((2, 4), np.int16).T,
    ],
    ids=["every-other-row", "fortran-order", "column-slice", "transposed"],
)
def test_write_rejects_non_contiguous(ring: Ring, make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="C-contiguous"):
        ring.write(make())
    assert ring.frames_written == 5
    assert_works(ring)


def test_write_accepts_read_only_and_unaligned_blocks(ring: Ring) -> None:
    block = np.arange(8, dtype=np.int16).reshape(4, 2)
    block.flags.writeable = False
    ring.write(block)
    np.testing.assert_array_equal(ring.latest(4), block)
    raw = np.zeros(8 * 2 + 1, np.uint8)
    unaligned = raw[1:].view(np.int16).reshape(4, 2)
    unaligned[...] = -block
    ring.write(unaligned)
    np.testing.assert_array_equal(ring.latest(4), -block)


@pytest.mark.parametrize(
    "make",
    [
        lambda: pickle.loads(pickle.dumps(np.ones((4, 2), np.int16))),
        lambda: np.ones((4, 2), np.dtype("int16").newbyteorder().newbyteorder()),
        lambda: np.ones((4, 2), np.dtype("int16", metadata={"unit": "V"})),
    ],
    ids=["unpickled", "byte-order-swapped-twice", "metadata"],
)
def test_write_accepts_equal_dtype_objects(make) -> None:  # type: ignore[no-untyped-def]
    ring = Ring(2, 1, "int16")
    block = make()
    assert block.dtype == np.dtype("int16") and block.dtype.isnative
    ring.write(block)
    np.testing.assert_array_equal(ring.latest(4), 1)




@pytest.mark.parametrize(
    "mirrored",
    [
        pytest.param(True, id="mirrored=True"),
        pytest.param(False, id="mirrored=False"),
        pytest.param("memfd", id="mirrored='memfd'", marks=linux_only),
        pytest.param("shm", id="mirrored='shm'"),
    ],
)
def test_write_of_own_view_appends_its_frames(mirrored: object) -> None:
    # ring.write(ring.latest(n)) with 2n > capacity: source and destination slots overlap.
    ring = Ring(1, 1, "int32", mirrored=mirrored)
    capacity = ring.capacity
    ring.write(np.arange(capacity, dtype=np.int32).reshape(-1, 1))
    source = ring.latest(capacity * 3 // 5)
    expected = np.concatenate([np.arange(capacity * 3 // 5, capacity), source[:, 0]])
    ring.write(source)
    np.testing.assert_array_equal(ring.latest(capacity)[:, 0], expected)
    for frames in (capacity // 2, capacity // 3):  # the same frames through other windows
        np.testing.assert_array_equal(ring.latest(frames)[:, 0], expected[-frames:])


# -- latest ---------------------------------------------------------------------


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("frames", NOT_INTEGERS, ids=repr)
def test_latest_rejects_non_integers(ring: Ring, frames: object, copy: bool) -> None:
    with pytest.raises(TypeError, match="^frames must be an integer"):
        ring.latest(frames, copy=copy)  # type: ignore[arg-type]
    assert_works(ring)


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("offset", [None, 1], ids=["fixed", "capacity+1"])
@pytest.mark.parametrize("frames", OUT_OF_RANGE, ids=repr)
def test_latest_rejects_out_of_range(ring: Ring, frames: int, offset: int | None, copy: bool) -> None:
    if offset is not None:
        frames = ring.capacity + offset
    with pytest.raises(ValueError, match=rf"^frames must be 1\.\.{ring.capacity}, got {frames}$"):
        ring.latest(frames, copy=copy)
    assert_works(ring)


def test_latest_accepts_the_whole_capacity_and_numpy_integers(ring: Ring) -> None:
    assert ring.latest(ring.capacity).shape == (ring.capacity, 2)
    assert ring.latest(ring.capacity, copy=True).shape == (ring.capacity, 2)
    assert ring.latest(np.int64(3)).shape == (3, 2)
    assert ring.latest(np.uint8(1), copy=True).shape == (1, 2)


def test_copy_is_keyword_only(ring: Ring) -> None:
    with pytest.raises(TypeError):
        ring.latest(3, True)  # type: ignore[misc]


# -- is_intact / frame_of --------------------------------------------------------


@pytest.mark.parametrize("method", ["is_intact", "frame_of", "start_frame"])
@pytest.mark.parametrize(
    "make",
    [
        lambda ring: Ring(2, 1, "int16").latest(5),  # same shape and dtype, another ring
        lambda ring: Ring(2, 1, "int16", mirrored=False).latest(5),
        lambda ring: np.zeros((5, 2), np.int16),
        lambda ring: ring.latest(5).copy(),
        lambda ring: np.array(ring.latest(5)),
        lambda ring: ring.latest(5, copy=True),
        lambda ring: np.frombuffer(ring.latest(5).tobytes(), np.int16).reshape(5, 2),
    ],
    ids=[
        "other-ring",
        "other-plain-ring",
        "numpy-zeros",
        "view-copy",
        "np-array-of-view",
        "latest-copy",
        "frombuffer",
    ],
)
def test_foreign_arrays_are_refused(ring: Ring, method: str, make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="^array was not returned by a zero-copy read of this ring$"):
        getattr(ring, method)(make(ring))
    assert_works(ring)


@pytest.mark.parametrize("method", ["is_intact", "frame_of", "start_frame"])
@pytest.mark.parametrize("array", [None, [[1, 1]], 5, "view", b"\x00\x00"], ids=repr)
def test_non_arrays_are_refused(ring: Ring, method: str, array: object) -> None:
    with pytest.raises(TypeError, match="^array must be a numpy.ndarray, got"):
        getattr(ring, method)(array)
    assert_works(ring)


def test_window_object_itself_is_refused(ring: Ring) -> None:
    with pytest.raises(TypeError, match="^array must be a numpy.ndarray, got Window"):
        ring.is_intact(ring.latest(3).base)  # type: ignore[arg-type]
    assert_works(ring)


#: Slices of a 20-frame view and the offset of their first frame.
SLICES = [
    pytest.param(lambda v: v[3:], 3, id="v[3:]"),
    pytest.param(lambda v: v[3:, 1], 3, id="v[3:, 1]"),
    pytest.param(lambda v: v[5], 5, id="v[5]"),
    pytest.param(lambda v: v[:, 1], 0, id="v[:, 1]"),
    pytest.param(lambda v: v[-1:], 19, id="v[-1:]"),
    pytest.param(lambda v: v[::2], 0, id="v[::2]"),
    pytest.param(lambda v: v[4:10][2:], 6, id="v[4:10][2:]"),
    pytest.param(lambda v: v.view(np.uint8), 0, id="v.view(uint8)"),
]


@pytest.mark.parametrize("mirrored", memory_params())
@pytest.mark.parametrize(("take", "offset"), SLICES)
def test_frame_of_slices(mirrored: object, take, offset: int) -> None:  # type: ignore[no-untyped-def]
    ring = Ring(2, 1, "int16", mirrored=mirrored)
    capacity = ring.capacity
    ring.write(np.ones((capacity + 30, 2), np.int16))  # frames_written = capacity + 30: view crosses the wrap
    view = ring.latest(20)
    start = ring.frame_of(view)
    assert start == capacity + 10
    part = take(view)
    assert ring.frame_of(part) == start + offset
    assert ring.is_intact(part)


def test_slice_of_lapped_view_can_still_be_intact() -> None:
    ring = Ring(1, 1, "uint8")
    capacity = ring.capacity
    view = ring.latest(100)  # frames [-100, 0)
    ring.write(np.ones((capacity - 50, 1), np.uint8))  # written since -100: capacity + 50
    assert not ring.is_intact(view)
    assert not ring.is_intact(view[49:])  # starts at -51: capacity + 51 since
    assert ring.is_intact(view[50:])  # starts at -50: exactly capacity since
    np.testing.assert_array_equal(view[50:], 0)


# ---------------------------------------------------------------------------
# Version
# ---------------------------------------------------------------------------


def test_version_matches_package_metadata() -> None:
    assert isinstance(audioring.__version__, str)
    assert audioring.__version__ == importlib.metadata.version("audioring")


def test_ring_is_public() -> None:
    assert "Ring" in audioring.__all__
    assert "__version__" in audioring.__all__
