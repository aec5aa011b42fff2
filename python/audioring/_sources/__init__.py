"""Sources: what feeds an `AudioRecord`'s capture, behind one interface.

Data flows source -> capture -> ring -> views and streams:

- a **source** (a PortAudio stream, or the virtual input's native thread)
  calls ``audioring_capture_callback`` with each block, on its own thread,
  without the GIL;
- the **capture** (``_core.Capture``) writes the block into the ring and
  counts callbacks, frames and PortAudio's overflow flags;
- the **ring** (``_core.FrameRing``) publishes the frames; readers take
  zero-copy views of the latest frames, and `FrameStream` walks them in order.

A recorder's ``device`` argument is resolved once, by `as_device`, into a
`Device` that plans and opens itself into its `Source`; `audioring._pipeline`
puts the stages together. `AudioRecord` only runs the lifecycle (start, stop,
close) of whatever `Source` it was given; everything specific to a host API
(JACK's workarounds, lost devices) lives in the source that needs it.
"""

from __future__ import annotations

import numpy as np

from .._virtual import VirtualInput
from .base import Device, DevicePlan, Source
from .portaudio import PortAudioSource
from .portaudio_device import PortAudioDevice
from .virtual import VirtualInputDevice, VirtualSource

__all__ = [
    "Device", "DevicePlan", "PortAudioDevice", "PortAudioSource", "Source", "VirtualInputDevice", "VirtualSource",
    "as_device",
]


def as_device(device: object) -> Device:
    """``device`` as `AudioRecord` takes it (None, an int, numpy's included, a str or a `VirtualInput`), resolved.

    The one place that tells a virtual input from a PortAudio device; the
    PortAudio device is looked up when it is first planned.

    Raises
    ------
    TypeError
        For anything else (bools too).
    """
    if isinstance(device, VirtualInput):
        return VirtualInputDevice(device)
    if isinstance(device, np.integer):
        device = int(device)  # as every other integer argument takes numpy integers
    if device is not None and (isinstance(device, bool) or not isinstance(device, (int, str))):
        raise TypeError(f"device must be None, an int, a str or a VirtualInput, got {device!r}")
    return PortAudioDevice(device)
