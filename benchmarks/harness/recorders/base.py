"""The one interface every recorder is used through, so that each case is written once for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np


@dataclass
class InstalledCallback:
    """The stream callback a recorder installed, as PortAudio would call it.

    `before_batch` empties what the calls filled (a queue, a FIFO ring),
    untimed, as the recorder's consumer would; `max_calls` caps a batch where
    more calls would overflow what the recorder holds.
    """

    address: int
    user_data: Optional[int]
    before_batch: Optional[Callable[[], None]] = None
    max_calls: int = 1 << 16


def next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def cffi_address(ffi: Any, cdata: Any) -> int:
    return int(ffi.cast("uintptr_t", cdata))


def device_rate(sd: Any, device: int) -> int:
    """The rate PortAudio device `device` runs at by default (on JACK: the server's rate), as an ``int``."""
    return int(round(sd.query_devices(device)["default_samplerate"]))


class Recorder:
    """A recorder on a PortAudio device, recording `channels` float32 channels at `rate`
    (converted from the device's rate where the recorder resamples).

    `buffer_frames`: the latest frames it keeps (its buffer, ring or queue
    bound). `blocksize`: frames per callback (None: the host API's). `keep`:
    make consumers keep channel 0 of everything they take (the ramp check).
    """

    name = ""
    label = ""
    #: Whether the recorder has a read of the latest frames.
    has_read = False

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        self.channels = channels
        self.rate = rate
        self.buffer_frames = buffer_frames

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def stream_time(self) -> float:
        """The stream's clock (PortAudio's Pa_GetStreamTime; on JACK, JACK's frame clock)."""
        raise NotImplementedError

    def frames_received(self) -> Optional[int]:
        """Frames that reached the recorder so far (at `rate`), or None if it does not count them."""
        return None

    def overflow_flags(self) -> Optional[int]:
        """Callbacks flagged paInputOverflow that the recorder saw, or None if it ignores the flags."""
        return None

    def channel0(self) -> np.ndarray:
        """Channel 0 of what the recorder holds (its buffer, or all its consumer took)."""
        raise NotImplementedError

    def has_signal(self) -> bool:
        """Whether the newest frame received is non-zero (an injected signal has arrived)."""
        raise NotImplementedError

    def read(self, frames: int, copy: bool = False) -> Any:
        """The recorder's own read of the latest `frames`."""
        raise NotImplementedError(f"{self.name} has no read of the latest frames")

    def installed_callback(self, block_frames: int) -> InstalledCallback:
        """The callback the recorder installed, ready to be called with `block_frames`-frame blocks."""
        raise NotImplementedError

    def holds_newest(self, block: np.ndarray) -> bool:
        """Whether the newest block the recorder holds is `block` (checks a callback timing really recorded)."""
        raise NotImplementedError

    def conversion(self) -> Optional[dict]:
        """For a recorder that resamples: the device's rate and what reached it at that rate
        (``device_rate``, ``device_frames``; a native converter's own losses too), or None."""
        return None

    def notes(self) -> dict:
        return {}
