"""Several devices as one source: each device's stream, its lane's converter, and the aligner thread.

The aligner (``_core.Aligner``) puts the devices' frames side by side on
the master device's timebase; see `audioring._aligned_pipeline`.
"""

from __future__ import annotations

from typing import Optional

from .. import _core
from .base import Source


class AlignedSource:
    """Several devices' sources whose lanes a native aligner thread combines into one recording.

    Start order: the aligner, the lanes' converters, then the devices (each
    stage is ready for the first frame of the one before it); stop order:
    the devices, the converters (which convert what is left), then the
    aligner (which takes everything the lanes hold). The master (the clock)
    speaks for the recording's time, name and liveness; another device that
    goes away only makes its channels silent (`AudioRecord.device_stats`).
    """

    def __init__(self, devices: list[Source], converters: list[Optional[_core.Converter]], aligner: _core.Aligner,
                 master: int) -> None:
        self._devices = devices
        self._converters = [c for c in converters if c is not None]
        self._aligner = aligner
        self._master = devices[master]

    @property
    def devices(self) -> list[Source]:
        """Each device's own source, in the order of the device list."""
        return list(self._devices)

    @property
    def name(self) -> str:
        """The devices' names, joined with ``' + '``."""
        return " + ".join(device.name for device in self._devices)

    @property
    def hostapi(self) -> str:
        """The master's host API."""
        return self._master.hostapi

    @property
    def driver(self) -> str:
        """How the master's blocks arrive."""
        return self._master.driver

    @property
    def latency(self) -> float:
        """The largest input latency of the devices: the recording waits for the latest one."""
        return max(device.latency for device in self._devices)

    @property
    def time(self) -> float:
        """The master's clock."""
        return self._master.time

    @property
    def started(self) -> bool:
        """Whether any device, converter or the aligner runs (asked of them)."""
        return (any(device.started for device in self._devices) or any(c.running for c in self._converters)
                or self._aligner.running)

    def ensure_alive(self) -> None:
        """Raise if the master went away (the others going away only silences their channels)."""
        self._master.ensure_alive()

    def start(self) -> None:
        """Start the aligner, the converters, then the devices; on a failure, stop what started."""
        started: list[Source] = []
        self._aligner.start()
        try:
            for converter in self._converters:
                converter.start()
            for device in self._devices:
                device.start()
                started.append(device)
        except BaseException:
            for device in reversed(started):
                device.stop()
            self._stop_threads()
            raise

    def stop(self) -> None:
        """Stop every device, then the converters and the aligner (which write out what is left)."""
        try:
            for device in self._devices:
                if device.started:
                    device.stop()
        finally:
            self._stop_threads()

    def close(self) -> None:
        """Close every device (the threads are stopped by then); again: a no-op."""
        self._stop_threads()
        errors: list[BaseException] = []
        for device in self._devices:
            try:
                device.close()
            except Exception as error:  # noqa: BLE001 - close the others, then raise the first
                errors.append(error)
        if errors:
            raise errors[0]

    def _stop_threads(self) -> None:
        try:
            for converter in self._converters:
                converter.stop()
        finally:
            self._aligner.stop()
