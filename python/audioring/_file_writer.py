"""FileWriter: a recording written into audio files by a native thread, never needing the GIL.

``record_to()`` (on `AudioRecord`, `Ring` and attached readers) checks its
arguments here, then hands the ring to ``_core.FileWriter``
(``csrc/audioring/file_writer.hpp``), whose thread drains it into
libsndfile. This class is the Python face of that thread: what it has
written, what it lost, whether it failed, and closing it.
"""

from __future__ import annotations

import atexit
import errno
import os
import stat
import time
import weakref
from typing import NamedTuple, Optional, Union

from . import _core
from ._file_formats import PYTHON, FileChoice, Spelling, choose, longest_file, split_frames
from ._validate import MAX_FRAME_NUMBER, as_count, as_frame_number, as_timeout

PathArg = Union[str, "os.PathLike[str]", int]


class Gap(NamedTuple):
    """Frames lost before the writer took them, written as silence of exactly this length."""

    #: Where the gap begins, in frames from the recording's first frame written (split parts joined).
    frame: int
    #: Frames of silence.
    length: int
    #: Where it begins, in seconds from the first frame written.
    seconds: float
    #: The file it begins in.
    file: str


#: Why a writer ended (`FileWriter.end`), in words for summaries.
END_REASONS = {
    "running": "still writing",
    "frames_done": "wrote the frames asked for",
    "finished": "closed",
    "restarted": "the recording restarted (a new recording needs a new writer)",
    "producer_stopped": "the producer stopped",
    "producer_lost": "the producer died",
    "error": "writing failed",
}


