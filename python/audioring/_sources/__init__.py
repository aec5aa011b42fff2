"""Sources: what feeds an `AudioRecord`'s capture, behind one interface.

Data flows source -> capture -> ring -> views and streams:

- a **source** (a PortAudio stream, or the virtual input's native thread)
  calls ``audioring_capture_callback`` with each block, on its own thread,
  without the GIL;
- the **capture** (``_core.Capture``) writes the block into the ring and
  counts callbacks, frames and PortAudio's overflow flags;
- the **ring** (``_core.FrameRing``) publishes the frames; readers take
  zero-copy views of the latest frames, and `FrameStream` walks them in order.

`AudioRecord` only runs the lifecycle (start, stop, close) of whatever
`Source` it was given; everything specific to a host API (JACK's workarounds,
lost devices) lives in the source that needs it.
"""

from __future__ import annotations

from typing import Protocol, Union

from .. import _core
from .._virtual import VirtualInput
from .portaudio import PortAudioSource
from .virtual import VirtualSource

__all__ = ["PortAudioSource", "Source", "VirtualSource", "open_source"]


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

    def ensure_alive(self) -> None:
        """Raise if the source can never deliver again (its device or server went away)."""

    def start(self) -> None:
        """Start calling back. Called only while stopped."""

    def stop(self) -> None:
        """Stop; when it returns, no callback runs any more. Called only while started."""

    def close(self) -> None:
        """Release the device. Called once, while stopped."""


def open_source(
    device: Union[int, str, VirtualInput, None],
    capture: _core.Capture,
    *,
    channels: int,
    sampling_rate: int,
    dtype: str,
    blocksize: int,
    latency: Union[float, str, None],
    driver: str,
) -> Source:
    """Open (not start) the source for ``device``, feeding ``capture``.

    Raises
    ------
    TypeError
        If ``device`` is not None, an int, a str or a `VirtualInput`.
    ValueError, ImportError, OSError, sounddevice.PortAudioError
        As `PortAudioSource.open` and `VirtualSource.open` raise them.
    """
    if isinstance(device, VirtualInput):
        return VirtualSource.open(device, capture, channels, sampling_rate, blocksize, dtype)
    if device is not None and (isinstance(device, bool) or not isinstance(device, (int, str))):
        raise TypeError(f"device must be None, an int, a str or a VirtualInput, got {device!r}")
    return PortAudioSource.open(
        device, capture, channels=channels, sampling_rate=sampling_rate, dtype=dtype, blocksize=blocksize,
        latency=latency, native=driver == "native",
    )
