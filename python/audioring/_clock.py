"""The device clock of a recording: when a frame was captured."""

from __future__ import annotations

from typing import Optional

from ._validate import as_frame_number


def frame_time(anchor: Optional[tuple[float, int]], frame: object, sampling_rate: float) -> float:
    """The stream time (seconds) at which absolute ``frame`` was captured.

    ``anchor`` is the capture's ``(ADC time, frame)`` of the recording's first
    block, or None before one arrived; frames count from it at the nominal
    ``sampling_rate`` (drift between the device's clock and its nominal rate is
    not corrected).

    Raises
    ------
    TypeError, ValueError
        If ``frame`` is not an integer frame number.
    RuntimeError
        If ``anchor`` is None: nothing captured yet.
    """
    frame = as_frame_number(frame, "frame")
    if anchor is None:
        raise RuntimeError("no audio captured yet: time_at() needs the first block's timestamp")
    adc_time, anchor_frame = anchor
    return float(adc_time + (frame - anchor_frame) / sampling_rate)
