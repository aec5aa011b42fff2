"""A PortAudio input device as a recorder's `Device`: found once, planned at a rate it accepts, opened as a stream."""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Optional, Union

from .. import _core, _devices
from .base import DevicePlan
from .portaudio import PortAudioSource, check_settings


class PortAudioDevice:
    """An input device by index or name substring (None: the default input), as sounddevice takes them."""

    portaudio = True

    def __init__(self, spec: Union[int, str, None]) -> None:
        self.spec = spec

    @functools.cached_property
    def _found(self) -> tuple[ModuleType, dict[str, Any]]:
        """sounddevice and the device's description, looked up on first use (a failed lookup is not kept)."""
        sd = _devices.import_sounddevice()
        return sd, _devices.resolve_input_device(sd, self.spec)

    def plan(self, *, channels: int, sampling_rate: int, device_rate: Optional[int],
             mapping: Optional[list[int]]) -> DevicePlan:
        """A rate the device accepts and the inputs to open; see `Device.plan`."""
        sd, info = self._found
        if device_rate is None and mapping is None and _devices.accepts(sd, info, sampling_rate):
            return DevicePlan(sampling_rate, channels, list(range(channels)))  # no conversion: the path of old
        name, inputs = info["name"], int(info["max_input_channels"])
        if mapping is not None and max(mapping) > inputs:
            raise ValueError(f"mapping names input {max(mapping)} but device {name!r} has {inputs} input channels")
        rate = self._rate(sampling_rate, device_rate)
        if mapping is None:
            return DevicePlan(rate, channels, list(range(channels)))
        wanted = max(mapping)
        # Some host APIs open a device only with all of its inputs: then take them
        # all and keep the mapped ones.
        opened = wanted if wanted == inputs or _devices.accepts(sd, info, rate, wanted) else inputs
        return DevicePlan(rate, opened, [m - 1 for m in mapping])

    def _rate(self, sampling_rate: int, device_rate: Optional[int]) -> int:
        """``device_rate`` if the device accepts it; None: ``sampling_rate`` if accepted, else the device's own."""
        sd, info = self._found
        if device_rate is None:
            accepted = _devices.accepts(sd, info, sampling_rate)
            return sampling_rate if accepted else int(round(info["default_samplerate"]))
        if _devices.accepts(sd, info, device_rate):
            return device_rate
        rates = ", ".join(map(str, _devices.accepted_rates(sd, info)))
        accepts = rates or f"none of {', '.join(map(str, _devices.STANDARD_RATES))}"
        raise ValueError(
            f"device_rate={device_rate}: device {info['name']!r} does not accept it (it accepts {accepts} Hz)")

    def check(self, *, channels: int, rate: int, dtype: str, driver: str) -> None:
        """Raise ValueError naming the value if the device refuses these settings (see `check_settings`)."""
        sd, info = self._found
        check_settings(sd, info, channels, rate, dtype)

    def block_buffer_bytes(self, blocksize: int, frame_bytes: int) -> int:
        """None that scale with the arguments: PortAudio's own buffers are the host API's."""
        return 0

    def open(self, capture: _core.Capture, *, channels: int, rate: int, dtype: str, blocksize: int,
             latency: Union[float, str, None], driver: str) -> PortAudioSource:
        """The stream (not started): PortAudio calls the C callback for ``driver='native'`` where it can."""
        sd, info = self._found
        return PortAudioSource.open(sd, info, capture, channels=channels, sampling_rate=rate, dtype=dtype,
                                    blocksize=blocksize, latency=latency, native=driver == "native")
