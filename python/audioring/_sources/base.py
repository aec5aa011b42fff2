"""The interfaces of a recording's input: a `Device` plans and opens itself into a `Source`."""

from __future__ import annotations

import dataclasses
from typing import Optional, Protocol, Union

from .. import _core


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """How a device is opened for a recording.

    Attributes
    ----------
    rate : int
        The rate the device runs at.
    channels : int
        The inputs it is opened with.
    mapping : list of int
        0-based device input of each recorded channel.
    """

    rate: int
    channels: int
    mapping: list[int]

    def converts(self, sampling_rate: int, channels: int) -> bool:
        """Whether recording ``channels`` at ``sampling_rate`` needs the converter."""
        return self.rate != sampling_rate or self.mapping != list(range(channels)) or self.channels != channels


class Source(Protocol):
    """An input that calls the capture callback with blocks of frames.

    Methods are called from one Python thread at a time (the recorder's
    lock orders them); the callback runs on the source's own thread.
    """

    @property
    def name(self) -> str:
        """The device's name (``'virtual:...'`` for the virtual input)."""

    @property
    def hostapi(self) -> str:
        """PortAudio's host API name, or ``'virtual'``."""

    @property
    def driver(self) -> str:
        """How blocks arrive: ``'native'`` (C callback), ``'python'`` or ``'virtual'``."""

    @property
    def latency(self) -> float:
        """The input latency in seconds."""

    @property
    def time(self) -> float:
        """The source's clock now, in seconds: the clock of the capture's time anchor."""

    @property
    def started(self) -> bool:
        """Whether the source is started: asked of the stream or thread itself, never a stale flag."""

    def ensure_alive(self) -> None:
        """Raise if the source can never deliver again (its device or server went away)."""

    def start(self) -> None:
        """Start calling back. Called only while stopped."""

    def stop(self) -> None:
        """Stop; when it returns, no callback runs any more. Called only while started."""

    def close(self) -> None:
        """Release the device, once: later calls do nothing. Called while stopped."""


class Device(Protocol):
    """An input device as `AudioRecord` was given it, resolved once (see `audioring._sources.as_device`).

    A recorder calls, in this order: `plan`, `check` (cheap: nothing is
    allocated), then, once the rings exist, `open`.
    """

    #: Whether it opens through PortAudio, so that opening or starting it can fail with
    #: ``sounddevice.PortAudioError`` (a sound server gone since PortAudio scanned, say).
    portaudio: bool

    def plan(self, *, channels: int, sampling_rate: int, device_rate: Optional[int],
             mapping: Optional[list[int]]) -> DevicePlan:
        """Decide the device's rate and inputs for a recording (nothing is opened).

        ``device_rate`` None: ``sampling_rate`` if the device accepts it, else
        its own rate. ``mapping``: 1-based device inputs, shaped by
        `audioring._validate.as_mapping`.

        Raises
        ------
        ValueError
            If no such device exists (naming the available ones), it refuses
            ``device_rate`` (naming what it accepts) or ``mapping`` names an
            input it does not have.
        ImportError, OSError
            If sounddevice or PortAudio is missing (saying what to install).
        """

    def check(self, *, channels: int, rate: int, dtype: str, driver: str) -> None:
        """Raise ValueError, naming the value, if the device refuses to be opened so."""

    def block_buffer_bytes(self, blocksize: int, frame_bytes: int) -> int:
        """Memory that opening allocates for the device's own blocks (counted before allocating)."""

    def open(self, capture: _core.Capture, *, channels: int, rate: int, dtype: str, blocksize: int,
             latency: Union[float, str, None], driver: str) -> Source:
        """Open (not start) the device, its callback writing into ``capture``; after a `check` with these settings."""
