"""Exceptions of audioring's own conditions."""

from __future__ import annotations

from typing import Optional

from . import _core


class OverrunError(RuntimeError):
    """A lossless consumer fell behind and frames were overwritten before it read them.

    Raised by `FrameStream` (``AudioRecord.stream()``), and by ``read(size,
    copy=True)`` / ``Ring.latest(frames, copy=True)`` when the producer
    overwrote the frames on each of 64 tries to copy them (then
    ``frames_lost`` counts the frames of the last try that were overwritten
    and ``position`` is the newest frame when the read gave up).

    Attributes
    ----------
    frames_lost : int
        How many frames were skipped (never delivered to the consumer); with
        overlapping blocks (``hop < blocksize``), how far the window start
        jumped (see `FrameStream`).
    position : int
        The absolute frame number the consumer continues from.
    """

    def __init__(self, frames_lost: int, position: int, message: Optional[str] = None) -> None:
        super().__init__(
            message
            if message is not None
            else f"consumer fell behind: {frames_lost} frames were overwritten before "
            f"they were read; continuing from frame {position}"
        )
        self.frames_lost = frames_lost
        self.position = position


# A read(copy=True) that the producer lapped raises it too (from native code).
_core._set_overrun_error(OverrunError)


#: The recorder was closed; it cannot record or be read any more. (A
#: RuntimeError subclass made by the compiled module, whose reads raise it.)
RecorderClosedError = _core.RecorderClosedError


class ProducerLostError(RecorderClosedError):
    """The process that shares a recording died (crashed, killed) while a reader waited for it.

    Raised by the streams of `audioring.attach` readers within a second of
    the producer's death, instead of waiting forever. Frames already read
    stay valid. An orderly stop or close of the producer ends the streams
    normally instead.
    """
