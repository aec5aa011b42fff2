"""Several devices in one recording: ``AudioRecord(device=[a, (b, [1, 2]), ...])``, checked.

Each element is a device as `AudioRecord` takes one (an index, a name, a
`VirtualInput`), or a ``(device, mapping)`` pair naming that device's
inputs, 1-based, in the order they are recorded. ``channels`` is the total:
devices with a mapping record that many channels; the others share the rest
equally (one device without a mapping takes all of the rest).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Optional

from ._sources import Device, as_device
from ._validate import as_mapping

#: The most devices one recording combines (each is a stream, a capture ring and a resampler).
MAX_DEVICES = 16


@dataclasses.dataclass(frozen=True)
class DeviceChoice:
    """One device of several: what it is and which of its inputs are recorded.

    Attributes
    ----------
    device : Device
        Resolved as a single ``device`` argument is.
    channels : int
        The recording's channels it provides.
    mapping : list of int or None
        Its inputs (1-based) recorded, in order; None for the first ``channels``.
    """

    device: Device
    channels: int
    mapping: Optional[list[int]]


def is_device_list(device: object) -> bool:
    """Whether ``device`` names several devices (a list)."""
    return isinstance(device, list)


def as_device_choices(devices: list[object], channels: int) -> tuple[DeviceChoice, ...]:
    """``devices`` (a list, see the module's notes) checked and resolved, with each device's channels.

    Raises
    ------
    ValueError
        For an empty list, more than `MAX_DEVICES`, mappings that take more
        than ``channels`` together, or channels that do not split equally
        over the devices without a mapping (naming the numbers).
    TypeError
        For an element that is neither a device nor a ``(device, mapping)`` pair.
    """
    if not 1 <= len(devices) <= MAX_DEVICES:
        raise ValueError(f"device must list 1..{MAX_DEVICES} devices, got {len(devices)}")
    pairs = [_as_pair(item, index) for index, item in enumerate(devices)]
    mapped = sum(len(mapping) for _, mapping in pairs if mapping is not None)
    free = [index for index, (_, mapping) in enumerate(pairs) if mapping is None]
    rest = channels - mapped
    if rest < len(free) or (not free and rest != 0):
        raise ValueError(
            f"channels={channels} but the devices' mappings name {mapped} inputs"
            + (f" and {len(free)} device(s) without a mapping need at least one each" if free else "")
            + ": channels is the total over all devices"
        )
    if free and rest % len(free) != 0:
        raise ValueError(
            f"channels={channels} leaves {rest} channels for {len(free)} devices without a mapping, which does not "
            "split equally: give each device a mapping, e.g. device=[(dev_a, [1, 2]), (dev_b, [1])]"
        )
    each = rest // len(free) if free else 0
    return tuple(
        DeviceChoice(as_device(device), len(mapping) if mapping is not None else each,
                     None if mapping is None else as_mapping(mapping, len(mapping)))
        for device, mapping in pairs
    )


def as_clock(clock: object, devices: int) -> int:
    """The master device's index, 0..devices-1.

    Raises
    ------
    TypeError
        If ``clock`` is not an integer.
    ValueError
        If it names no device of the list.
    """
    if isinstance(clock, bool):
        raise TypeError(f"clock must be the index of a device in the list, got {clock!r}")
    try:
        index = operator.index(clock)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"clock must be the index of a device in the list, got {clock!r}") from None
    if not 0 <= index < devices:
        raise ValueError(f"clock must be 0..{devices - 1} (an index into device), got {index}")
    return index


def _as_pair(item: object, index: int) -> tuple[object, Optional[list[int]]]:
    if isinstance(item, tuple):
        if len(item) != 2 or isinstance(item[1], (str, bytes)) or not hasattr(item[1], "__iter__"):
            raise TypeError(
                f"device[{index}] must be a device or a (device, mapping) pair with a sequence of 1-based inputs, "
                f"got {item!r}"
            )
        mapping = list(item[1])
        if not mapping:
            raise ValueError(f"device[{index}]'s mapping must name at least one input, got {item[1]!r}")
        return item[0], mapping
    return item, None