class FileWriter:
    """Writes a recording into audio files on a native thread (what ``record_to()`` returns).

    The thread copies each new span of frames out of the ring and writes it
    with libsndfile; the ring's capacity is how long the disk may stall
    before frames are lost. Frames that were lost anyway (the writer fell
    more than a ring behind) are written as silence of exactly their
    length, so every later frame keeps its position and time, and each gap
    is listed in `gaps`, in `frames_lost` and in a CSV next to the files
    (``take.gaps.csv``), written as it happens.

    A writer belongs to one recording, as a stream does. It ends when
    ``frames`` are written, at `close`, when its recorder stops or closes
    (everything recorded is written first), at a restart (what the restart
    cleared unwritten is a gap), when an attached recording's producer
    stops or dies, or when writing fails (`error`; the file is left
    complete up to the failure). Use it as a context manager.

    Examples
    --------
    >>> import tempfile, os, soundfile
    >>> from audioring import AudioRecord, VirtualInput
    >>> path = os.path.join(tempfile.mkdtemp(), "take.wav")
    >>> with AudioRecord(2, 16000, 16000, device=VirtualInput("sine", 440, speed=10)) as rec:
    ...     with rec.record_to(path, frames=8000) as writer:
    ...         writer.wait(timeout=5.0)
    True
    >>> soundfile.info(path).frames, writer.files == [path], writer.gaps
    (8000, True, [])
    """

    def __init__(self, native: _core.FileWriter, ring: _core.FrameRing, choice: FileChoice, rate: int,
                 gap_log: Optional[str]) -> None:
        self._native = native
        self._ring = ring
        self._choice = choice
        self._rate = rate
        self._gap_log = gap_log
        self._closed = False
        _OPEN.add(self)

    # ---- what it wrote --------------------------------------------------------------

    @property
    def files(self) -> list[str]:
        """The files written so far, in order (one, or the split parts ``take-0001.wav``, ...)."""
        return list(self._native.files)

    @property
    def frames(self) -> int:
        """Frames written so far, gaps' silence included."""
        return int(self._native.frames)

    @property
    def start(self) -> int:
        """The ring frame written first (absolute, as ``frames_written`` counts)."""
        return int(self._native.start)

    @property
    def lag(self) -> int:
        """Frames recorded but not yet written (0 once ended)."""
        return int(self._native.lag)

    @property
    def gaps(self) -> list[Gap]:
        """Every gap so far: frames lost before the writer took them, written as silence."""
        return [Gap(frame, length, frame / self._rate, file) for frame, length, file in self._native.gaps]

    @property
    def frames_lost(self) -> int:
        """Frames written as silence because they were lost (the sum of the gaps' lengths)."""
        return int(self._native.frames_lost)

    @property
    def gap_log(self) -> Optional[str]:
        """The CSV that lists each gap as it happens (created at the first gap), or None for a pipe."""
        return self._gap_log

    @property
    def format(self) -> str:
        """The file format (``wav``, ``rf64``, ``w64``, ``caf``, ``flac``, ``au``, ``raw``)."""
        return self._choice.format

    @property
    def subtype(self) -> str:
        """libsndfile's name of the samples in the file (``PCM_16``, ``FLOAT``, ...)."""
        return self._choice.subtype

    @property
    def error(self) -> Optional[str]:
        """Why writing failed, in one line naming the file and the OS's reason; None if it did not."""
        return self._native.error or None

    @property
    def end(self) -> str:
        """Why it ended: a key of ``END_REASONS`` (``"running"`` while it writes)."""
        return str(self._native.end)

    @property
    def ended(self) -> bool:
        """Whether the thread ended and the files are closed."""
        return self.end != "running"

    @property
    def closed(self) -> bool:
        """Whether `close` was called (or the writer ended and was closed)."""
        return self._closed

    # ---- ending ---------------------------------------------------------------------

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the writer ends by itself (``frames`` written, the recording ended); return whether it did.

        The GIL is released meanwhile; signal handlers run (Ctrl-C interrupts the wait).
        """
        limit = None if timeout is None else as_timeout(timeout)
        return _wait(self._native, limit)

    def finish(self) -> None:
        """Write what is recorded up to now, then end; returns at once (`wait` for the end)."""
        if not self._native.forked:
            self._native.finish(self._ring.frames_written)

    def close(self) -> None:
        """Write what is recorded up to now, close the files, and wait for that.

        Raises
        ------
        OSError
            If writing failed (the disk is full, ...), with `error`'s message;
            the files hold every frame written before the failure.
        """
        self._end(raise_error=True)

    def _end(self, raise_error: bool) -> None:
        if not self._closed:
            self._closed = True
            _OPEN.discard(self)
            if self._native.forked:
                return  # the thread is the parent's
            self.finish()
            _wait(self._native, None)
        if raise_error and self.error:
            raise OSError(self.error)

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        # While an exception propagates, the write error (if any) stays in `error` instead of replacing it.
        self._end(raise_error=exc_type is None)

    def __repr__(self) -> str:
        files = self.files
        where = files[0] if len(files) == 1 else f"{len(files)} files from {files[0]!r}" if files else "?"
        return (f"<FileWriter {where!r} {self.format} {self.subtype} frames={self.frames} "
                f"lost={self.frames_lost} {self.end}>")


#: The longest a wait sleeps without the GIL before signal handlers get to run.
_SIGNAL_SLICE_S = 0.05


def _wait(native: _core.FileWriter, timeout: Optional[float]) -> bool:
    """Wait for the writer's end in slices, so that Python runs signal handlers between them."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _SIGNAL_SLICE_S if deadline is None else min(_SIGNAL_SLICE_S, deadline - time.monotonic())
        if native.wait(max(0.0, left)):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def open_writer(ring: _core.FrameRing, path: PathArg, *, fmt: Optional[str], subtype: Optional[str],
                split: object, start: object, frames: object, pending: bool = False,
                spelling: Spelling = PYTHON, name: Optional[str] = None) -> FileWriter:
    """Check ``record_to``'s arguments against ``ring`` and start a writer on it.

    ``path`` may be an open descriptor (a pipe, stdout: ``fmt`` must stream;
    it stays open), named ``name`` in messages. ``pending``: the ring's first
    recording has not begun (a shared producer not started yet); the writer
    begins with it. ``spelling``: how refusals name the arguments.
    """
    fd: Optional[int] = None
    if isinstance(path, int) and not isinstance(path, bool):
        fd, label = path, name or f"fd {path}"
    else:
        label = os.fspath(path)  # type: ignore[arg-type]
        if not isinstance(label, str):
            raise TypeError(f"path must be a str, an os.PathLike of str or a file descriptor, got {path!r}")
    rate = int(ring.sampling_rate)
    if rate <= 0:
        raise ValueError("record_to() needs the ring's sampling_rate: make the Ring with sampling_rate=")
    dtype = ring.dtype.name
    if fd is not None and fmt is None:
        raise ValueError(f"{spelling.format}: give the format to write to a file descriptor ({label})")
    choice = choose(label, fmt, subtype, dtype, int(ring.channels), spelling)
    part_frames = 0 if split is None else split_frames(split, choice, rate, spelling)
    total = None if frames is None else as_count(frames, "frames", 1, MAX_FRAME_NUMBER)
    first = _start_frame(ring, start)
    close_fd = fd is None
    if fd is None:
        fd = _fifo_descriptor(label, choice)
    if fd >= 0 and part_frames:
        raise ValueError(f"{spelling.split}: a pipe cannot be split into files; leave it out")
    if fd < 0:
        longest_file(choice, total, part_frames, rate, spelling)
    stem, suffix = os.path.splitext(label)
    gap_log = None if fd >= 0 else stem + ".gaps.csv"
    # Wall-clock time of the first frame, for the files' timestamps (bext's time reference).
    start_time = float("nan") if pending else time.time() - (ring.frames_written - first) / rate
    try:
        native = _core.FileWriter(
            ring, path=label, fd=fd, close_fd=close_fd and fd >= 0, format=choice.format, subtype=choice.subtype,
            samples=_core.SampleFormat.__members__[dtype], rate=rate, start=first,
            frames=-1 if total is None else total, split_frames=part_frames, part_prefix=stem + "-",
            part_suffix=suffix, pending=pending, gap_log=gap_log or "", start_time=start_time)
    except BaseException:
        if close_fd and fd >= 0:
            os.close(fd)  # a FIFO opened here: the writer never took it
        raise
    return FileWriter(native, ring, choice, rate, gap_log)


