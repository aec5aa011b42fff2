"""Capturing for a command: streaming a started recorder block by block until done, Ctrl-C or SIGTERM."""

from __future__ import annotations

import dataclasses
import signal
import sys
from typing import Callable, Optional, TextIO, Union

import numpy as np

from .. import AudioRecord, FrameStream, OverrunError, ProducerLostError, SharedRecording
from .display import Display, make_display, notice
from .levels import summary_peaks

#: What a command captures from: a recorder it started, or a shared recording it attached to.
Recording = Union[AudioRecord, SharedRecording]

#: Seconds of audio the ring keeps for the consumer (AudioRecord adds one second of headroom):
#: how long writing may stall before frames are lost. Read when a command starts its recorder,
#: so a test can shorten it (``audioring.cli.capture.RING_SECONDS = 0.5``).
RING_SECONDS = 3.0
#: Seconds without a block after which a device counts as dead.
NO_AUDIO_TIMEOUT = 5.0


class OutputError(Exception):
    """Raised by a capture's ``write`` when the output takes no more frames (a full disk, a closed pipe).

    The message says what failed; the capture ends with it as its failure.
    """


def until_text(total: Optional[int], rate: int) -> str:
    """How long a capture of ``total`` frames (None: until Ctrl-C) goes on, for the opening notice."""
    return "until Ctrl-C" if total is None else f"for {total / rate:g} s (Ctrl-C stops early)"


@dataclasses.dataclass(frozen=True)
class CaptureResult:
    """How a capture went: what `capture` returns.

    Attributes
    ----------
    frames : int
        Frames handed to ``write``, every one intact and in order.
    frames_lost : int
        Frames never handed to ``write`` because the ring lapped it (a stalled
        ``write``); the capture goes on after such a gap.
    overflows : int
        Input overflows the recorder counted while the capture ran (from
        ``start`` on, for a shared recording): audio dropped before it
        reached the ring.
    peak_dbfs : tuple of float
        Each channel's peak level over the whole capture, in dBFS (-inf: silence).
    failure : str or None
        Why the device stopped delivering, or the output stopped taking
        frames, before the end; None otherwise. A shared recording whose
        producer stops in order ends the capture without a failure.
    """

    frames: int
    frames_lost: int
    overflows: int
    peak_dbfs: tuple[float, ...]
    failure: Optional[str]


