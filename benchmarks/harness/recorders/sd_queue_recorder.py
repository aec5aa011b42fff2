"""sounddevice's usual recipe (its documentation's ``rec_unlimited.py``): an ``InputStream`` whose Python
callback puts ``indata.copy()`` on a ``queue.Queue``, and a consumer thread taking the blocks off."""

from __future__ import annotations

import queue
import threading
from typing import Optional

import numpy as np

from harness.recorders.base import InstalledCallback, Recorder, cffi_address


class SdQueueRecorder(Recorder):
    name = "sd_queue"
    label = "sounddevice `InputStream` + `queue.Queue`"

    def __init__(self, device: int, channels: int, rate: int, buffer_frames: int, *,
                 blocksize: Optional[int] = None, keep: bool = False) -> None:
        super().__init__(device, channels, rate, buffer_frames)
        import sounddevice as sd

        self.queue: queue.Queue = queue.Queue()
        self.flagged = 0
        self.overflowed = 0
        self.keep = keep
        self.kept: list = []
        self.consumed = 0
        self.last_value = 0.0
        self.blocksize_seen = 0
        self.last_taken: Optional[np.ndarray] = None
        q = self.queue

        def callback(indata, frames, time, status):  # the recipe's callback
            if status:
                self.flagged += 1  # the recipe prints status to stderr; count it instead
                if status.input_overflow:
                    self.overflowed += 1
            q.put(indata.copy())

        options = {"blocksize": blocksize} if blocksize else {}
        self.stream = sd.InputStream(device=device, channels=channels, samplerate=rate, callback=callback, **options)
        self.consumer: Optional[threading.Thread] = None

    def _take(self, block: np.ndarray) -> None:
        self.consumed += len(block)
        self.blocksize_seen = len(block)
        self.last_value = float(block[-1, 0])
        self.last_taken = block
        if self.keep:
            self.kept.append(block[:, 0].copy())

    def _consume(self) -> None:
        while True:
            block = self.queue.get()
            if block is None:
                return
            self._take(block)

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
        # Blocks still in the queue have been received too (all blocks have the JACK period's size).
        return self.consumed + self.queue.qsize() * self.blocksize_seen

    def overflow_flags(self) -> Optional[int]:
        return self.overflowed

    def channel0(self) -> np.ndarray:
        return np.concatenate(self.kept) if self.kept else np.zeros(0, np.float32)

    def has_signal(self) -> bool:
        return self.last_value != 0

    def installed_callback(self, block_frames: int) -> InstalledCallback:
        import sounddevice as sd

        # The recipe has no buffer of its own: its queue holds at most the buffer's worth of blocks here,
        # drained between batches as the consumer thread would.
        held = max(1, self.buffer_frames // block_frames)

        def drain() -> None:
            if self.queue.qsize() > held:
                while True:
                    try:
                        self._take(self.queue.get_nowait())
                    except queue.Empty:
                        return

        return InstalledCallback(cffi_address(sd._ffi, self.stream._callback), None, before_batch=drain)

    def holds_newest(self, block: np.ndarray) -> bool:
        newest = self.queue.queue[-1] if self.queue.qsize() else self.last_taken
        return newest is not None and bool(np.array_equal(newest, block))

    def notes(self) -> dict:
        return {"callbacks_with_status": self.flagged, "blocksize": self.stream.blocksize}