def _start_frame(ring: _core.FrameRing, start: object) -> int:
    """``start`` (default: now), checked to lie within what the ring still holds of the current recording.

    A start before the recording's first frame begins there, as a stream's does.
    """
    written = int(ring.frames_written)
    if start is None:
        return written
    frame = max(as_frame_number(start, "start"), int(ring.first_frame))
    oldest = max(int(ring.first_frame), written - int(ring.capacity))
    if not oldest <= frame <= written:
        raise ValueError(f"start must be within what the ring holds of this recording, {oldest}..{written} "
                         f"(frames_written), got {start}")
    return frame


def _fifo_descriptor(path: str, choice: FileChoice) -> int:
    """An open descriptor for a FIFO at ``path`` (-1 for anything else: the writer creates the file)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return -1
    if not stat.S_ISFIFO(mode):
        return -1
    if not choice.streams:
        raise ValueError(f"format: {path!r} is a FIFO (a pipe), which cannot take {choice.format.upper()}: its "
                         "header is completed by seeking back; use format='au' or 'raw'")
    try:
        # Non-blocking: with no reader on the other end, open() would wait for one forever.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        reason = "a FIFO with no reader; start the reader first" if error.errno == errno.ENXIO else error.strerror
        raise OSError(error.errno, f"cannot write {path!r}: {reason}") from None
    os.set_blocking(fd, True)
    return fd


#: Writers not closed yet: closed at exit, so that their files are complete.
_OPEN: weakref.WeakSet[FileWriter] = weakref.WeakSet()


def finish_writers(ring: _core.FrameRing) -> None:
    """The producer of ``ring`` stopped: its writers write what was recorded, then end (without waiting)."""
    for writer in list(_OPEN):
        if writer._ring is ring and not writer._native.forked:
            writer._native.finish(ring.frames_written)


def _close_at_exit() -> None:
    for writer in list(_OPEN):
        try:
            writer._end(raise_error=False)
        except Exception:  # noqa: BLE001 - exiting: nothing to report to
            pass


atexit.register(_close_at_exit)
