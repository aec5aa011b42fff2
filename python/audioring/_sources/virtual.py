"""The virtual input as a device and a source: a native thread that drives the capture callback."""

from __future__ import annotations

from typing import Optional, Union

from .. import _core
from .._formats import sample_format
from .._virtual import VirtualInput
from .base import DevicePlan

#: Frames a VirtualInput delivers per callback when blocksize=0 (PortAudio's choice).
DEFAULT_BLOCKSIZE = 256


class VirtualSource:
    """A `VirtualInput` opened for one recorder: its generator thread and settings."""

    hostapi = "virtual"
    driver = "virtual"

    def __init__(self, device: _core.VirtualDevice, name: str, latency: float) -> None:
        self._device = device
        self.name = name
        self.latency = latency

    @classmethod
    def open(cls, config: VirtualInput, capture: _core.Capture, channels: int, rate: int, blocksize: int,
             dtype: str) -> VirtualSource:
        """Make the generator for ``config`` at this recorder's format (not started), after `VirtualInputDevice.check`.

        Raises
        ------
        MemoryError
            If the generator's block buffer (``blocksize`` frames) does not
            fit in the available memory.
        """
        blocksize = blocksize or DEFAULT_BLOCKSIZE
        device = _core.VirtualDevice(
            capture,
            _core.Signal.__members__[config.signal],
            _frequencies(config, channels),
            config.amplitude,
            channels,
            float(rate),
            blocksize,
            config.speed if config.realtime else 0.0,
            -1 if config.frames is None else config.frames,
            sample_format(dtype),
            config.seed,
        )
        return cls(device, config.name, blocksize / rate)

    @property
    def time(self) -> float:
        """Seconds on the generator's clock."""
        return self._device.time

    @property
    def started(self) -> bool:
        """Whether the generator is started (still true once it reached its frame limit)."""
        return bool(self._device.started)

    def ensure_alive(self) -> None:
        """A virtual input never goes away."""

    def start(self) -> None:
        """Start (or continue) generating."""
        self._device.start()

    def stop(self) -> None:
        """Stop and join the generator thread."""
        self._device.stop()

    def close(self) -> None:
        """Stop the generator for good (again: a no-op)."""
        self._device.close()


def _frequencies(config: VirtualInput, channels: int) -> list[float]:
    """One frequency per channel: a single one (or a signal without one) repeated, else one each."""
    if len(config.frequencies) == 1 or config.signal != "sine":
        return config.frequencies[:1] * channels
    return config.frequencies


class VirtualInputDevice:
    """A `VirtualInput` as a recorder's `audioring._sources.base.Device`."""

    portaudio = False  # its own native thread: nothing of PortAudio's can fail

    def __init__(self, config: VirtualInput) -> None:
        self.config = config

    def plan(self, *, channels: int, sampling_rate: int, device_rate: Optional[int],
             mapping: Optional[list[int]]) -> DevicePlan:
        """The rate (the input's own, if it has one) and inputs of a recording; see `Device.plan`."""
        config = self.config
        if config.rate is None:
            rate = sampling_rate if device_rate is None else device_rate
        elif device_rate is None or device_rate == config.rate:
            rate = config.rate
        else:
            raise ValueError(f"device_rate={device_rate}: device {config.name!r} accepts only {config.rate} Hz")
        if mapping is None:
            # Opened with the recording's channels (`check` holds a sine's frequencies to them).
            return DevicePlan(rate, channels, list(range(channels)))
        # With a mapping, a sine with a frequency per channel has that many
        # inputs; otherwise the virtual device has whatever inputs are asked of it.
        per_channel = config.signal == "sine" and len(config.frequencies) > 1
        inputs = len(config.frequencies) if per_channel else None
        if inputs is not None and max(mapping) > inputs:
            raise ValueError(
                f"mapping names input {max(mapping)} but device {config.name!r} has {inputs} input channels")
        return DevicePlan(rate, max(mapping) if inputs is None else inputs, [m - 1 for m in mapping])

    def check(self, *, channels: int, rate: int, dtype: str, driver: str) -> None:
        """Raise ValueError for ``driver='python'``, a frequency per channel but not ``channels`` of them,
        or a sine at or above half the rate."""
        if driver != "native":
            raise ValueError(
                f"driver={driver!r} needs a PortAudio device: a VirtualInput always calls the native "
                "callback from its own thread (leave driver='native')"
            )
        config = self.config
        if config.signal != "sine":
            return  # only a sine has a frequency: a ramp or noise takes any sampling rate
        if len(config.frequencies) not in (1, channels):
            raise ValueError(
                f"VirtualInput has {len(config.frequencies)} frequencies but the recorder has {channels} channels")
        for f in config.frequencies:
            if f >= rate / 2:
                raise ValueError(f"frequency {f:g} Hz must be below half the sampling rate ({rate / 2:g} Hz)")

    def block_buffer_bytes(self, blocksize: int, frame_bytes: int) -> int:
        """The generator's block buffer: ``blocksize`` frames (`DEFAULT_BLOCKSIZE` for 0)."""
        return (blocksize or DEFAULT_BLOCKSIZE) * frame_bytes

    def open(self, capture: _core.Capture, *, channels: int, rate: int, dtype: str, blocksize: int,
             latency: Union[float, str, None], driver: str) -> VirtualSource:
        """The generator thread (not started); ``latency`` and ``driver`` were settled by `check`."""
        return VirtualSource.open(self.config, capture, channels, rate, blocksize, dtype)
