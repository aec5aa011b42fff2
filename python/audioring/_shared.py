"""Reading a recording that another process shares by name: attach() and shared()."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Optional

import numpy as np

from . import _core, _watch
from ._clock import frame_time
from ._errors import ProducerLostError, RecorderClosedError
from ._reader import FrameReader, recorded_frames
from ._stats import CaptureStats
from ._validate import as_share_name


@dataclasses.dataclass(frozen=True)
class SharedInfo:
    """A recording that `attach` can open, as `shared` lists it.

    Attributes
    ----------
    name : str
        The name it is shared under.
    pid : int
        The process that records it.
    channels, sampling_rate, capacity : int
        Its format (``sampling_rate`` is 0 for a `Ring` shared without one).
    dtype : numpy.dtype
        Its sample format.
    state : str
        ``'idle'``, ``'recording'``, ``'stopped'`` or ``'closed'``.
    frames_written : int
        Absolute frame number one past its newest frame (it counts the
        zeros each ``start_recording`` writes, as ``AudioRecord.frames_written`` does).
    frames_recorded : int
        Frames of its current recording (since the producer's last
        ``start_recording``; a `Ring`'s since its last ``clear``), when listed.
    """

    name: str
    pid: int
    channels: int
    sampling_rate: int
    dtype: np.dtype
    capacity: int
    state: str
    frames_written: int
    frames_recorded: int


def shared() -> list[SharedInfo]:
    """The recordings this user's processes share now, by name.

    Entries left by a producer that died (crashed, killed) are removed on
    the way, so the list only holds recordings whose producer lives.

    Returns
    -------
    list of SharedInfo
        Sorted by name.

    Warns
    -----
    RuntimeWarning
        Once for each entry under this user's prefix in ``/dev/shm`` that
        cannot be attached (a FIFO, directory, socket or symbolic link planted
        there, another user's file, one open to others, a malformed header),
        naming its path and why. Such entries are skipped and left in place.

    Raises
    ------
    NotImplementedError
        Where sharing is not available (it needs Linux).

    Examples
    --------
    >>> from audioring import AudioRecord, VirtualInput, shared
    >>> with AudioRecord(1, 16000, 1600, device=VirtualInput("sine"), share="doc-listed"):
    ...     [(s.name, s.channels, s.sampling_rate, s.state) for s in shared() if s.name == "doc-listed"]
    [('doc-listed', 1, 16000, 'recording')]
    """
    entries = [
        SharedInfo(
            name=e["name"], pid=e["pid"], channels=e["channels"], sampling_rate=e["sampling_rate"],
            dtype=np.dtype(e["dtype"]), capacity=e["capacity"], state=e["state"].name,
            frames_written=e["frames_written"], frames_recorded=max(0, e["frames_written"] - e["first_frame"]),
        )
        for e in _core.list_shared()
        if e["alive"]
    ]
    return sorted(entries, key=lambda e: e.name)


def attach(name: str) -> SharedRecording:
    """Open the recording another process shares under ``name``, read-only and zero-copy.

    The producer is an ``AudioRecord(..., share=name)`` or a ``Ring(...,
    share=name)`` in any process of the same user.

    Parameters
    ----------
    name : str
        The shared name (see `shared`).

    Returns
    -------
    SharedRecording

    Raises
    ------
    FileNotFoundError
        If no recording is shared under ``name`` (a closed producer's name is
        gone), or what is there is still being made after 5 s.
    PermissionError
        If it belongs to another user, or is open to group or others.
    ValueError
        If ``name`` is not a valid name, or what is shared under it is not a
        valid audioring ring: not a regular file (a FIFO, directory, socket or
        symbolic link; the message names the path and what it is), or a forged
        or truncated file (the message says which field).
    NotImplementedError
        Where sharing is not available (it needs Linux).

    Examples
    --------
    >>> from audioring import AudioRecord, VirtualInput, attach
    >>> with AudioRecord(1, 16000, 1600, device=VirtualInput("ramp"), dtype="int32", share="doc-mic") as rec:
    ...     with attach("doc-mic") as mic:
    ...         block = next(iter(mic.stream(160)))   # in any process of this user
    ...         (mic.channels, mic.sampling_rate, block.shape, block.flags.writeable)
    (1, 16000, (160, 1), False)
    """
    return SharedRecording(name)


class SharedRecording(_core.RecordReader, FrameReader):
    """A read-only view of a recording shared by another process (made by `attach`).

    Reads are zero-copy views of the producer's ring, mapped read-only: a
    reader can neither slow down nor corrupt the producer or other readers,
    and one that crashes costs them nothing. The semantics are those of the
    producer's own reads: `read` returns the latest frames, `is_intact` says
    whether a view was overwritten since, `stream` delivers every frame once
    (raising `OverrunError` when lapped), and views stay readable after
    `close`.

    Liveness: a stream ends normally when the producer stops or closes, and
    raises `ProducerLostError` within a second if the producer dies.

    Processes: an attached recording pickles as its name, so a
    ``multiprocessing`` worker (any start method) receives it attached anew.

    Parameters
    ----------
    name : str
        The shared name.

    Examples
    --------
    >>> import asyncio
    >>> from audioring import Ring, attach
    >>> import numpy as np
    >>> async def main():
    ...     with Ring(1, 4096, "int16", share="doc-async") as ring, attach("doc-async") as mic:
    ...         blocks = mic.astream(4, start=0, timeout=2.0)
    ...         asyncio.get_running_loop().call_later(0.01, ring.write, np.arange(8, dtype="int16").reshape(8, 1))
    ...         return [(await blocks.__anext__())[:, 0].tolist() for _ in range(2)]
    >>> asyncio.run(main())
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """

    def __init__(self, name: str) -> None:
        self._closed = True  # until attached, so close() and __del__ are safe
        self._name = as_share_name(name, "name")
        self._ring = _core.attach_ring(self._name)
        self._attach(self._ring, self._ring.capacity)  # the native read() reads this ring
        self._closed = False

    # ---- what it is --------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name it is shared under."""
        return self._name

    @property
    def device(self) -> str:
        """``'shared:NAME'``: where the frames come from, as `AudioRecord.device` names a device."""
        return f"shared:{self._name}"

    @property
    def producer_pid(self) -> int:
        """The process that records it."""
        pid = self._ring.producer_pid
        assert pid is not None  # an attached ring is always a shared one
        return pid

    @property
    def channels(self) -> int:
        """Samples per frame."""
        return int(self._ring.channels)

    @property
    def sampling_rate(self) -> int:
        """Frames per second (0 if the producer is a `Ring` shared without a rate)."""
        return int(self._ring.sampling_rate)

    @property
    def dtype(self) -> np.dtype:
        """The sample format."""
        dtype: np.dtype = self._ring.dtype
        return dtype

    @property
    def capacity(self) -> int:
        """Frames the ring holds: `read` returns at most this many."""
        return int(self._ring.capacity)

    @property
    def buffer_size(self) -> int:
        """The most frames `read` returns (the ring's capacity)."""
        return self.capacity

    # ---- its state -----------------------------------------------------------------

    @property
    def recording(self) -> bool:
        """Whether the producer is recording (and alive)."""
        return self._ring.state == _core.SharedState.recording and bool(self._ring.producer_alive())

    @property
    def producer_alive(self) -> bool:
        """Whether the producer's process still holds the recording (False once it died)."""
        return bool(self._ring.producer_alive())

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def first_frame(self) -> int:
        """Absolute frame number of the current recording's first frame (0 before the producer's first start)."""
        return self._ring.first_frame

    @property
    def frames_written(self) -> int:
        """Absolute frame number one past the newest frame."""
        return int(self._ring.frames_written)

    @property
    def frames_recorded(self) -> int:
        """Frames recorded since the producer's last ``start_recording`` (a shared `Ring`: since its last ``clear``)."""
        stats = self.stats
        return stats.frames if stats is not None else recorded_frames(self._ring)

    @property
    def stats(self) -> Optional[CaptureStats]:
        """The producer's capture counters (as its ``AudioRecord.stats``); None for a shared `Ring`."""
        counters = self._ring.recording_stats()
        return None if counters is None else CaptureStats(**counters)

    @property
    def overflows(self) -> int:
        """Blocks the producer's device flagged as following lost input (0 for a shared `Ring`)."""
        stats = self.stats
        return 0 if stats is None else stats.input_overflows

    @property
    def converting(self) -> bool:
        """Whether the producer converts its device's rate or channels."""
        return bool(self._ring.converting)

    def time_at(self, frame: int) -> float:
        """The stream time (seconds, the producer's device clock) at which absolute ``frame`` was captured.

        Raises
        ------
        RuntimeError
            If the producer has captured nothing since it started recording
            (or is a `Ring`, which has no device clock).
        """
        return frame_time(self._ring.recording_anchor(), frame, self._ring.sampling_rate)

    # ---- reading ---------------------------------------------------------------------

    def close(self) -> None:
        """Detach. Views already read stay readable; streams waiting here raise `RecorderClosedError`."""
        if self._closed:
            return
        self._closed = True
        self._close(self._closed_message)  # the native reads refuse from now on
        self._ring.interrupt()
        _watch.close(self._ring)  # asyncio waits end too
        self._finish_writers()  # file writers write what was recorded, then close

    def __enter__(self) -> SharedRecording:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Callable[[str], SharedRecording], tuple[str]]:
        # A worker process attaches anew: only the name crosses.
        return attach, (self._name,)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "recording" if self.recording else "not recording"
        return (
            f"<SharedRecording name={self._name!r} pid={self._ring.producer_pid} channels={self._ring.channels} "
            f"sampling_rate={self._ring.sampling_rate} dtype={self._ring.dtype} {state}>"
        )

    # ---- internals ---------------------------------------------------------------------

    def _producing(self) -> bool:
        """For `FrameStream`: whether frames may still arrive; raises if this reader closed or the producer died."""
        self._check_open()
        state = self._ring.state
        if state == _core.SharedState.idle:
            return True  # not started yet: its first recording is still to come
        if state != _core.SharedState.recording:
            return False  # stopped or closed in order: the stream drains and ends
        # A producer sets its state before it lets go of the recording, so one
        # that is gone while the state still says recording died.
        if not self._ring.producer_alive() and self._ring.state == _core.SharedState.recording:
            raise ProducerLostError(self._producer_died)
        return True

    @property
    def _producer_died(self) -> str:
        """What a reader says when the producer died (also a file writer's end, ``producer_lost``)."""
        return (f"the process sharing {self._name!r} (pid {self._ring.producer_pid}) died; "
                "the frames read so far stay valid")

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderClosedError(self._closed_message)

    # ---- FrameReader's hooks ------------------------------------------------------

    @property
    def _closed_message(self) -> str:  # type: ignore[override]
        return f"this reader of {self._name!r} is closed; attach() again"

    @property
    def _reader_ring(self) -> _core.FrameRing:
        return self._ring

    def _check_readable(self, method: str) -> None:
        self._check_open()

    def _stream_pending(self) -> bool:
        return self._ring.state == _core.SharedState.idle  # the producer has not started yet