def capture(
    rec: Recording, title: str, total: Optional[int], limit: Optional[int],
    write: Callable[[np.ndarray], None], flush: Callable[[], None] = lambda: None,
    start: Optional[int] = None,
) -> CaptureResult:
    """Stream ``rec`` block by block into ``write`` until ``total`` frames, Ctrl-C or SIGTERM; close ``rec``.

    Parameters
    ----------
    rec : AudioRecord or SharedRecording
        A recording recorder, or an attached shared recording; closed on
        return, whatever happens.
    title : str
        What runs, for the display, e.g. ``'REC out.wav'``.
    total : int, optional
        Frames to capture (None: until Ctrl-C or SIGTERM).
    limit : int, optional
        The most frames the output holds (None: no limit); reaching it
        without ``total`` stops the capture with a notice.
    write : callable
        Takes each block, an owned ``(frames, channels)`` array.
    flush : callable, optional
        Called about once a second of audio, to keep a file's header up to date.
    start : int, optional
        Absolute frame to start from (default: the recording's first frame).

    Returns
    -------
    CaptureResult
    """
    rate = rec.sampling_rate
    block = max(1, rate // 10)
    timeout = max(NO_AUDIO_TIMEOUT, 3 * block / rate)
    display = make_display(title, rec.channels, rate, total)
    end = total if limit is None else limit if total is None else min(total, limit)
    # A shared recording's counters run from its producer's start: only what
    # they gain from here on belongs to this capture. (An overflow flagged
    # in the block being written as this is read may fall on either side.)
    overflows_before = rec.overflows if start is not None else 0
    run = _CaptureRun(rec, display, end, write, flush, overflows_before)
    try:
        with StopOnSignal() as stop:
            run.stream(stop, block, timeout, start)
            run.write_tail()
            if total is None and limit is not None and run.frames >= limit:
                notice(f"stopped at the file's size limit (4 GiB) after {run.frames / rate:.0f} s; use FLAC for longer")
        overflows = run.overflows()
    finally:
        display.close()
        rec.close()
    return _result(run, overflows, display)


class _CaptureRun:
    """One capture as it runs: the loop over the stream, the blocks written and shown, and why it ended.

    The output gets every frame once, in order, and never a damaged block:
    ``expected`` is the absolute number of the next frame it needs, and
    frames the ring lapped before they were taken count as ``lost``.
    """

    def __init__(self, rec: Recording, display: Display, end: Optional[int], write: Callable[[np.ndarray], None],
                 flush: Callable[[], None], overflows_before: int) -> None:
        self.rec, self.display, self.end, self.write, self.flush = rec, display, end, write, flush
        self.rate = rec.sampling_rate
        self.overflows_before = overflows_before
        self.frames = self.lost = 0
        self.failure: Optional[str] = None
        self.done = False  # the stream or the output ended the capture
        self.ended = False  # the producer stopped or died: no frame after rec.frames_written will come
        self.expected: Optional[int] = None  # None until a shared producer begins
        self.recording: Optional[int] = None  # the recording (first_frame) the stream reads, once known

    def overflows(self) -> int:
        """Input overflows counted since the capture began."""
        return self.rec.overflows - self.overflows_before

    def stream(self, stop: StopOnSignal, block: int, timeout: float, start: Optional[int]) -> None:
        """Write blocks until the stop condition: ``end`` frames, a stop requested, or the stream or output ending."""
        stream = self.rec.stream(block, timeout=timeout, start=start)
        self.expected = stream.position
        self.recording = None if self.expected is None else self.rec.first_frame
        while not stop.requested and (self.end is None or self.frames < self.end) and not self.done:
            view = self._next_block(stream, timeout)
            if view is not None:
                self._take(view, stream)

    def _next_block(self, stream: FrameStream, timeout: float) -> Optional[np.ndarray]:
        """The next block; None after a lapped ring (the gap counted, `done` not set) or at the end (`done` set)."""
        try:
            return next(stream)
        except OverrunError as error:  # the ring was lapped: count the gap, go on from the newest frame
            # Not error.frames_lost: that counts a block lapped after it was written out whole.
            self.lost += error.frames_lost if self.expected is None else error.position - self.expected
            self.expected = error.position
        except StopIteration:
            self.ended = self.done = True
            if isinstance(self.rec, SharedRecording):  # its producer stopped in order: the normal end
                notice(f"the producer of {self.rec.name!r} stopped recording: the capture ends here")
            else:  # only a failing device stops our own recorder
                self.failure = f"the recorder stopped after {self.frames} frames"
        except ProducerLostError as error:  # a shared recording's producer died
            self.ended = self.done = True
            self.failure = str(error)
        except TimeoutError:
            self.done = True
            self.failure = f"no audio from {self.rec.device!r} for {timeout:g} s (did the device go away?)"
        return None

    def _take(self, view: np.ndarray, stream: FrameStream) -> None:
        """Write an owned copy of ``view`` (up to ``end``), if the ring did not overwrite it while it was copied.

        A damaged block is dropped: the next block reports the loss.
        """
        data = np.array(view[: None if self.end is None else self.end - self.frames])
        if not self.rec.is_intact(view):
            return
        self.expected = stream.position
        if self.recording is None:  # a pending stream's recording began with this block
            self.recording = self.rec.first_frame
        try:
            self.write(data)
        except OutputError as error:
            self.failure, self.done = str(error), True
            return
        self.frames += len(data)
        self.display.update(self.frames, data, self.overflows(), self.lost)
        if self.frames % self.rate < len(data):  # about once a second: file header up to date
            self.flush()

    def write_tail(self) -> None:
        """Once the producer ended: the frames after the last whole block are complete too, so write them.

        Unless a restart replaced the recording (the frames after
        ``expected`` are then the next recording's).
        """
        if not (self.ended and self.expected is not None and self.rec.first_frame == self.recording):
            return
        wanted = self.rec.frames_written - self.expected
        count = wanted if self.end is None else min(wanted, self.end - self.frames)
        tail, tail_lost = _tail(self.rec, self.expected, count)
        self.lost += tail_lost
        if tail is not None:
            try:
                self.write(tail)
                self.frames += len(tail)
                self.display.update(self.frames, tail, self.overflows(), self.lost)
            except OutputError as error:
                self.failure = self.failure or str(error)


def _result(run: _CaptureRun, overflows: int, display: Display) -> CaptureResult:
    """What `capture` returns, once its display is closed."""
    peaks = tuple(float(level) for level in display.levels.max)
    return CaptureResult(frames=run.frames, frames_lost=run.lost, overflows=overflows, peak_dbfs=peaks,
                         failure=run.failure)


def _tail(rec: Recording, position: int, count: int) -> tuple[Optional[np.ndarray], int]:
    """The ``count`` frames from ``position`` on, fewer than a block, once nothing more will be written.

    Returns
    -------
    (numpy.ndarray or None, int)
        An owned copy of the frames still intact (None if none are), and how
        many of the ``count`` frames were lost (overwritten before they were read).
    """
    if count <= 0:
        return None, 0
    try:
        # Every frame below frames_written is complete, so this block is there at once: no wait.
        view = next(rec.stream(count, start=position))
    except OverrunError:
        return None, count
    data = np.array(view)
    if not rec.is_intact(view):
        return None, count
    return data, 0


def print_summary(result: CaptureResult, rate: int, frames_label: str, file: Optional[TextIO] = None) -> None:
    """The closing lines, on ``file`` (default stdout): frames, duration, overflows, frames lost, peak levels.

    ``frames_label`` names the frames line (``record``: ``'frames written'``).
    """
    file = file or sys.stdout
    print(f"{frames_label}: {result.frames}", file=file)
    print(f"duration: {result.frames / rate:.3f} s", file=file)
    print(f"overflows: {result.overflows}", file=file)
    print(f"frames lost: {result.frames_lost}", file=file)
    print(f"peak dBFS: {summary_peaks(result.peak_dbfs)}", file=file)


class StopOnSignal:
    """While active, the first SIGINT or SIGTERM sets ``requested``; a second SIGINT raises KeyboardInterrupt.

    The capture loop checks ``requested`` between blocks, so the file is
    never left half-written by an exception in the middle of a write.
    """

    requested = False

    def __enter__(self) -> StopOnSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
