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
    complete block is left. Waiting for data releases the GIL, and signal
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
        position: int,
        producing: Callable[[], bool],
    ) -> None:
        self._ring = ring
        self._producing = producing
        self.blocksize = blocksize
        self.hop = hop
        self.timeout = timeout
        self._position = position  # absolute frame number of the next block's first frame
        self._previous: Optional[int] = None  # first frame of the block last handed out
        self._busy = threading.Lock()  # held by the thread inside __next__

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            "a FrameStream cannot be pickled: it reads memory of this process; create the AudioRecord "
            "and its stream in the worker process instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(0)

    @property
    def position(self) -> int:
        """Absolute frame number at which the next block starts."""
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
        end = self._begin()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while ring.frames_written < end:
            # Read the interrupt count before the state so that a stop() or
            # close() in between still ends the wait.
            interrupts = ring.interrupt_count
            if not self._producing():
                raise StopIteration
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if ring.wait_for_frame(end, left, interrupts) == _core.WaitStatus.timeout:
                raise self._timed_out()
        return self._take()

    # ---- the block arithmetic, shared with AsyncFrameStream (which only waits differently) ----

    def _begin(self) -> int:
        """Start taking the next block: the frame that must be written first (one past the block's last).

        Raises `OverrunError` if the block handed out last was overwritten
        while the consumer used it, that is, before it asked for this one.
        Checked once: if the wait that follows is interrupted (a signal
        handler's exception, a cancelled task), asking again does not count
        the previous block a second time.
        """
        previous, self._previous = self._previous, None
        if previous is not None and not self._ring.intact_from(previous):
            self._overrun(previous)
        return self._position + self.blocksize

    def _take(self) -> np.ndarray:
        """The next block, once the frame `_begin` returned is written; advances the stream by ``hop``."""
        if not self._ring.intact_from(self._position):
            self._overrun(self._position)
        block = self._ring.window(self._position, self.blocksize)
        self._previous = self._position
        self._position += self.hop
        return block

    def _timed_out(self) -> TimeoutError:
        return TimeoutError(
            f"no audio for {self.timeout} s: {self._ring.frames_written - self._position} of "
            f"{self.blocksize} frames arrived (is the device still delivering?)"
        )

    def _overrun(self, first_lost: int) -> NoReturn:
        resume = self._ring.frames_written
        self._position = resume
        self._previous = None
        raise OverrunError(resume - first_lost, resume)
