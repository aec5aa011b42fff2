"""DeviceReport: what a recorder tells of each of its devices: clock drift, alignment, losses.

One device or several (``AudioRecord(device=[...])``): `device_stats` has
one entry per device, in the order of the device list, and `clock_drift`
each device's clock against the master's. The counts come from the
device's capture, its lane converter, and the aligner's lane counters
(aligner.hpp).
"""

from __future__ import annotations

import math
from typing import Any

from ._stats import DeviceStats


class DeviceReport:
    """`device_stats` and `clock_drift` of an `AudioRecord`; the recorder sets ``_pipeline`` and ``_source``."""

    _pipeline: Any  # audioring._pipeline.Pipeline
    _sampling_rate: int

    @property
    def device_stats(self) -> tuple[DeviceStats, ...]:
        """Each device's counts and clock since :meth:`start_recording`, in the order of the device list.

        A device that goes away or stalls does not stop the others: its
        channels go silent and its ``frames_silent`` and ``stalls`` say how long.
        """
        pipeline = self._pipeline
        if pipeline.aligner is None:
            stats = pipeline.capture.stats()
            plan = pipeline.plan
            return (DeviceStats(
                self._source_name(0), plan.rate, len(plan.mapping), stats["device_frames"],
                stats["input_overflows"], _in_recording(stats["device_frames_lost"], plan.rate, self._sampling_rate),
                0, 0, True, 0.0, 0.0, 0.0,
            ),)
        return tuple(self._lane_stats(index, lane) for index, lane in enumerate(pipeline.lanes))

    @property
    def clock_drift(self) -> tuple[float, ...]:
        """Each device's clock against the master's, in parts per million (+: it runs fast).

        0.0 for the master (and for a single device); nan for a device whose
        clock is not measured yet (it has not delivered since
        :meth:`start_recording`).
        """
        return tuple(stats.drift_ppm for stats in self.device_stats)

    def _source_name(self, index: int) -> str:
        source = self._pipeline.source
        devices = getattr(source, "devices", None)
        return str(devices[index].name if devices is not None else source.name)

    def _lane_stats(self, index: int, lane: Any) -> DeviceStats:
        aligner = self._pipeline.aligner
        counts = aligner.lane_stats(index)
        capture = lane.capture.stats()
        converter_lost = converter_overruns = 0
        if lane.converter is not None:
            converted = lane.converter.stats()
            converter_lost = _in_recording(converted["device_frames_lost"], lane.plan.rate, self._sampling_rate)
            converter_overruns = converted["conversion_overruns"]
        master = index == aligner.master
        drift = 0.0 if master else (counts["drift_ppm"] if counts["alignments"] > 0 else math.nan)
        return DeviceStats(
            self._source_name(index), lane.plan.rate, len(lane.plan.mapping), capture["device_frames"],
            capture["input_overflows"] + converter_overruns + counts["overruns"],
            counts["frames_lost"] + converter_lost, counts["frames_silent"], counts["stalls"], counts["locked"],
            drift, 0.0 if master else counts["correction_ppm"], 0.0 if master else counts["offset"],
        )


def _in_recording(device_frames: int, device_rate: int, sampling_rate: int) -> int:
    """Device frames as the recording's frames (rounded)."""
    return round(device_frames * sampling_rate / device_rate)
