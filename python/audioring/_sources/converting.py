"""Recording at a rate (and channel selection) the device does not deliver.

`ConvertingSource` wraps the device's source (opened as its `DevicePlan`
says): the device's callback fills a capture ring at the device's rate, and a
native converter thread (``_core.Converter``, libsoxr, no GIL) turns it into
the ring users read.
"""

from __future__ import annotations

from .. import _core
from .base import Source


class ConvertingSource:
    """A device's source whose capture ring a converter thread turns into the recording's ring.

    Start order: the converter, then the device (the converter must be ready
    for the first block); stop order: the device, then the converter (which
    converts what is left and flushes the resampler, so that the recording
    ends with the conversion of every frame the device delivered).
    """

    def __init__(self, device: Source, converter: _core.Converter) -> None:
        self._device = device
        self._converter = converter

    @property
    def name(self) -> str:
        """The device's name."""
        return self._device.name

    @property
    def hostapi(self) -> str:
        """The device's host API."""
        return self._device.hostapi

    @property
    def driver(self) -> str:
        """How the device's blocks arrive."""
        return self._device.driver

    @property
    def latency(self) -> float:
        """The device's input latency in seconds (the resampler's delay is `AudioRecord.conversion_delay`)."""
        return self._device.latency

    @property
    def time(self) -> float:
        """The device's clock."""
        return self._device.time

    @property
    def started(self) -> bool:
        """Whether the device or the converter thread runs (asked of them, never a stale flag)."""
        return self._device.started or self._converter.running

    def ensure_alive(self) -> None:
        """Raise if the device went away."""
        self._device.ensure_alive()

    def start(self) -> None:
        """Start the converter thread, then the device."""
        self._converter.start()
        try:
            self._device.start()
        except BaseException:
            self._converter.stop()
            raise

    def stop(self) -> None:
        """Stop the device, then convert what is left and stop the converter."""
        try:
            self._device.stop()
        finally:
            self._converter.stop()

    def close(self) -> None:
        """Close the device (the converter is stopped by then); again: a no-op."""
        try:
            self._converter.stop()
        finally:
            self._device.close()
