"""What a consumer's overruns must look like: the checks that test_overruns.py (FrameStream) and
test_astream.py (AsyncFrameStream) share, so that both streams are held to exactly the same accounting.

A consumer records each block it got as a `Delivery`, with the `OverrunError`s raised before it; the
checks compare those against the VirtualInput's ramp (each frame holds its number since the recording's
first frame).
"""

from __future__ import annotations

import numpy as np

from audioring import AudioRecord, OverrunError

Events = list[tuple["Delivery", list[OverrunError]]]


def ramp(block: np.ndarray) -> np.ndarray:
    return block[:, 0].astype(np.int64)


class Delivery:
    """A block as the consumer got it: where it starts, a copy, and whether the copy is good."""

    def __init__(self, rec: AudioRecord, block: np.ndarray) -> None:
        self.start = rec.frame_of(block)
        self.counters = ramp(block)  # a copy...
        self.valid = rec.is_intact(block)  # ...taken before the block could be overwritten


def check_exact_gaps(events: Events, blocksize: int, first: int) -> int:
    """Consecutive blocks (hop == blocksize): every ``frames_lost`` is the gap in the ramp.

    Returns the number of overruns.
    """
    overruns = 0
    for (previous, _), (current, errors) in zip(events, events[1:]):
        # Every block handed out intact holds the ramp of exactly the frames its start names.
        if current.valid:
            assert np.all(current.counters == np.arange(current.start, current.start + blocksize) - first)
        if not errors:
            # No error, no gap.
            assert current.start == previous.start + blocksize
            assert previous.valid, "a block was overwritten while in use and nobody said so"
            continue
        overruns += 1
        lost = sum(e.frames_lost for e in errors)
        first_lost = errors[0].position - errors[0].frames_lost
        for earlier, later in zip(errors, errors[1:]):  # a second overrun right after the first
            assert later.position - later.frames_lost == earlier.position
        assert current.start == errors[-1].position  # it goes on from where the error said
        if first_lost == previous.start:
            # The block in use was overwritten: it counts as lost; the last valid frame is the one before it.
            last_valid_counter = previous.start - 1 - first
        else:
            assert first_lost == previous.start + blocksize, (first_lost, previous.start)
            assert previous.valid
            last_valid_counter = int(previous.counters[-1])
        # The gap in the ramp between the last valid frame delivered and the next delivered frame.
        next_counter = int(current.counters[0]) if current.valid else current.start - first
        assert next_counter - (last_valid_counter + 1) == lost
    return overruns


def check_overlapping_windows(events: Events, blocksize: int, hop: int, first: int) -> int:
    """Overlapping windows (hop < blocksize): ``frames_lost`` is how far the window start jumped.

    Returns the number of overruns.
    """
    overruns = 0
    for (previous, _), (current, errors) in zip(events, events[1:]):
        if current.valid:
            assert np.all(current.counters == np.arange(current.start, current.start + blocksize) - first)
        if not errors:
            assert current.start == previous.start + hop
            assert previous.valid, "a window was overwritten while in use and nobody said so"
            continue
        overruns += 1
        lost = sum(e.frames_lost for e in errors)
        first_lost = errors[0].position - errors[0].frames_lost
        assert current.start == errors[-1].position
        if first_lost == previous.start:  # the window in use was overwritten
            last_valid_start = previous.start - hop
        else:
            assert first_lost == previous.start + hop and previous.valid
            last_valid_start = previous.start
        # frames_lost: how far the window start jumped past where the next window was due...
        assert current.start - (last_valid_start + hop) == lost
        # ...of which these frames were in no intact window (the rest overlapped the last intact one).
        if current.valid:  # counted in the ramp: the first frame after the last intact window's end
            never_seen = int(current.counters[0]) - (last_valid_start - first + blocksize)
            assert max(0, never_seen) == max(0, lost - (blocksize - hop))
    return overruns
