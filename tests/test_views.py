"""is_intact and frame_of judge every view numpy can make of a zero-copy array.

Each sample names its frame (channel 0 holds the frame number f, channel 1
holds -f - 1), so the frames a view covers can be read off its own values
before the producer moves on. A view is intact exactly while the oldest frame
it covers is still in the ring, whatever slicing, reversing, striding or
transposing made it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

from audioring import AudioRecord, Ring, VirtualInput

CAPACITY = 1024  # int32 x 2 channels: 8 KiB, two pages, so the capacity is exact


def numbered_ring(frames: int = CAPACITY) -> Ring:
    ring = Ring(2, CAPACITY, "int32")
    assert ring.capacity == CAPACITY
    ring.write(frame_block(0, frames))
    return ring


def frame_block(first: int, frames: int) -> np.ndarray:
    numbers = np.arange(first, first + frames, dtype=np.int32)
    return np.ascontiguousarray(np.stack([numbers, -numbers - 1], axis=1))


def frames_in(values: np.ndarray) -> np.ndarray:
    """The frame each sample belongs to."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= 0, values, -values - 1)


@st.composite
def index_ops(draw: st.DrawFn) -> list[tuple[str, object]]:
    """A chain of numpy indexing operations on a (frames, 2) array."""
    ops: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["rows", "column", "transpose", "reverse", "pick"]))
        if kind == "rows":
            start = draw(st.none() | st.integers(-CAPACITY, CAPACITY))
            stop = draw(st.none() | st.integers(-CAPACITY, CAPACITY))
            step = draw(st.sampled_from([None, 1, 2, 3, 7, -1, -2, -5]))
            ops.append((kind, slice(start, stop, step)))
        elif kind == "column":
            ops.append((kind, draw(st.sampled_from([slice(0, 1), slice(1, 2), slice(None, None, -1), slice(None)]))))
        else:
            ops.append((kind, None))
    return ops


