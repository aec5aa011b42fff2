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

from typing import Callable, Protocol, Union, cast

from .. import _core
from .._validate import as_device
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


def open_source(
    device: Union[int, str, VirtualInput, None],
    make_capture: Callable[[], _core.Capture],
    *,
    channels: int,
    sampling_rate: int,
    dtype: str,
    blocksize: int,
    latency: Union[float, str, None],
    driver: str,
) -> Source:
    """Open (not start) the source for ``device``, feeding the capture ``make_capture()`` makes.

    The cheap checks (the device exists and takes these settings) run first;
    ``make_capture`` (which allocates the ring) is called only once they passed.

    Raises
    ------
    TypeError
        If ``device`` is not None, an int (numpy's included), a str or a `VirtualInput`.
    ValueError
        If ``driver='python'`` is asked of a `VirtualInput` (it has no Python
        callback), or as `PortAudioSource.open` and `VirtualSource.open` raise it.
    ImportError, OSError, sounddevice.PortAudioError
        As `PortAudioSource.open` raises them.
    """
    if isinstance(device, VirtualInput):
        if driver != "native":
            raise ValueError(
                f"driver={driver!r} needs a PortAudio device: a VirtualInput always calls the native "
                "callback from its own thread (leave driver='native')"
            )
        return VirtualSource.open(device, make_capture, channels, sampling_rate, blocksize, dtype)
    return PortAudioSource.open(
        cast(Union[int, str, None], as_device(device)), make_capture, channels=channels,
        sampling_rate=sampling_rate, dtype=dtype, blocksize=blocksize, latency=latency, native=driver == "native",
    )
