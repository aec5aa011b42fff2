"""The usual recipe for a rate the device does not deliver: a sounddevice ``InputStream`` at the device's rate
whose Python callback feeds python-soxr's ``ResampleStream`` (quality "HQ") and puts what comes out on a
``queue.Queue``; a consumer thread takes the converted blocks off and keeps the latest ``buffer_frames``."""

from __future__ import annotations

import collections
import queue
import threading
from typing import Optional

import numpy as np

from harness.recorders.base import Recorder, device_rate


class SdSoxrRecorder(Recorder):
    name = "sd_soxr"
    label = "sounddevice `InputStream` + python-soxr `ResampleStream` in the callback"

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        super().__init__(device, channels, rate, buffer_frames)
        import sounddevice as sd
        import soxr

        self.device_rate = device_rate(sd, device)
        resampler = soxr.ResampleStream(self.device_rate, rate, channels, dtype="float32", quality="HQ")
        self.queue: queue.Queue = queue.Queue()
        self.produced = 0  # frames out of the resampler, at `rate`
        self.device_frames = 0  # frames into it, at the device's rate
        self.flagged = 0
        self.overflowed = 0
        self.latest: collections.deque = collections.deque()
        self.held = 0
        self.last_value = 0.0
        q = self.queue

        def callback(indata, frames, time, status):  # the recipe's callback
            if status:
                self.flagged += 1
                if status.input_overflow:
                    self.overflowed += 1
            converted = resampler.resample_chunk(indata)
            self.device_frames += frames
            self.produced += len(converted)
            q.put(converted)

        options = {"blocksize": blocksize} if blocksize else {}
        self.stream = sd.InputStream(device=device, channels=channels, samplerate=self.device_rate,
                                     dtype="float32", callback=callback, **options)
        self.consumer: Optional[threading.Thread] = None

    def _consume(self) -> None:
        while True:
            block = self.queue.get()
            if block is None:
                return
            if len(block):
                self.last_value = float(block[-1, 0])
                self.latest.append(block)
                self.held += len(block)
                while self.held - len(self.latest[0]) >= self.buffer_frames:
                    self.held -= len(self.latest.popleft())

    def start(self) -> None:
        self.consumer = threading.Thread(target=self._consume, daemon=True)
        self.consumer.start()
        self.stream.start()

    def stop(self) -> None:
        self.stream.stop()
        if self.consumer is not None:
            self.queue.put(None)
            self.consumer.join()
            self.consumer = None

    def close(self) -> None:
        self.stream.close()

    @property
    def stream_time(self) -> float:
        return self.stream.time

    def frames_received(self) -> Optional[int]:
        return self.produced

    def overflow_flags(self) -> Optional[int]:
        return self.overflowed

    def channel0(self) -> np.ndarray:
        return np.concatenate([b[:, 0] for b in self.latest]) if self.latest else np.zeros(0, np.float32)

    def has_signal(self) -> bool:
        return self.last_value != 0

    def conversion(self) -> Optional[dict]:
        return {"device_rate": self.device_rate, "device_frames": self.device_frames}

    def notes(self) -> dict:
        return {"callbacks_with_status": self.flagged, "blocksize": self.stream.blocksize}
