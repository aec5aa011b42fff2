"""python-rtmixer: ``rtmixer.Recorder``'s C callback records into an ``rtmixer.RingBuffer`` (a FIFO);
a consumer thread drains it the way rtmixer's examples do."""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

import numpy as np

from harness.recorders.base import InstalledCallback, Recorder, cffi_address, next_power_of_two

#: How often the consumer drains the ring (rtmixer's examples poll every 30 ms).
CONSUMER_INTERVAL_S = 0.02


class RtmixerRecorder(Recorder):
    name = "rtmixer"
    label = "rtmixer `Recorder` + `RingBuffer`"

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        super().__init__(device, channels, rate, buffer_frames)
        import rtmixer

        self.rtmixer = rtmixer
        options = {"blocksize": blocksize} if blocksize else {}
        self.recorder = rtmixer.Recorder(device=device, channels=channels, samplerate=rate, **options)
        self.ring_frames = next_power_of_two(buffer_frames)  # rtmixer's ring sizes are powers of two
        self.ring = rtmixer.RingBuffer(channels * self.recorder.samplesize, self.ring_frames)
        self.keep = keep
        self.kept: list = []
        self.consumed = 0
        self.last_value = 0.0
        self.newest: Optional[np.ndarray] = None
        self.action: Any = None
        self.running = False
        self.still_recording_at_stop: Optional[bool] = None
        self.consumer: Optional[threading.Thread] = None

    def _drain(self) -> None:
        available = self.ring.read_available
        if not available:
            return
        size, first, second = self.ring.get_read_buffers(available)
        for region in (first, second):
            if len(region):
                block = np.frombuffer(region, dtype="float32").reshape(-1, self.channels)
                self.last_value = float(block[-1, 0])
                self.newest = block.copy()
                if self.keep:
                    self.kept.append(block[:, 0].copy())
        self.ring.advance_read_index(size)
        self.consumed += size

    def _consume(self) -> None:
        while self.running:
            self._drain()
            time.sleep(CONSUMER_INTERVAL_S)

    def start(self) -> None:
        self.recorder.start()
        self.action = self.recorder.record_ringbuffer(self.ring)
        self.running = True
        self.consumer = threading.Thread(target=self._consume, daemon=True)
        self.consumer.start()

    def stop(self) -> None:
        self.still_recording_at_stop = self.recording
        self.recorder.stop()
        self.running = False
        if self.consumer is not None:
            self.consumer.join()
            self.consumer = None
        self._drain()

    def close(self) -> None:
        self.recorder.close()

    @property
    def recording(self) -> bool:
        """False once rtmixer removed the action (it does when the ring is full: recording ends for good)."""
        return self.action is not None and self.action in self.recorder.actions

    @property
    def stream_time(self) -> float:
        return self.recorder.time

    def frames_received(self) -> Optional[int]:
        return int(self.action.done_frames) if self.action is not None else 0

    def overflow_flags(self) -> Optional[int]:
        return int(self.action.stats.input_overflows) if self.action is not None else 0

    def channel0(self) -> np.ndarray:
        return np.concatenate(self.kept) if self.kept else np.zeros(0, np.float32)

    def has_signal(self) -> bool:
        return self.last_value != 0

    def installed_callback(self, block_frames: int) -> InstalledCallback:
        if self.action is None:
            self.action = self.recorder.record_ringbuffer(self.ring)

        def drain() -> None:
            # Keep the newest block (to check it afterwards), drop the rest, as a consumer would.
            available = self.ring.read_available
            if available >= block_frames:
                self.ring.advance_read_index(available - block_frames)
                self._drain()

        return InstalledCallback(cffi_address(self.rtmixer._ffi, self.recorder._callback),
                                 cffi_address(self.rtmixer._ffi, self.recorder._state), before_batch=drain,
                                 max_calls=max(1, (self.ring_frames - block_frames) // block_frames))

    def holds_newest(self, block: np.ndarray) -> bool:
        self._drain()
        return self.recording and self.newest is not None and bool(np.array_equal(self.newest[-len(block):], block))

    def notes(self) -> dict:
        return {"ring_frames": self.ring_frames, "still_recording_at_stop": self.still_recording_at_stop,
                "blocksize": self.recorder.blocksize}
