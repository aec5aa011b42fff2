"""Ring: the public face of the native frame ring."""

from __future__ import annotations

from typing import NoReturn, Optional, SupportsIndex, Union

import numpy as np

from . import _core, _watch
from ._errors import RecorderClosedError
from ._reader import FrameReader
from ._validate import (
    MAX_CHANNELS,
    MAX_FRAMES,
    MAX_SAMPLING_RATE,
    as_count,
    as_sample_dtype,
    as_share_name,
)

_NO_COPY = "{what} cannot be copied: the copy would share its memory and single producer"
_NO_PICKLE = (
    "{what} cannot be pickled: it is memory of this process (and a live stream); "
    "create the {name} in the worker process instead, and send its arguments or copies of its frames"
)

_MEMORY_BY_REQUEST = (
    (True, _core.MemoryRequest.best),
    (False, _core.MemoryRequest.plain),
    ("memfd", _core.MemoryRequest.memfd),
    ("shm", _core.MemoryRequest.shm),
)


class Ring(_core.RingReader, FrameReader):
    """A lock-free ring of audio frames that always holds the latest ``capacity`` frames.

    One producer writes blocks of interleaved frames; readers take the latest
    frames as zero-copy, read-only numpy arrays in O(1). The producer never
    waits: when the ring is full it overwrites the oldest frames, and a reader
    can ask afterwards whether the frames it was handed are still intact.

    Parameters
    ----------
    channels : int
        Samples per frame, >= 1.
    capacity : int
        Frames the ring holds, >= 1. Rounded up so that the ring's size in
        bytes is a multiple of the memory page size.
    dtype : str or numpy.dtype, optional
        Sample format: one of ``float32`` (default), ``int32``, ``int16``,
        ``int8``, ``uint8``.
    mirrored : bool or {'memfd', 'shm'}, optional
        ``True`` (default) maps the memory twice back to back so that every
        window is contiguous with a single copy per write, falling back to
        plain memory where the system cannot map it; ``False`` forces plain
        memory (every frame stored twice); ``'memfd'`` or ``'shm'`` demand
        that mapping method and raise `OSError` if it is unavailable.
    share : str, optional
        Publish the ring under this name while it is open, so that other
        processes of the same user read it with `audioring.attach` (zero-copy,
        read-only). 1..64 characters of letters, digits, ``_``, ``-`` and
        ``.`` (not first). Linux only.
    sampling_rate : int, optional
        Frames per second, for readers of a shared ring (0: unknown).

    Raises
    ------
    TypeError, ValueError
        For arguments of the wrong type or out of range.
    FileExistsError
        If ``share`` names a recording that a live process shares (the
        message names it); a dead producer's name is taken over.
    NotImplementedError
        For ``share`` where sharing is not available (it needs Linux).
    MemoryError
        If the ring does not fit in the available memory.

    Notes
    -----
    `latest`, `is_intact` and `frame_of` (also named `start_frame`, its
    first name) are native methods (inherited from
    ``audioring._core.RingReader``): a read costs about as much as numpy
    making a view.

    Threading: one thread at a time may write (the GIL serializes Python
    writers); any thread may read. A zero-copy array stays readable after the
    ring is gone, because its ``.base`` keeps the memory alive.

    Processes: a ring belongs to the process that made it. Its memory is
    shared with forked children but its frame counters are not, so in a
    forked child every method that writes, reads or waits (`write`, `clear`,
    `latest`, `is_intact`, `frame_of`, `stream`, `astream`, `wait_frames`)
    raises `RuntimeError`: make the ring in the process that uses it. `close`
    there (and leaving a ``with`` block) only marks the child's copy closed,
    releasing nothing of the parent's: its shared name, its state and its
    readers stay as they are. A ring cannot be pickled or copied
    (`TypeError`); ``ring.latest(n, copy=True)`` copies its frames. To read
    it from other processes, share it (``share=``) and `audioring.attach` there.

    Examples
    --------
    >>> import numpy as np
    >>> from audioring import Ring
    >>> ring = Ring(channels=2, capacity=4096, dtype="int16")
    >>> ring.write(np.ones((3, 2), dtype="int16"))
    >>> view = ring.latest(4)
    >>> view[:, 0].tolist(), ring.is_intact(view)
    ([0, 1, 1, 1], True)
    """

    def __init__(
        self,
        channels: int,
        capacity: int,
        dtype: object = "float32",
        *,
        mirrored: Union[bool, str] = True,
        share: Optional[str] = None,
        sampling_rate: int = 0,
    ) -> None:
        self._closed = False
        channels = as_count(channels, "channels", 1, MAX_CHANNELS)
        capacity = as_count(capacity, "capacity", 1, MAX_FRAMES)
        sample_dtype = as_sample_dtype(dtype)
        # Identity and type checks: 1, 0 and 1.0 are not accepted for True and False.
        memory = next((m for request, m in _MEMORY_BY_REQUEST if request is mirrored or (
            isinstance(mirrored, str) and request == mirrored)), None)
        if memory is None:
            raise ValueError(f"mirrored must be True, False, 'memfd' or 'shm', got {mirrored!r}")
        if share is not None:
            share = as_share_name(share)
            if memory not in (_core.MemoryRequest.best, _core.MemoryRequest.shm):
                raise ValueError(
                    f"a shared ring lives in mapped shared memory: mirrored must be True or 'shm', got {mirrored!r}"
                )
        sampling_rate = as_count(sampling_rate, "sampling_rate", 0, MAX_SAMPLING_RATE)
        try:
            self._core = _core.FrameRing(channels, capacity, sample_dtype, memory, share, sampling_rate)
        except MemoryError as error:
            raise MemoryError(
                f"capacity={capacity} frames x channels={channels} x {sample_dtype.itemsize} bytes "
                f"does not fit in memory: {error}"
            ) from None
        self._attach(self._core, self._core.capacity)  # the native reads read this ring
        if share is not None:
            self._core.set_state(_core.SharedState.recording)  # a Ring produces from birth to close()

    @property
    def channels(self) -> int:
        """Samples per frame."""
        return self._core.channels

    @property
    def capacity(self) -> int:
        """Frames the ring holds (>= the capacity asked for)."""
        return self._core.capacity

    @property
    def dtype(self) -> np.dtype:
        """The sample format."""
        return self._core.dtype

    @property
    def mirrored(self) -> bool:
        """Whether the memory is mapped twice (one copy per write) or plain."""
        return self._core.mirrored

    @property
    def memory(self) -> str:
        """How the memory was made: ``'memfd'``, ``'shm'`` or ``'plain'``."""
        return self._core.memory.name

    @property
    def shared_name(self) -> Optional[str]:
        """The name readers `audioring.attach` to while the ring is shared (``share=``), else None."""
        name: Optional[str] = None if self._closed else self._core.shared_name
        return name

    @property
    def sampling_rate(self) -> int:
        """Frames per second, as given (0: not given); readers of a shared ring see it."""
        return int(self._core.sampling_rate)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def frames_written(self) -> int:
        """Frames written since the ring was made (a :meth:`clear` counts ``capacity``)."""
        return self._core.frames_written

    @property
    def first_frame(self) -> int:
        """The first frame written since the last :meth:`clear` (0 before any): where `stream` starts."""
        return self._core.first_frame

    def write(self, block: np.ndarray) -> None:
        """Append a C-contiguous ``(frames, channels)`` block of the ring's dtype.

        A block longer than ``capacity`` leaves only its latest frames in the ring.

        Raises
        ------
        TypeError
            If ``block`` is not a numpy array of the ring's dtype.
        ValueError
            If its shape is not ``(frames, channels)`` or it is not C-contiguous.
        """
        if not isinstance(block, np.ndarray):
            raise TypeError(f"block must be a numpy.ndarray, got {type(block).__name__}")
        self._check_open()
        self._core.write(block)

    def clear(self) -> None:
        """Zero the ring and begin anew. Earlier zero-copy arrays are then judged not intact.

        The zeros count as ``capacity`` frames written, and `first_frame`
        moves past them: streams made before end there (they never hand out
        the zeros). Only call it while no other thread writes.
        """
        self._check_open()
        self._core.clear()

    def close(self) -> None:
        """Stop producing: `write` and `clear` raise `RecorderClosedError` from now on.

        A shared ring's name is removed (readers already attached keep what
        they mapped, and their streams end). Arrays read before stay
        readable. Closing twice is harmless. In a forked child it only marks
        the child's copy closed: the ring is the parent's.
        """
        if self._closed:
            return
        self._closed = True
        if self._core.forked:
            return  # the state, the name and the waiters (none here: waits refuse in a child) are the parent's
        if self._core.shared_name is not None:
            self._core.set_state(_core.SharedState.closed)  # attached readers' streams end
            self._core.unshare()
        self._core.interrupt()  # waiting streams find it closed and end
        _watch.close(self._core)  # asyncio waits too
        self._finish_writers()  # file writers write everything written, then close

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderClosedError(self._closed_message)

    # ---- FrameReader's hooks ------------------------------------------------------

    _closed_message = "the ring is closed; make a new Ring"
    _frames_are = "written"

    @property
    def _reader_ring(self) -> _core.FrameRing:
        return self._core

    def _check_readable(self, method: str) -> None:
        """A closed ring stays readable (its streams end); in a forked child the ring's own check refuses."""
        self._core.intact_from(0)

    def _producing(self) -> bool:
        """For the streams: whether frames may still be written: until `close` (a ring knows no other end)."""
        return not self._closed

    # ---- not copyable, not picklable ----------------------------------------------
    # A copy would share the memory and its single-producer contract (or, by
    # pickling, lose what makes it a ring); copying the frames is explicit.

    def __copy__(self) -> NoReturn:
        raise TypeError(_NO_COPY.format(what="a Ring") + "; ring.latest(n, copy=True) copies its frames")

    def __deepcopy__(self, memo: object) -> NoReturn:
        self.__copy__()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(_NO_PICKLE.format(what="a Ring", name="Ring"))

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(0)

    def __repr__(self) -> str:
        return (
            f"Ring(channels={self.channels}, capacity={self.capacity}, dtype='{self.dtype}', "
            f"memory='{self.memory}', frames_written={self.frames_written})"
        )

