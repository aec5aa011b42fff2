"""The virtual input as a source: a native thread that drives the capture callback."""

from __future__ import annotations

from typing import Callable

from .. import _core
from .._formats import sample_format
from .._virtual import VirtualInput

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
    def open(
        cls,
        config: VirtualInput,
        make_capture: Callable[[], _core.Capture],
        channels: int,
        rate: int,
        blocksize: int,
        dtype: str,
    ) -> VirtualSource:
        """Make the generator for ``config`` at this recorder's format (not started).

        ``make_capture`` is called once the settings are known to be valid.

        Raises
        ------
        ValueError
            If ``config`` has a frequency per channel but not ``channels`` of
            them, or a sine at or above half the sampling rate.
        MemoryError
            If the generator's block buffer (``blocksize`` frames) does not
            fit in the available memory.
        """
        frequencies = config.frequencies
        if len(frequencies) == 1 or config.signal != "sine":
            frequencies = frequencies[:1] * channels
        elif len(frequencies) != channels:
            raise ValueError(
                f"VirtualInput has {len(frequencies)} frequencies but the recorder has {channels} channels")
        # Only a sine has a frequency: a ramp or noise takes any sampling rate.
        for f in frequencies if config.signal == "sine" else ():
            if f >= rate / 2:
                raise ValueError(f"frequency {f:g} Hz must be below half the sampling rate ({rate / 2:g} Hz)")
        blocksize = blocksize or DEFAULT_BLOCKSIZE
        device = _core.VirtualDevice(
            make_capture(),
            _core.Signal.__members__[config.signal],
            frequencies,
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
