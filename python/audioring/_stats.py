"""CaptureStats: the capture callback's counters, as a recorder and its readers in other processes report them."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CaptureStats:
    """Counters of the capture callback since the last :meth:`AudioRecord.start_recording`.

    Attributes
    ----------
    callbacks : int
        Blocks delivered by the device.
    frames : int
        Frames delivered by the device.
    input_overflows : int
        Blocks flagged by PortAudio as following lost input (the device or
        host dropped data before audioring saw it).
    input_underflows : int
        Blocks flagged as input underflow.
    min_block, max_block : int
        Smallest and largest block, in frames (0 before the first block).
    device_frames : int
        Frames delivered by the device, at its rate. ``frames`` counts the
        recording's frames at ``sampling_rate``; the two are equal unless the
        recorder converts (`AudioRecord.converting`).
    device_frames_lost : int
        Device frames overwritten before the converter read them (its thread
        was starved for longer than the capture ring holds). They are
        recorded as silence, so frame numbers and `AudioRecord.time_at` stay
        true; always 0 without conversion.
    conversion_overruns : int
        How many times that happened (also counted in ``input_overflows``).
    """

    callbacks: int
    frames: int
    input_overflows: int
    input_underflows: int
    min_block: int
    max_block: int
    device_frames: int
    device_frames_lost: int
    conversion_overruns: int
