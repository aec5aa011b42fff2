"""A recorder's arguments, checked once into one immutable `RecordSettings`."""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

import numpy as np

from ._device_list import DeviceChoice, as_clock, as_device_choices, is_device_list
from ._sources import Device, as_device
from ._validate import (
    MAX_CHANNELS,
    MAX_FRAMES,
    MAX_SAMPLING_RATE,
    as_count,
    as_mapping,
    as_quality,
    as_rate,
    as_sample_dtype,
    as_share_name,
    check_latency,
)

#: How audio may arrive: PortAudio calls the C callback, or a Python one.
DRIVERS = ("native", "python")

#: Bound on frames per callback, far past any host API's.
MAX_BLOCKSIZE = 2**24


@dataclasses.dataclass(frozen=True)
class RecordSettings:
    """`AudioRecord`'s constructor arguments, checked (see its docstring for their meaning).

    ``headroom`` is resolved (one second of audio by default); ``device`` is
    resolved into a `Device`; ``mapping`` is 1-based, None for the first
    ``channels`` inputs. For several devices, ``devices`` holds each one
    (``device`` is then the master's, the one at index ``clock``).
    """

    channels: int
    sampling_rate: int
    buffer_size: int
    dtype: np.dtype
    blocksize: int
    headroom: int
    latency: Union[float, str, None]
    driver: str
    device: Device
    device_rate: Optional[int]
    quality: str
    share: Optional[str]
    mapping: Optional[list[int]]
    devices: Optional[tuple[DeviceChoice, ...]] = None
    clock: int = 0


def check_record_settings(
    channels: object,
    sampling_rate: object,
    buffer_size: object,
    *,
    device: object,
    dtype: object,
    blocksize: object,
    latency: object,
    headroom: object,
    driver: object,
    device_rate: object,
    mapping: object,
    quality: object,
    share: object,
    clock: object = 0,
) -> RecordSettings:
    """Check `AudioRecord`'s arguments, in the order of its signature (the first bad one is reported).

    Nothing is opened: whether the device takes them is its `Device.plan`'s and `Device.check`'s to say.

    Raises
    ------
    ValueError, TypeError
        Naming the argument, its value and what it may be.
    """
    for name, value in (("channels", channels), ("sampling_rate", sampling_rate), ("buffer_size", buffer_size)):
        if not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")  # the reference's ValueError
    channel_count = as_count(channels, "channels", 1, MAX_CHANNELS)
    rate = as_count(sampling_rate, "sampling_rate", 1, MAX_SAMPLING_RATE)
    # Bounded like Ring's capacity, so that an error names this argument, not the ring's.
    frames = as_count(buffer_size, "buffer_size", 1, MAX_FRAMES)
    sample_dtype = as_sample_dtype(dtype)
    block = as_count(blocksize, "blocksize", 0, MAX_BLOCKSIZE)
    extra = rate if headroom is None else as_count(headroom, "headroom", 0, MAX_FRAMES)
    checked_latency = check_latency(latency)
    # isinstance first: `in` would compare an array elementwise (an error naming nothing).
    if not isinstance(driver, str) or driver not in DRIVERS:
        raise ValueError(f"driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
    if isinstance(device, list) and is_device_list(device):
        return _several_devices(channel_count, rate, frames, sample_dtype, block, extra, checked_latency, driver,
                                device, device_rate, mapping, quality, share, clock)
    if clock != 0:
        raise ValueError(f"clock={clock!r} chooses the master of several devices: pass device as a list")
    return RecordSettings(
        channel_count, rate, frames, sample_dtype, block, extra, checked_latency, driver,
        device=as_device(device),
        device_rate=None if device_rate is None else as_rate(device_rate, "device_rate"),
        quality=as_quality(quality),
        share=None if share is None else as_share_name(share),
        mapping=as_mapping(mapping, channel_count),
    )


def _several_devices(channels: int, rate: int, frames: int, dtype: np.dtype, block: int, extra: int,
                     latency: Union[float, str, None], driver: str, device: list[object], device_rate: object,
                     mapping: object, quality: object, share: object, clock: object) -> RecordSettings:
    """`RecordSettings` for a device list (each device opens at ``sampling_rate``, or its own rate if it must)."""
    for name, value in (("mapping", mapping), ("device_rate", device_rate)):
        if value is not None:
            raise ValueError(
                f"{name}= applies to one device; with a list of devices give each its inputs as (device, mapping) "
                "(each runs at sampling_rate if it can, else at its own rate, converted)"
            )
    choices = as_device_choices(device, channels)
    master = as_clock(clock, len(choices))
    return RecordSettings(
        channels, rate, frames, dtype, block, extra, latency, driver,
        device=choices[master].device, device_rate=None, quality=as_quality(quality),
        share=None if share is None else as_share_name(share), mapping=None, devices=choices, clock=master,
    )
