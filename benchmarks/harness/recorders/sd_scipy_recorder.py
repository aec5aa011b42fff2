"""sounddevice's queue recipe at the device's rate (``sd_queue_recorder``), resampled in the consumer thread
with ``scipy.signal.resample_poly`` one block at a time, as each block comes off the queue."""

from __future__ import annotations

import collections
from fractions import Fraction
from typing import Optional

import numpy as np

from harness.recorders.base import device_rate
from harness.recorders.sd_queue_recorder import SdQueueRecorder


class SdScipyRecorder(SdQueueRecorder):
    name = "sd_scipy"
    label = "sounddevice `InputStream` + `queue.Queue`, scipy `resample_poly` per block in the consumer"

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        import sounddevice as sd
        from scipy.signal import resample_poly

        opened_at = device_rate(sd, device)
        super().__init__(device, channels, opened_at, buffer_frames, blocksize=blocksize, keep=keep)
        self.device_rate = opened_at
        self.rate = rate
        ratio = Fraction(rate, opened_at)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.resample_poly = resample_poly
        self.device_frames = 0
        self.device_block = 0
        self.latest: collections.deque = collections.deque()
        self.held = 0

    def _take(self, block: np.ndarray) -> None:
        self.device_frames += len(block)
        self.device_block = len(block)
        converted = self.resample_poly(block, self.up, self.down, axis=0).astype(np.float32, copy=False)
        super()._take(converted)  # counts it (at `rate`) and remembers its last value
        self.latest.append(converted)
        self.held += len(converted)
        while self.held - len(self.latest[0]) >= self.buffer_frames:
            self.held -= len(self.latest.popleft())

    def frames_received(self) -> Optional[int]:
        # Blocks still queued have been received too: count them as what they will become.
        return self.consumed + round(self.queue.qsize() * self.device_block * self.up / self.down)

    def channel0(self) -> np.ndarray:
        return np.concatenate([b[:, 0] for b in self.latest]) if self.latest else np.zeros(0, np.float32)

    def conversion(self) -> Optional[dict]:
        return {"device_rate": self.device_rate, "device_frames": self.device_frames + self.queue.qsize()
                * self.device_block}

    def notes(self) -> dict:
        return {**super().notes(), "up": self.up, "down": self.down}
