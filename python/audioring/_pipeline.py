"""A recorder's stages, built from its settings: device -> source -> capture -> (converter) -> ring.

Without conversion the device's callback writes into the capture of the
ring users read. When the device runs at another rate or width (its
`DevicePlan` says so), it writes float32 frames of all its opened inputs
into a device ring instead, and a native converter thread (libsoxr, no GIL)
turns them into the recording's ring.

Everything that scales with the arguments is counted against the available
memory before the first byte of it is allocated.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._formats import sample_format
from ._ring import Ring
from ._settings import RecordSettings
from ._sources import DevicePlan, Source
from ._sources.converting import ConvertingSource
from ._validate import MAX_FRAMES

#: The device ring holds at least this much of the device's audio: how long
#: the converter thread may be kept from running (scheduling, a loaded
#: machine) before the device laps the frames it has not converted yet.
CONVERTER_STALL_SECONDS = 1

#: Device blocks in flight beyond that: one the callback is writing while
#: the converter copies out the one before.
BLOCKS_IN_FLIGHT = 2

#: Device frames of slack beyond that, for what the two sides move in one
#: step when no size bounds it: a block whose size the host API chooses
#: (``blocksize=0``) and the converter's chunk (1024 frames, converter.hpp).
#: A margin over both, not a measured bound.
STEP_SLACK_FRAMES = 4096


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A recorder's stages, built and opened (not started).

    Attributes
    ----------
    plan : DevicePlan
        The rate and inputs the device runs with.
    ring : Ring
        What users read: ``buffer_size`` plus headroom frames at ``sampling_rate``.
    source : Source
        What the recorder starts, stops and closes.
    capture : _core.Capture or _core.Converter
        What a new recording resets and `stats`/`time_at` read: the device's
        capture, or the converter that speaks for it in the recording's frames.
    converter, device_ring, device_capture
        When converting: the converter thread, the ring the device fills and
        the capture writing it; else None. For several devices,
        ``device_capture`` is the master's capture.
    aligner, lanes
        For several devices (`audioring._aligned_pipeline`, which builds
        on this module): the aligner thread (also ``capture``) and each
        device's lane; else None and ().
    """

    plan: DevicePlan
    ring: Ring
    source: Source
    capture: Union[_core.Capture, _core.Converter, _core.Aligner]
    converter: Optional[_core.Converter] = None
    device_ring: Optional[Ring] = None
    device_capture: Optional[_core.Capture] = None
    aligner: Optional[_core.Aligner] = None
    lanes: tuple[Any, ...] = ()  # audioring._aligned_pipeline.Lane (that module builds on this one)


def build_pipeline(settings: RecordSettings) -> Pipeline:
    """Plan the device, check everything that can be checked cheaply, then allocate and open the stages.

    Raises
    ------
    ValueError, MemoryError, ImportError, OSError
        As `AudioRecord` documents them.
    """
    s = settings
    if s.devices is not None:
        raise ValueError("several devices: audioring._aligned_pipeline.build_aligned_pipeline builds their pipeline")
    plan = s.device.plan(channels=s.channels, sampling_rate=s.sampling_rate, device_rate=s.device_rate,
                         mapping=s.mapping)
    converting = plan.converts(s.sampling_rate, s.channels)
    if converting:
        check_conversion_ratio(s.sampling_rate, plan.rate)
    device_dtype = np.dtype("float32") if converting else s.dtype  # the converter reads float32
    s.device.check(channels=plan.channels, rate=plan.rate, dtype=device_dtype.name, driver=s.driver)
    device_frames = device_ring_capacity(s, plan.rate) if converting else 0
    converter_bytes = _core.converter_memory(
        float(plan.rate), float(s.sampling_rate), plan.channels, plan.mapping, sample_format(s.dtype.name),
        device_frames,
    ) if converting else 0
    frame_bytes = plan.channels * device_dtype.itemsize
    check_memory(s, ring_capacity(s), s.device.block_buffer_bytes(s.blocksize, frame_bytes),
                 device_frames * frame_bytes, converter_bytes)
    ring = open_ring(s)
    if converting:
        return _open_converting(s, plan, ring, device_frames)
    capture = _core.Capture(ring._core)
    return Pipeline(plan, ring, _open_device(s, plan, capture, s.dtype), capture)


def ring_capacity(settings: RecordSettings) -> int:
    """Frames of the recording's ring: ``buffer_size`` plus the headroom, at least one block.

    A block lands in one step, so a view of ``buffer_size`` frames lasts at
    least until the next block only if the headroom holds a whole block.
    """
    return settings.buffer_size + max(settings.headroom, settings.blocksize)


