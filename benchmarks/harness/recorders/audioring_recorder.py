"""audioring's ``AudioRecord``: its native PortAudio callback writes into the lock-free ring (at a rate the device
does not deliver, into a capture ring that a native converter thread resamples into the user ring)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from harness.recorders.base import InstalledCallback, Recorder


class AudioringRecorder(Recorder):
    name = "audioring"
    label = "audioring `AudioRecord`"
    has_read = True

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        super().__init__(device, channels, rate, buffer_frames)
        from audioring import AudioRecord

        options = {"blocksize": blocksize} if blocksize else {}
        self.rec = AudioRecord(channels, rate, buffer_frames, device=device, **options)

    def start(self) -> None:
        self.rec.start_recording()

    def stop(self) -> None:
        self.rec.stop()

    def close(self) -> None:
        self.rec.close()

    @property
    def stream_time(self) -> float:
        return self.rec.time

    def frames_received(self) -> Optional[int]:
        return self.rec.frames_recorded

    def overflow_flags(self) -> Optional[int]:
        return self.rec.overflows

    def channel0(self) -> np.ndarray:
        return self.rec.read(self.buffer_frames, copy=True)[:, 0]

    def has_signal(self) -> bool:
        return bool(self.rec.read(1)[0, 0] != 0)

    def read(self, frames: int, copy: bool = False) -> Any:
        return self.rec.read(frames, copy=copy)

    def installed_callback(self, block_frames: int) -> InstalledCallback:
        from audioring import _core

        return InstalledCallback(_core.capture_callback_address(), self.rec._capture.address)

    def holds_newest(self, block: np.ndarray) -> bool:
        return bool(np.array_equal(self.rec.read(len(block)), block))

    def conversion(self) -> Optional[dict]:
        if not getattr(self.rec, "converting", False):
            return None
        stats = self.rec.stats
        return {"device_rate": self.rec.device_rate, "device_frames": stats.device_frames,
                "device_frames_lost": stats.device_frames_lost, "conversion_overruns": stats.conversion_overruns,
                "conversion_delay": self.rec.conversion_delay, "quality": self.rec.quality}

    def notes(self) -> dict:
        return {"driver": self.rec.driver, "latency_s": self.rec.latency, "ring_frames": self.rec._ring.capacity}
