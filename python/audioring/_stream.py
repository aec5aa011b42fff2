"""FrameStream: lossless, in-order iteration over the frames of a ring."""

from __future__ import annotations

import threading
import time
from typing import Callable, NoReturn, Optional, SupportsIndex

import numpy as np

from . import _core
from ._errors import OverrunError


class FrameStream:
    """Iterator over consecutive ``(blocksize, channels)`` zero-copy blocks of a recording.

    Made by :meth:`AudioRecord.stream` and :meth:`Ring.stream`. Each block starts ``hop`` frames after
    the previous one, so every frame is delivered exactly once when ``hop ==
    blocksize`` and in overlapping windows when ``hop < blocksize``.

    Blocks are read-only views into the ring: use (or copy) a block before
    asking for the next one. If the producer lapped the consumer, ``next()``
    raises `OverrunError` with the number of frames lost, counting the frames
    of the previous block if they were overwritten while it was in use; the
    stream then continues from the newest frame, so iteration may go on.

    Precisely, ``frames_lost`` is how far the stream jumps: the next block
    starts at ``OverrunError.position``, ``frames_lost`` frames after the
    first block that was not delivered intact (the previous block if it was
    overwritten while in use, else the block that was due next). With ``hop
    == blocksize`` these are exactly the frames the consumer never got. With
    ``hop < blocksize`` blocks overlap, so it counts how far the window start
    moved past where the next window was due: only ``max(0, frames_lost -
    (blocksize - hop))`` of those frames were in no intact block at all, the
    others were also part of the last intact one.

    Iteration ends (``StopIteration``) once the producer has stopped and no
    complete block is left. A stream belongs to one recording: it never
    hands out a frame that the recording's producer did not deliver. A
    restart (``stop()`` then ``start_recording()``, or ``Ring.clear()``)
    begins a new recording, which a new stream reads; a stream of the old
    one ends there, raising `OverrunError` first if the restart cleared a
    complete block of its recording that it had not taken yet. Waiting for data releases the GIL, and signal
    handlers run while it waits (Ctrl-C raises `KeyboardInterrupt` within
    about 20 ms, data or not); an exception from a handler leaves the stream
    where it was, so iteration may go on.

    One thread at a time: a stream that another thread is iterating raises
    `RuntimeError` (as a generator does); give each thread its own
    ``AudioRecord.stream()``, they all see the same frames. In asyncio,
    ``AudioRecord.astream()`` drives the same blocks without a thread
    (`AsyncFrameStream`).

    Parameters
    ----------
    ring : audioring._core.FrameRing
        The ring to read.
    blocksize, hop : int
        Frames per block, and between block starts (validated by the caller).
    timeout : float or None
        Seconds to wait for each block before `TimeoutError`.
    position : int
        Absolute frame number of the first block's first frame.
    producing : callable
        Returns whether the producer may still deliver frames; raises (for
        example `RecorderClosedError`) if the stream must end with an error.
    """

    def __init__(
        self,
        ring: _core.FrameRing,
        blocksize: int,
        hop: int,
        timeout: Optional[float],
        position: Optional[int],
        producing: Callable[[], bool],
        *,
        pending: bool = False,
    ) -> None:
        self._ring = ring
        self._producing = producing
        self.blocksize = blocksize
        self.hop = hop
        self.timeout = timeout
        # The recording this stream belongs to, named by its first frame
        # (FrameRing.first_frame); while `pending`, the stream belongs to the
        # next recording to begin after that one, and `position` None means its first frame.
        self._recording = ring.first_frame
        self._pending = pending
        if not pending:
            # Frames before the recording's first were never recorded by it (cleared zeros, or an
            # earlier recording's): a start before it begins where the recording does.
            position = self._recording if position is None else max(position, self._recording)
        self._position = position  # absolute frame number of the next block's first frame (None: pending)
        self._previous: Optional[int] = None  # first frame of the block last handed out
        self._ended = False  # its recording was replaced by a newer one: no block will come
        self._busy = threading.Lock()  # held by the thread inside __next__

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            "a FrameStream cannot be pickled: it reads memory of this process; create the AudioRecord "
            "and its stream in the worker process instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(0)

    @property
    def position(self) -> Optional[int]:
        """Absolute frame number at which the next block starts (None until a pending recording begins)."""
        return self._position

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> np.ndarray:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                "this FrameStream is being iterated by another thread; give each thread its own "
                "AudioRecord.stream() (every stream sees the same frames)"
            )
        try:
            return self._next()
        finally:
            self._busy.release()

    def _next(self) -> np.ndarray:
        ring = self._ring
        self._begin()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            # Read the interrupt count before the state so that a stop() or
            # close() in between still ends the wait.
            interrupts = ring.interrupt_count
            end = self._due()
            if end is None:
                raise StopIteration
            if ring.frames_written >= end:
                break
            if not self._producing():
                raise StopIteration
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if ring.wait_for_frame(end, left, interrupts) == _core.WaitStatus.timeout:
                raise self._timed_out()
        block = self._take()
        if block is None:
            raise StopIteration
        return block

    # ---- the block arithmetic, shared with AsyncFrameStream (which only waits differently) ----
    #
    # A stream belongs to one recording: it hands out only frames that the
    # recording's producer delivered. start_recording() (Ring.clear()) ends
    # a recording and begins the next with `capacity` frames of zeros; the
    # ring's first_frame then names the new recording. Every block is taken
    # only after first_frame, read after the block's intact check, still
    # names the stream's recording (FrameRing::clear explains why that read
    # order suffices), so the zeros of a restart never pass for audio.

    def _begin(self) -> None:
        """Start taking the next block: raise `OverrunError` if the block handed out last was overwritten in use.

        Checked once: if the wait that follows is interrupted (a signal
        handler's exception, a cancelled task), asking again does not count
        the previous block a second time.
        """
        previous, self._previous = self._previous, None
        if previous is not None and not self._ring.intact_from(previous):
            first = self._ring.first_frame
            if first != self._recording and not self._pending:
                self._replaced(first, previous, in_use=True)
            else:
                self._overrun(previous)

    def _due(self) -> Optional[int]:
        """The frame that must be written before the next block can be taken; None once the stream is over.

        A pending stream (its recording has not begun) waits for a frame no
        producer reaches, so only an interrupt (the producer's state change)
        ends its wait, and asks again.
        """
        if self._ended:
            return None
        first = self._ring.first_frame
        if self._pending:
            if first == self._recording:
                return _NEVER
            self._recording, self._pending = first, False
            self._position = first if self._position is None else max(self._position, first)
        assert self._position is not None  # set once not pending
        if first != self._recording:
            self._replaced(first, self._position)
            return None
        return self._position + self.blocksize

    def _take(self) -> Optional[np.ndarray]:
        """The next block, once the frame `_due` returned is written; advances the stream by ``hop``.

        None if the stream's recording was replaced meanwhile (the stream is over).
        """
        position = self._position
        assert position is not None  # _due() resolved it
        intact = self._ring.intact_from(position)
        first = self._ring.first_frame  # after the intact check: see above
        if first != self._recording:
            self._replaced(first, position)
            return None
        if not intact:
            self._overrun(position)
        block = self._ring.window(position, self.blocksize)
        self._previous = position
        self._position = position + self.hop
        return block

    def _replaced(self, first: int, first_missed: int, in_use: bool = False) -> None:
        """The stream's recording was followed by another (first frame ``first``): the stream is over.

        The frames of its recording that it had not taken were cleared by
        the restart: if a complete block of them (or the block in use) was
        lost, raise `OverrunError` counting from ``first_missed`` to where
        the restart's zeros began. After several restarts since the stream
        last looked, that count also spans the recordings in between, which
        the stream could never have read either.
        """
        self._ended = True
        self._previous = None
        restart = first - self._ring.capacity  # where the latest restart's zeros begin
        lost = restart - first_missed
        self._position = max(restart, first_missed)
        if in_use or lost >= self.blocksize:
            raise OverrunError(
                lost, self._position,
                f"the recording was restarted before the consumer read {lost} of its frames (from frame "
                f"{first_missed}): start_recording() cleared them; this stream has ended, a new one reads the "
                "new recording",
            )

    def _timed_out(self) -> TimeoutError:
        if self._position is None:
            return TimeoutError(f"no recording began within {self.timeout} s (has the producer started?)")
        return TimeoutError(
            f"no audio for {self.timeout} s: {self._ring.frames_written - self._position} of "
            f"{self.blocksize} frames arrived (is the device still delivering?)"
        )

    def _overrun(self, first_lost: int) -> NoReturn:
        resume = self._ring.frames_written
        self._previous = None
        first = self._ring.first_frame
        if first != self._recording:  # restarted meanwhile: the newest frame is not this recording's
            self._replaced(first, first_lost, in_use=True)
        self._position = resume
        raise OverrunError(resume - first_lost, resume)


#: A frame number no producer reaches: a pending stream's wait ends only by an interrupt.
_NEVER = 2**63 - 1