def apply(view: np.ndarray, ops: list[tuple[str, object]]) -> np.ndarray:
    for kind, arg in ops:
        if view.ndim == 0:
            break
        if kind == "rows":
            view = view[arg]
        elif kind == "column" and view.ndim == 2:
            view = view[:, arg]
        elif kind == "transpose":
            view = view.T
        elif kind == "reverse":
            view = view[::-1]
        elif kind == "pick" and view.ndim == 2 and view.shape[0] > 0:
            view = view[view.shape[0] // 2]
    return view


@settings(max_examples=400, deadline=None)
@given(read=st.integers(1, CAPACITY), ops=index_ops(), then=st.integers(0, 2 * CAPACITY))
def test_every_view_is_judged_by_the_frames_it_covers(read: int, ops: list[tuple[str, object]], then: int) -> None:
    ring = numbered_ring()
    view = apply(ring.latest(read), ops)
    covered = frames_in(view)
    if covered.size:
        # The first element's frame is the start frame, for every shape.
        assert ring.frame_of(view) == int(covered.flat[0])
    expected_before = view.copy()
    assert ring.is_intact(view)

    ring.write(frame_block(CAPACITY, then))
    oldest_kept = ring.frames_written - CAPACITY
    intact = ring.is_intact(view)
    if covered.size:
        assert intact == bool(covered.min() >= oldest_kept), (ops, read, then)
    if intact:
        np.testing.assert_array_equal(view, expected_before)  # never intact with changed content


def test_reversed_view_whose_rows_were_overwritten_is_not_intact() -> None:
    ring = Ring(1, 1024, "int32")
    ring.write(np.arange(1024, dtype=np.int32).reshape(-1, 1))
    reversed_view = ring.latest(1024)[::-1]
    ring.write(np.full((10, 1), -1, np.int32))
    assert reversed_view[-1, 0] == -1  # its last row was overwritten...
    assert not ring.is_intact(reversed_view)  # ...and it says so


def test_channel_slices_and_dtype_views_are_judged() -> None:
    ring = numbered_ring()
    view = ring.latest(100)
    second_channel = view[:, 1]
    as_bytes = view.view(np.uint8)
    assert ring.frame_of(second_channel) == CAPACITY - 100
    assert ring.frame_of(as_bytes) == CAPACITY - 100
    assert ring.is_intact(second_channel) and ring.is_intact(as_bytes)
    ring.write(frame_block(CAPACITY, CAPACITY - 100 + 1))  # overwrites the view's first frame
    assert not ring.is_intact(second_channel) and not ring.is_intact(as_bytes)


def test_views_reaching_outside_their_window_are_refused() -> None:
    # as_strided can point anywhere; such an array is never judged (its base
    # chain passes through numpy's DummyArray, or its extent leaves the window).
    ring = numbered_ring()
    view = ring.latest(10)
    beyond = as_strided(view, shape=(20, 2), strides=view.strides)  # 10 frames past the window
    before = as_strided(view[5:], shape=(10, 2), strides=(-view.strides[0], view.strides[1]))
    huge = as_strided(view, shape=(3, 2), strides=(2**62, 4))
    for outside in (beyond, before, huge):
        for judge in (ring.is_intact, ring.frame_of, ring.start_frame):
            with pytest.raises(ValueError, match="cannot be judged|not returned by a zero-copy read"):
                judge(outside)


def test_empty_views_are_judged_within_their_window() -> None:
    # An empty view holds no frame; numpy may leave its data pointer anywhere
    # in the window it was sliced from, and the judgement stays in that window.
    ring = numbered_ring()
    view = ring.latest(10)
    for empty in (view[10:], view[3:3], view[:0, :], view[::-1][10:]):
        assert CAPACITY - 10 <= ring.frame_of(empty) <= CAPACITY
        assert ring.is_intact(empty)


def test_views_of_other_rings_and_copies_are_refused() -> None:
    ring, other = numbered_ring(), numbered_ring()
    view = other.latest(5)
    for foreign in (view, view.copy(), np.asarray(memoryview(view)), np.zeros((5, 2), np.int32)):
        with pytest.raises(ValueError, match="not returned by a zero-copy read of this ring"):
            ring.is_intact(foreign)


def test_recorder_reads_are_native_views_with_the_same_judgement() -> None:
    rec = AudioRecord(1, 8000, 8000, device=VirtualInput("ramp", realtime=False, frames=4000), dtype="int32")
    rec.start_recording()
    while rec.frames_recorded < 4000:
        pass
    view = rec.read(4000)
    assert type(view.base).__name__ == "Window" and not view.flags.writeable
    np.testing.assert_array_equal(view[::-1, 0], np.arange(3999, -1, -1))
    assert rec.frame_of(view[::-1]) == rec.frame_of(view) + 3999
    assert rec.is_intact(view[::-1]) and rec.is_intact(view[::7])
    rec.close()
    assert rec.is_intact(view)  # judging outlives the recorder, as reading does


@settings(max_examples=100, deadline=None)
@given(read=st.integers(1, CAPACITY), ops=index_ops())
def test_start_frame_is_frame_of_under_its_first_name(read: int, ops: list[tuple[str, object]]) -> None:
    # start_frame is kept for code written against it: for every view (and
    # every refusal) it says what frame_of says, and its docstring says so.
    ring = numbered_ring()
    view = apply(ring.latest(read), ops)
    assert ring.start_frame(view) == ring.frame_of(view)
    for refused in (view.copy(), None):
        with pytest.raises((TypeError, ValueError)) as new:
            ring.frame_of(refused)
        with pytest.raises(type(new.value), match=f"^{re.escape(str(new.value))}$"):
            ring.start_frame(refused)


def test_a_recorder_has_start_frame_as_frame_of_too() -> None:
    rec = AudioRecord(1, 8000, 8000, device=VirtualInput("ramp", realtime=False, frames=800), dtype="int32")
    with rec:
        while rec.frames_recorded < 800:
            pass
        view = rec.read(800)[100:]
        # The ramp holds each frame's number, counted from the recording's first frame.
        assert rec.start_frame(view) == rec.frame_of(view) == rec.first_frame + int(view[0, 0])
    for reader in (AudioRecord, Ring):
        assert "frame_of" in (reader.start_frame.__doc__ or "")
