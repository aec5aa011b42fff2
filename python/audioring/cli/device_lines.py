"""The summary's lines for a recording of several devices: each device's clock, alignment and silences."""

from __future__ import annotations

import math
from typing import Union

from .. import AudioRecord, SharedRecording


def device_lines(rec: Union[AudioRecord, SharedRecording]) -> tuple[str, ...]:
    """One line per device of an `AudioRecord` of several devices (else none), read while it is open.

    e.g. ``device 2: 'system': clock +29.31 ppm against device 1, locked; 0 frames silent, 0 stalls``.
    """
    if not isinstance(rec, AudioRecord) or len(rec.device_stats) < 2:
        return ()
    master = rec._pipeline.aligner.master
    lines = []
    for index, stats in enumerate(rec.device_stats):
        head = f"device {index + 1}: {stats.name!r} ({stats.channels} ch at {stats.rate} Hz)"
        if index == master:
            lines.append(f"{head}: the clock master")
            continue
        clock = "not measured" if math.isnan(stats.drift_ppm) else f"{stats.drift_ppm:+.2f} ppm"
        lock = "locked" if stats.locked else "not locked"
        lines.append(f"{head}: clock {clock} against device {master + 1}, {lock}; "
                     f"{stats.frames_silent} frames silent, {stats.stalls} stalls, {stats.frames_lost} frames lost")
    return tuple(lines)