def device_ring_capacity(settings: RecordSettings, device_rate: int) -> int:
    """Frames of the device ring that a converter reads (see the module's constants for each term)."""
    headroom = -(-settings.headroom * device_rate // settings.sampling_rate)  # the headroom's time, rounded up
    stall = max(headroom, CONVERTER_STALL_SECONDS * device_rate)
    return stall + BLOCKS_IN_FLIGHT * settings.blocksize + STEP_SLACK_FRAMES


def check_conversion_ratio(sampling_rate: int, device_rate: int) -> None:
    """Raise ValueError, naming both rates, for a conversion wider than libsoxr is allowed to make.

    libsoxr's scratch memory grows with the ratio (13 MB per channel at
    1 Hz -> 100 kHz); the bound is far past any real pair of device and
    recording rates.
    """
    limit = _core.MAX_CONVERSION_RATIO
    if not 1 / limit <= sampling_rate / device_rate <= limit:
        raise ValueError(
            f"sampling_rate={sampling_rate} is {sampling_rate / device_rate:g} times the "
            f"device's rate (device_rate={device_rate}): the conversion allows ratios sampling_rate / "
            f"device_rate from 1/{limit:g} to {limit:g}; record at a rate nearer the device's"
        )


def check_memory(
    settings: RecordSettings, capacity: int, block_bytes: int, device_ring_bytes: int, converter_bytes: int
) -> None:
    """Raise MemoryError, naming the sizes, if everything that scales with the arguments cannot fit together.

    That is the ring, a virtual input's block buffer, and when converting
    the device's ring and the converter's buffers (libsoxr's included),
    against the memory available (a memory cgroup's limit included).
    """
    ring_bytes = capacity * settings.channels * settings.dtype.itemsize
    available = _core.available_memory()
    needed = ring_bytes + block_bytes + device_ring_bytes + converter_bytes
    # Past Ring's bound, Ring's ValueError (naming the sum) says more than the memory would.
    if available and capacity <= MAX_FRAMES and needed > available:
        extra = f" + the converter's device ring {device_ring_bytes} bytes" if device_ring_bytes else ""
        extra += f" + the converter's buffers {converter_bytes} bytes" if converter_bytes else ""
        extra += f" + the virtual input's block buffer {block_bytes} bytes" if block_bytes else ""
        raise MemoryError(
            f"buffer_size={settings.buffer_size} + headroom={capacity - settings.buffer_size} frames x "
            f"channels={settings.channels} x {settings.dtype.itemsize} bytes does not fit in memory: the ring "
            f"needs {ring_bytes} bytes{extra}, {needed} bytes in all, but only {available} bytes of memory are "
            "available"
        )


def open_ring(s: RecordSettings) -> Ring:
    """The recording's ring; a shared one says idle until the first recording starts."""
    try:
        ring = Ring(s.channels, ring_capacity(s), s.dtype, share=s.share, sampling_rate=s.sampling_rate)
    except (MemoryError, ValueError) as error:  # ValueError: the sum is past Ring's bound
        raise type(error)(
            f"buffer_size={s.buffer_size} + headroom={max(s.headroom, s.blocksize)} frames "
            f"x channels={s.channels} do not fit: {error}"
        ) from None
    if s.share is not None:
        ring._core.set_state(_core.SharedState.idle)
    return ring


def _open_converting(s: RecordSettings, plan: DevicePlan, ring: Ring, device_frames: int) -> Pipeline:
    device_ring = Ring(plan.channels, device_frames, "float32")
    # The device's counters live with the recording's ring, where its readers find them.
    device_capture = _core.Capture(device_ring._core, ring._core)
    converter = _core.Converter(
        device_capture, ring._core, float(plan.rate), float(s.sampling_rate), plan.channels, plan.mapping,
        sample_format(s.dtype.name), _core.Quality.__members__[s.quality.replace(" ", "_")],
    )
    source = ConvertingSource(_open_device(s, plan, device_capture, np.dtype("float32")), converter)
    return Pipeline(plan, ring, source, converter, converter, device_ring, device_capture)


def _open_device(s: RecordSettings, plan: DevicePlan, capture: _core.Capture, dtype: np.dtype) -> Source:
    return s.device.open(capture, channels=plan.channels, rate=plan.rate, dtype=dtype.name, blocksize=s.blocksize,
                         latency=s.latency, driver=s.driver)
