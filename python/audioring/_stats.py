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


@dataclasses.dataclass(frozen=True)
class DeviceStats:
    """One device of a recording, since the last :meth:`AudioRecord.start_recording` (`AudioRecord.device_stats`).

    Attributes
    ----------
    name : str
        The device's name.
    rate : int
        The rate it runs at.
    channels : int
        The recording's channels it provides.
    frames : int
        Frames it delivered, at its rate.
    overflows : int
        Its blocks PortAudio flagged as following lost input, plus the times
        its frames were overwritten before they were read.
    frames_lost : int
        Recording frames of its channels that are silence because its frames
        were overwritten before they were read.
    frames_silent : int
        Recording frames of its channels that are silence because it had
        not delivered them: before its first frame, while it stalled (more
        than a second behind the master), and at the end, what it had not
        delivered when the recording stopped.
    stalls : int
        Times it fell that far behind (each is followed by a fresh alignment
        once it delivers again).
    locked : bool
        Whether its clock is measured and its frames aligned to within a
        frame (the master: once its own clock is measured).
    drift_ppm : float
        Its clock's rate against the master's, in parts per million (+: it
        runs fast); 0.0 for the master, nan until measured.
    correction_ppm : float
        How much faster or slower than its drift alone its frames are played
        now, to steer out the remaining offset.
    offset : float
        How far (in its frames) its resampler is from the frame captured at
        the master's moment: the alignment error now, as measured.
    """

    name: str
    rate: int
    channels: int
    frames: int
    overflows: int
    frames_lost: int
    frames_silent: int
    stalls: int
    locked: bool
    drift_ppm: float
    correction_ppm: float
    offset: float
