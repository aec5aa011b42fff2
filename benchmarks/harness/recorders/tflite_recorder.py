"""tflite-support's ``AudioRecord`` (0.4.4), the class audioring replaces: a sounddevice stream whose
Python callback shifts a float64 numpy buffer and copies each block in."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from harness.recorders.base import InstalledCallback, Recorder, cffi_address


class TfliteRecorder(Recorder):
    name = "tflite"
    label = "tflite-support `AudioRecord` (reference)"
    has_read = True

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        super().__init__(device, channels, rate, buffer_frames)
        import sounddevice as sd
        from tflite_support.task.audio import AudioRecord

        # The reference has neither a device nor a blocksize argument: it opens sounddevice's default input device.
        sd.default.device = (device, sd.default.device[1])
        self.rec = AudioRecord(channels, rate, buffer_frames)

    def start(self) -> None:
        self.rec.start_recording()

    def stop(self) -> None:
        self.rec.stop()

    def close(self) -> None:
        # The reference has no close(): its stream closes when garbage-collected. Close it now.
        self.rec._stream.close()

    @property
    def stream_time(self) -> float:
        return self.rec._stream.time

    def channel0(self) -> np.ndarray:
        return self.rec.read(self.buffer_frames)[:, 0]

    def has_signal(self) -> bool:
        return bool(self.rec.read(1)[0, 0] != 0)

    def read(self, frames: int, copy: bool = False) -> Any:
        return self.rec.read(frames)  # always a copy

    def installed_callback(self, block_frames: int) -> InstalledCallback:
        import sounddevice as sd

        self.rec._buffer.fill(0)  # as start_recording() does: the buffer's pages are touched before the first block
        return InstalledCallback(cffi_address(sd._ffi, self.rec._stream._callback), None)

    def holds_newest(self, block: np.ndarray) -> bool:
        return bool(np.array_equal(self.rec.read(len(block)), block))

    def notes(self) -> dict:
        return {
            "overflow_flags": "ignored by the reference's callback (no count)",
            "frames_received": "not counted by the reference",
            "blocksize": self.rec._stream.blocksize,
            "buffer_bytes": self.rec._buffer.nbytes,
        }
