"""FrameReader: what every reader of a ring offers alike (stream, astream, wait_frames), written once.

`AudioRecord`, `Ring` and `SharedRecording` read a native ring
(``_core.FrameRing``) through the same three methods, with the same
arguments, blocks and rules. Each class supplies a few hooks: the ring, its
own checks (closed, forked child, not recording) and whether frames may
still come; nothing else of theirs differs.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

from . import _core, _watch
from ._astream import AsyncFrameStream
from ._file_writer import FileWriter, PathArg, finish_writers, open_writer
from ._stream import FrameStream
from ._validate import MAX_FRAME_NUMBER, as_count, as_stream_args, as_timeout


class FrameReader:
    """``stream()``, ``astream()`` and ``wait_frames()`` over a ring, for `AudioRecord`, `Ring` and `SharedRecording`.

    A subclass sets ``_closed_message`` (what a closed reader of its kind
    says, naming what to do) and provides ``_reader_ring`` (the ring read),
    ``_check_readable(method)`` (raise if it cannot be read now: closed, a
    forked child) and ``_producing()`` (whether frames may still come; raise
    if they never will because it was closed). It may override
    ``_check_recording(method)`` (raise if there is nothing to stream) and
    ``_stream_pending()`` (whether a new stream waits for a first recording).
    """

    _closed_message = "this reader is closed"
    #: How its timeouts name the frames counted: a recording's are recorded, a `Ring`'s written.
    _frames_are = "recorded"

    @property
    def _reader_ring(self) -> _core.FrameRing:
        raise NotImplementedError

    def _check_readable(self, method: str) -> None:
        raise NotImplementedError

    def _producing(self) -> bool:
        raise NotImplementedError

    def _check_recording(self, method: str) -> None:
        """Raise if there is nothing to stream now; by default there always may be."""

    def _stream_pending(self) -> bool:
        """Whether a new stream belongs to the next recording to begin (none has begun yet)."""
        return False

    def stream(
        self,
        blocksize: int,
        *,
        hop: Optional[int] = None,
        timeout: Optional[float] = None,
        start: Optional[int] = None,
    ) -> FrameStream:
        """Iterate losslessly, in order, over ``(blocksize, channels)`` zero-copy blocks.

        The stream reads the current recording (a `Ring`: what was written
        since its last ``clear()``) and ends once the producer stops (a
        `Ring`: ``close()``) and no complete block is left, or at a restart;
        `FrameStream` says how it ends and reports overruns. A `Ring` cannot
        tell its writer's last write from a pause: bound the wait with ``timeout``.

        Parameters
        ----------
        blocksize : int
            Frames per block, ``1..`` the ring's capacity.
        hop : int, optional
            Frames between the starts of consecutive blocks, ``1..blocksize``
            (default ``blocksize``: every frame once; smaller: overlapping windows).
        timeout : float, optional
            Seconds to wait for each block before raising `TimeoutError`
            (default: wait as long as frames may come).
        start : int, optional
            Absolute frame to start from (default: ``first_frame``, the current
            recording's first, so nothing recorded is missed); as far back as the
            ring reaches (pre-roll). One before ``first_frame`` begins at it.

        Returns
        -------
        FrameStream
            `OverrunError` from it if frames were overwritten before they were taken.

        Raises
        ------
        RuntimeError
            If an `AudioRecord` is not recording, or in a forked child of the
            process that made the recorder or ring.
        RecorderClosedError
            If a recorder or an attached reader is closed.

        Examples
        --------
        >>> import numpy as np
        >>> from audioring import Ring
        >>> ring = Ring(channels=1, capacity=4096, dtype="int16")
        >>> ring.write(np.arange(10, dtype="int16").reshape(10, 1))
        >>> blocks = ring.stream(4, timeout=0.1)
        >>> next(blocks)[:, 0].tolist(), next(blocks)[:, 0].tolist()
        ([0, 1, 2, 3], [4, 5, 6, 7])
        """
        self._check_readable("stream")
        ring = self._reader_ring
        args = as_stream_args(blocksize, hop, timeout, start, ring.capacity)
        self._check_recording("stream")
        return FrameStream(ring, args.blocksize, args.hop, args.timeout, args.start, self._producing,
                           pending=self._stream_pending())

    def astream(
        self,
        blocksize: int,
        *,
        hop: Optional[int] = None,
        timeout: Optional[float] = None,
        start: Optional[int] = None,
    ) -> AsyncFrameStream:
        """:meth:`stream` for asyncio: ``async for block in rec.astream(blocksize)``.

        The same blocks with the same rules (see `AsyncFrameStream`): every
        frame once, in order (or overlapping windows with ``hop``);
        `OverrunError` if the consumer falls behind, after which iteration
        continues from the newest frame; `TimeoutError` when no block comes
        within ``timeout``; the iteration ends when :meth:`stream`'s would,
        and ``close()`` of a recorder or reader ends a waiting ``__anext__``
        with `RecorderClosedError`. A waiting task costs nothing (no thread
        per consumer, no polling; across processes the producer's publish
        wakes it), and cancelling it leaves nothing behind.

        Parameters
        ----------
        blocksize, hop, timeout, start
            As for :meth:`stream`.

        Returns
        -------
        AsyncFrameStream

        Raises
        ------
        RuntimeError
            If an `AudioRecord` is not recording (the message names
            ``stream()``, which this method is built on).

        Examples
        --------
        >>> import asyncio
        >>> from audioring import AudioRecord, VirtualInput
        >>> async def main():
        ...     ramp = VirtualInput("ramp", speed=10)  # each frame holds its number
        ...     with AudioRecord(1, 16000, 16000, device=ramp, dtype="int16") as rec:
        ...         firsts = []
        ...         async for block in rec.astream(1600, timeout=2.0):
        ...             firsts.append(int(block[0, 0]))
        ...             if len(firsts) == 3:
        ...                 break
        ...     return firsts
        >>> asyncio.run(main())
        [0, 1600, 3200]
        """
        return AsyncFrameStream(self.stream(blocksize, hop=hop, timeout=timeout, start=start))

    def record_to(
        self,
        path: PathArg,
        *,
        format: Optional[str] = None,
        subtype: Optional[str] = None,
        split: Optional[object] = None,
        start: Optional[int] = None,
        frames: Optional[int] = None,
    ) -> FileWriter:
        """Write the recording into an audio file (or split parts) from a native thread; returns a `FileWriter`.

        The thread drains the ring with libsndfile and never needs the GIL,
        so Python may stall for as long as the ring holds without losing a
        frame. Frames lost anyway (the disk fell more than a ring behind) are
        written as silence of their exact length and listed (`FileWriter.gaps`).
        The writer ends with the recording (see `FileWriter`), at ``frames``,
        or at its ``close()``.

        Parameters
        ----------
        path : str or os.PathLike
            The file, replaced if it exists. A FIFO takes ``au`` or ``raw``.
        format : str, optional
            ``wav`` (the default for ``*.wav``: WAVE_FORMAT_EXTENSIBLE, turning
            into RF64 by itself past 4 GiB), ``rf64``, ``w64``, ``caf``, ``flac``
            (at most 8 channels and 24 bits), ``au`` or ``raw`` (default: from
            ``path``'s suffix). WAV and RF64 carry a Broadcast WAV ``bext``
            chunk: the first frame's date, time and samples since midnight.
        subtype : str, optional
            libsndfile's sample type (``PCM_16``, ``PCM_24``, ``PCM_32``,
            ``FLOAT``, ...); default: the one that keeps this recording's samples exactly.
        split : int or str, optional
            Start a new file every so many frames, or every ``"1h"``,
            ``"30min"``, ``"90s"``, or ``"2GiB"`` of audio data: ``take-0001.wav``,
            ``take-0002.wav``, ... that join into exactly the recording.
        start : int, optional
            Absolute frame to start from (default: ``frames_written``, now). It
            may lie in the past as far as the ring holds this recording (pre-roll).
        frames : int, optional
            Frames to write in all, >= 1 (default: until the recording ends or ``close()``).

        Raises
        ------
        ValueError
            For a format, subtype, split or start the recording cannot use,
            naming one that fits.
        OSError
            If the file cannot be created (with the operating system's reason).
        RuntimeError
            If an `AudioRecord` is not recording.
        """
        self._check_readable("record_to")
        self._check_recording("record_to")
        writer = open_writer(self._reader_ring, path, fmt=format, subtype=subtype, split=split, start=start,
                             frames=frames, pending=self._stream_pending())
        return writer

    def _finish_writers(self) -> None:
        """The producer stopped or the reader closed: writers of this ring write what was recorded, then end."""
        finish_writers(self._reader_ring)

    async def wait_frames(self, frames: int, timeout: Optional[float] = None) -> int:
        """Wait, in asyncio, until the current recording holds ``frames`` frames; return how many it holds.

        The count is ``frames_recorded`` (for a `Ring`: frames written since
        its last ``clear()``, ``frames_written`` if it was never cleared). A
        restart begins it again, and the zeros a restart writes are never
        counted. Only the calling task waits (no thread, no polling), so other
        tasks run meanwhile. If the producer stops (or closes) first, it
        returns at once with the frames recorded, fewer than ``frames``.

        Parameters
        ----------
        frames : int
            Frames of the current recording, >= 0.
        timeout : float, optional
            Seconds to wait in all before `TimeoutError` (default: as long as
            frames may come).

        Returns
        -------
        int
            The frames recorded: ``>= frames`` unless the producer stopped first.

        Raises
        ------
        RuntimeError
            If an `AudioRecord` recorded fewer frames and is not recording.
        TimeoutError
            If ``frames`` were not recorded within ``timeout`` seconds.
        RecorderClosedError
            If a recorder or an attached reader is (or gets) closed.
        ProducerLostError
            If the producer of an attached recording dies meanwhile.

        Examples
        --------
        >>> import asyncio
        >>> from audioring import AudioRecord, VirtualInput
        >>> async def main():
        ...     with AudioRecord(1, 16000, 16000, device=VirtualInput("sine", 440)) as rec:
        ...         recorded = await rec.wait_frames(1600, timeout=2.0)
        ...         return recorded >= 1600, rec.read(1600).shape
        >>> asyncio.run(main())
        (True, (1600, 1))
        """
        self._check_readable("wait_frames")
        frames = as_count(frames, "frames", 0, MAX_FRAME_NUMBER)
        timeout = None if timeout is None else as_timeout(timeout)
        ring = self._reader_ring
        if recorded_frames(ring) < frames:
            self._check_recording("wait_frames")
        status, recorded = await wait_recorded(ring, frames, timeout, self._producing)
        if status == _core.WaitStatus.timeout:
            raise TimeoutError(
                f"{recorded} of {frames} frames {self._frames_are} in {timeout} s (is the producer still delivering?)"
            )
        return recorded


def recorded_frames(ring: _core.FrameRing) -> int:
    """Frames of the ring's current recording: ``frames_written - first_frame``, from one consistent pair.

    A restart (``FrameRing::clear``) stores the new first frame before it
    publishes its zeros, so a pair read in between (first moved, written
    not yet) would count negative, and a first read before a restart with
    written read after it would count the zeros. The pair is taken again
    until first_frame is the same on both sides of written and written has
    reached it; a restart in progress (one memset) is waited out, for at
    most `_RESTART_WAIT_S` (a header another process of the user forged can
    keep the pair inconsistent for ever: then the count is clamped at 0).
    """
    deadline = time.monotonic() + _RESTART_WAIT_S
    while True:
        first = ring.first_frame
        written = ring.frames_written
        if written >= first and ring.first_frame == first:
            return written - first
        if time.monotonic() > deadline:
            return max(0, written - first)
        os.sched_yield()


#: The longest a restart's clear (a memset of the ring: 0.1 s per GB here) keeps a count waiting.
_RESTART_WAIT_S = 2.0


async def wait_recorded(ring: _core.FrameRing, frames: int, timeout: Optional[float],
                        producing: Callable[[], bool]) -> tuple[_core.WaitStatus, int]:
    """Wait in asyncio until the current recording holds ``frames`` frames; return the status and the count.

    The count is that of the recording current when the wait ends: a
    restart begins the count again (as ``frames_recorded`` does), and the
    zeros it writes are never counted. Ends early (``interrupted``) when
    ``producing()`` says no more frames come.
    """
    def due() -> int:
        return ring.first_frame + frames

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        status = await _watch.wait_until_written(ring, due, left, producing)
        recorded = recorded_frames(ring)
        # A restart between due() and the look at frames_written can pass for readiness: look again.
        if status != _core.WaitStatus.ready or recorded >= frames:
            return status, recorded
