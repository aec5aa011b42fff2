"""A recorder's stages for several devices: devices -> lanes -> aligner -> ring.

Each device is opened at the recording's rate if it takes it, else at its
own (a lane converter, as a single converting device has, brings it to the
recording's rate), always as float32. Its capture ring (or its converter's
output) is its *lane*; the aligner thread (``_core.Aligner``: clock fits on
every block's capture time, libsoxr's variable-rate resampler per non-master
lane) writes the recording's ring. The master's capture counts where the
recording's readers look (a shared ring's header), as a single device's does.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from . import _core
from ._formats import sample_format
from ._pipeline import Pipeline, check_conversion_ratio, check_memory, device_ring_capacity, open_ring, ring_capacity
from ._ring import Ring
from ._settings import RecordSettings
from ._sources import Device, DevicePlan, Source
from ._sources.aligned import AlignedSource

#: How long (seconds of the master's audio) the recording waits for a device
#: that delivers nothing before its channels are filled with silence.
STALL_SECONDS = 2.0

#: Frames per aligner step (aligner.hpp's default), for its memory estimate.
ALIGNER_CHUNK = 512


@dataclasses.dataclass(frozen=True)
class Lane:
    """One device of an aligned recording, opened.

    Attributes
    ----------
    plan : DevicePlan
        Its rate and inputs.
    capture : _core.Capture
        What its callback writes into (its clock's block times included).
    converter : _core.Converter or None
        Its lane converter, when it runs at another rate than the recording.
    source : Source
        Its stream.
    """

    plan: DevicePlan
    capture: _core.Capture
    converter: Optional[_core.Converter]
    source: Source


def build_aligned_pipeline(settings: RecordSettings) -> Pipeline:
    """Plan every device, check them and the memory, then open the lanes and the aligner (nothing started).

    The pipeline's ``plan`` is the master's, its ``capture`` the aligner
    (which speaks for the recording's counts and times, in the master's clock).

    Raises
    ------
    ValueError, MemoryError, ImportError, OSError
        As `AudioRecord` documents them, naming the device.
    """
    s = settings
    assert s.devices is not None
    plans = []
    for choice in s.devices:
        plan = choice.device.plan(channels=choice.channels, sampling_rate=s.sampling_rate, device_rate=None,
                                  mapping=choice.mapping)
        check_conversion_ratio(s.sampling_rate, plan.rate)
        choice.device.check(channels=plan.channels, rate=plan.rate, dtype="float32", driver=s.driver)
        plans.append(plan)
    lane_frames = [device_ring_capacity(s, plan.rate) + int(STALL_SECONDS * plan.rate) for plan in plans]
    ring_bytes = sum(frames * plan.channels * 4 for frames, plan in zip(lane_frames, plans))
    converter_bytes = sum(
        _core.converter_memory(float(plan.rate), float(s.sampling_rate), plan.channels, plan.mapping,
                               _core.SampleFormat.float32, frames)
        + (frames * len(plan.mapping) * 4)  # its output: the lane ring
        for frames, plan in zip(lane_frames, plans) if plan.rate != s.sampling_rate
    )
    block_bytes = sum(choice.device.block_buffer_bytes(s.blocksize, plan.channels * 4)
                      for choice, plan in zip(s.devices, plans))
    check_memory(s, ring_capacity(s), block_bytes, ring_bytes, converter_bytes + aligner_memory(s, plans))
    ring = open_ring(s)
    lanes: list[tuple[Lane, Ring]] = []
    try:
        for index, (choice, plan, frames) in enumerate(zip(s.devices, plans, lane_frames)):
            lanes.append(_open_lane(s, plan, choice.device, frames, ring, index == s.clock))
        aligner = _core.Aligner(
            ring._core, [_lane_tuple(lane, lane_ring) for lane, lane_ring in lanes], s.clock,
            float(s.sampling_rate), sample_format(s.dtype.name), STALL_SECONDS,
        )
    except BaseException:
        for lane, _ in lanes:  # what opened is released: nothing outlives a failed constructor
            lane.source.close()
        raise
    opened = tuple(lane for lane, _ in lanes)
    source = AlignedSource([lane.source for lane in opened], [lane.converter for lane in opened], aligner, s.clock)
    master = opened[s.clock]
    return Pipeline(master.plan, ring, source, aligner, None, None, master.capture, aligner=aligner, lanes=opened)


def aligner_memory(settings: RecordSettings, plans: list[DevicePlan]) -> int:
    """Bytes the aligner allocates: per lane, a queue of float frames twice (STALL_SECONDS + 8 chunks) long,
    its chunk buffers and its resampler's output buffer."""
    queue = 2 * (int(STALL_SECONDS * settings.sampling_rate) + 1 + 8 * ALIGNER_CHUNK)
    return sum((queue + 4 * ALIGNER_CHUNK + 64) * len(plan.mapping) * 4 + ALIGNER_CHUNK * plan.channels * 4
               for plan in plans)


def _open_lane(s: RecordSettings, plan: DevicePlan, device: Device, frames: int, ring: Ring,
               master: bool) -> tuple[Lane, Ring]:
    capture_ring = Ring(plan.channels, frames, "float32")
    # The master counts where the recording's readers look (a shared header), as a single device does.
    capture = _core.Capture(capture_ring._core, ring._core) if master else _core.Capture(capture_ring._core)
    converter = None
    lane_ring = capture_ring
    if plan.rate != s.sampling_rate:
        lane_ring = Ring(len(plan.mapping), frames, "float32")
        converter = _core.Converter(
            capture, lane_ring._core, float(plan.rate), float(s.sampling_rate), plan.channels, plan.mapping,
            _core.SampleFormat.float32, _core.Quality.__members__[s.quality.replace(" ", "_")],
        )
    source = device.open(capture, channels=plan.channels, rate=plan.rate, dtype="float32", blocksize=s.blocksize,
                         latency=s.latency, driver=s.driver)
    return Lane(plan, capture, converter, source), lane_ring


def _lane_tuple(lane: Lane, lane_ring: Ring) -> tuple[object, ...]:
    if lane.converter is not None:  # the converter already selected the mapped inputs
        return (lane_ring._core, len(lane.plan.mapping), list(range(len(lane.plan.mapping))), lane.capture,
                lane.converter, float(lane.plan.rate))
    return (lane_ring._core, lane.plan.channels, lane.plan.mapping, lane.capture, None, float(lane.plan.rate))
