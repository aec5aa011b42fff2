"""AsyncFrameStream: `FrameStream` for asyncio."""

from __future__ import annotations

from typing import NoReturn, Optional, SupportsIndex

import numpy as np

from ._stream import FrameStream
from ._watch import WaitStatus, wait_until_written


class AsyncFrameStream:
    """Async iterator over consecutive ``(blocksize, channels)`` zero-copy blocks of a recording.

    Made by :meth:`AudioRecord.astream` and :meth:`Ring.astream`: ``async for
    block in rec.astream(4800): ...``. It is a `FrameStream` driven from
    asyncio, with the same blocks and the same rules, from the same code: each
    block starts ``hop`` frames after the previous one; if the producer lapped
    the consumer, the next ``__anext__`` raises `OverrunError` (with
    ``frames_lost`` and ``position`` exactly as `FrameStream` counts them) and
    the stream continues from the newest frame; no block within ``timeout``
    seconds raises `TimeoutError`; iteration ends once the producer stopped
    and no complete block is left (``AudioRecord.stop()``), and
    ``AudioRecord.close()`` ends a waiting ``__anext__`` with
    `RecorderClosedError`. Blocks are read-only views into the ring: use (or
    copy) a block before asking for the next one.

    Waiting costs nothing while it waits: the task is suspended, no thread
    is made for it and nothing polls. A native thread per ring (started by
    the first wait, joined when the recorder closes or the ring goes) sleeps
    on the ring's doorbell only while some consumer waits and wakes the event
    loop through one descriptor per loop, however many consumers wait on it;
    the audio thread does nothing more than for a `FrameStream`.

    Cancelling the task (``task.cancel()``, ``asyncio.wait_for``,
    ``asyncio.timeout``) ends a wait at once and leaves nothing behind; the
    stream stays where it was, so it may be iterated again.

    One task at a time: a stream that another task is iterating raises
    `RuntimeError` (as an async generator does); give each task its own
    ``astream()``, they all see the same frames. Event loops that cannot
    watch a descriptor (``add_reader``: Windows' proactor loop) are not
    supported.

    Parameters
    ----------
    stream : FrameStream
        The stream to drive; this object then owns it (iterate only one of them).
    """

    def __init__(self, stream: FrameStream) -> None:
        self._stream = stream
        self._busy = False  # a task is inside __anext__

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            "an AsyncFrameStream cannot be pickled: it reads memory of this process; create the AudioRecord "
            "and its stream in the worker process instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(0)

    @property
    def blocksize(self) -> int:
        """Frames per block."""
        return self._stream.blocksize

    @property
    def hop(self) -> int:
        """Frames between the starts of consecutive blocks."""
        return self._stream.hop

    @property
    def timeout(self) -> Optional[float]:
        """Seconds to wait for each block before `TimeoutError` (None: no limit)."""
        return self._stream.timeout

    @property
    def position(self) -> Optional[int]:
        """Absolute frame number at which the next block starts."""
        return self._stream.position

    def __aiter__(self) -> AsyncFrameStream:
        return self

    async def __anext__(self) -> np.ndarray:
        if self._busy:
            raise RuntimeError(
                "this AsyncFrameStream is being iterated by another task; give each task its own "
                "astream() (every stream sees the same frames)"
            )
        self._busy = True
        try:
            stream = self._stream
            stream._begin()
            status = await wait_until_written(stream._ring, stream._due, stream.timeout, stream._producing)
            if status == WaitStatus.interrupted:
                raise StopAsyncIteration
            if status == WaitStatus.timeout:
                raise stream._timed_out()
            block = stream._take()
            if block is None:  # its recording was replaced
                raise StopAsyncIteration
            return block
        finally:
            self._busy = False
