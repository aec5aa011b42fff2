"""Exceptions of audioring's own conditions."""

from __future__ import annotations

from . import _core


class OverrunError(RuntimeError):
    """A lossless consumer fell behind and frames were overwritten before it read them.

    Attributes
    ----------
    frames_lost : int
        How many frames were skipped (never delivered to the consumer); with
        overlapping blocks (``hop < blocksize``), how far the window start
        jumped (see `FrameStream`).
    position : int
        The absolute frame number the consumer continues from.
    """

    def __init__(self, frames_lost: int, position: int) -> None:
        super().__init__(
            f"consumer fell behind: {frames_lost} frames were overwritten before "
            f"they were read; continuing from frame {position}"
        )
        self.frames_lost = frames_lost
        self.position = position


#: The recorder was closed; it cannot record or be read any more. (A
#: RuntimeError subclass made by the compiled module, whose reads raise it.)
RecorderClosedError = _core.RecorderClosedError
