#!/usr/bin/env python3
"""The recorders side by side: audioring and its anchors, as installed from PyPI.

Every anchor is its own code, used through its public API (plus, where a case
needs it, reading an attribute the anchor set itself, such as the stream a
reference ``AudioRecord`` opened). Nothing here re-implements an anchor:

* ``audioring``: ``audioring.AudioRecord`` with its native PortAudio callback.
* ``tflite``: ``tflite_support.task.audio.AudioRecord`` (tflite-support 0.4.4),
  the class audioring replaces. It always opens sounddevice's default input
  device, so the device is chosen through ``sounddevice.default.device``.
* ``sd_queue``: the usual recipe of sounddevice's documentation
  (``rec_unlimited.py``): an ``InputStream`` whose Python callback puts
  ``indata.copy()`` on a ``queue.Queue``, a consumer thread taking blocks off it.
* ``rtmixer``: ``rtmixer.Recorder`` (python-rtmixer) recording into an
  ``rtmixer.RingBuffer`` with ``record_ringbuffer``; a consumer thread drains
  the ring the way rtmixer's examples do (``get_read_buffers`` +
  ``advance_read_index`` every 20 ms).

Run as a script, this module is the worker the JACK cases start in a fresh
process per recorder: ``bench_anchors.py '<json spec>'`` runs one scenario
(``bench_stall``, ``bench_capacity`` or ``bench_e2e``) and prints one JSON
line. A fresh process per run gives each recorder its own PortAudio, its own
process CPU clock, and no memory left over from another recorder.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

RECORDERS = ("audioring", "tflite", "sd_queue", "rtmixer")

LABELS = {
    "audioring": "audioring `AudioRecord`",
    "tflite": "tflite-support `AudioRecord` (reference)",
    "sd_queue": "sounddevice `InputStream` + `queue.Queue`",
    "rtmixer": "rtmixer `Recorder` + `RingBuffer`",
}

#: How often the consumers of sd_queue and rtmixer look for data (rtmixer's examples poll every 30 ms).
CONSUMER_INTERVAL_S = 0.02


def jack_device(sd: Any) -> int:
    """Index of PortAudio's JACK capture device ``system``."""
    hostapis = sd.query_hostapis()
    for device in sd.query_devices():
        if device["name"] == "system" and "JACK" in hostapis[device["hostapi"]]["name"]:
            return int(device["index"])
    raise RuntimeError(
        f"no JACK device 'system' (is jackd running, and JACK_DEFAULT_SERVER set?):\n{sd.query_devices()}")


def jack_server(rate: int, period: int, channels: int, attempts: int = 4):
    """A started ``JackServer`` (tests/audio_servers.py) for this benchmark process.

    Every server of one run takes the same name, so at most one slot of
    JACK's shared server registry (``/dev/shm/jack-shm-registry``, 8 slots
    for the whole machine) is ever held by the run: jackd reclaims a slot of
    the same name whose server died, but never one of another name. A full
    registry (other servers running, or slots leaked by killed servers) is
    retried a few times, then reported.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from audio_servers import AudioServerError, JackServer

    for attempt in range(attempts):
        server = JackServer(rate, period, channels, name=f"audioring-bench-{os.getpid()}")
        try:
            return server.start()
        except AudioServerError as error:
            if "Too many servers" not in str(error) or attempt == attempts - 1:
                raise AudioServerError(
                    f"{error}\n(JACK's server registry /dev/shm/jack-shm-registry holds 8 servers for the whole "
                    "machine; slots of killed jackd processes stay taken until a server of the same name starts)"
                ) from error
            time.sleep(3)
    raise AssertionError("unreachable")


def next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class Recorder:
    """What the JACK cases need from a recorder. Subclasses wrap one recorder each.

    ``keep=True`` makes the consumers of queue and ring keep channel 0 of all
    they receive (for the ramp check of the GIL-stall case).
    """

    name = ""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def stream_time(self) -> float:
        """The stream's clock (PortAudio's Pa_GetStreamTime; JACK's frame clock)."""
        raise NotImplementedError

    def frames_received(self) -> Optional[int]:
        """Frames that reached the recorder so far, or None if the recorder does not tell."""
        return None

    def overflow_flags(self) -> Optional[int]:
        """Callbacks flagged paInputOverflow the recorder saw, or None if it ignores them."""
        return None

    def channel0(self) -> np.ndarray:
        """Channel 0 of what the recorder holds (all of it, or its latest buffer)."""
        raise NotImplementedError

    def has_signal(self) -> bool:
        """Whether the newest frame received is non-zero (the ramp has arrived)."""
        raise NotImplementedError

    def read(self, frames: int) -> Any:
        """The recorder's read of the latest `frames` (where it has one)."""
        raise NotImplementedError(f"{self.name} has no read of the latest frames")

    def notes(self) -> dict:
        return {}


class AudioringRecorder(Recorder):
    name = "audioring"

    def __init__(self, sd: Any, device: int, channels: int, rate: int, buffer_frames: int, keep: bool = False):
        from audioring import AudioRecord

        self.rec = AudioRecord(channels, rate, buffer_frames, device=device)
        self.buffer_frames = buffer_frames

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

    def read(self, frames: int) -> Any:
        return self.rec.read(frames)

    def notes(self) -> dict:
        return {"driver": self.rec.driver, "latency_s": self.rec.latency}


class TfliteRecorder(Recorder):
    name = "tflite"

    def __init__(self, sd: Any, device: int, channels: int, rate: int, buffer_frames: int, keep: bool = False):
        from tflite_support.task.audio import AudioRecord

        # The reference has no device argument: it opens sounddevice's default input device.
        sd.default.device = (device, sd.default.device[1])
        self.rec = AudioRecord(channels, rate, buffer_frames)
        self.buffer_frames = buffer_frames

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

    def read(self, frames: int) -> Any:
        return self.rec.read(frames)

    def notes(self) -> dict:
        return {
            "overflow_flags": "ignored by the reference's callback (no count)",
            "frames_received": "not counted by the reference",
            "blocksize": self.rec._stream.blocksize,
        }


class SdQueueRecorder(Recorder):
    """sounddevice's recipe: a Python callback puts copies on a queue; a thread takes them off."""

    name = "sd_queue"

    def __init__(self, sd: Any, device: int, channels: int, rate: int, buffer_frames: int, keep: bool = False):
        self.queue: queue.Queue = queue.Queue()
        self.flagged = 0
        self.overflowed = 0
        self.keep = keep
        self.kept: list = []
        self.consumed = 0
        self.last_block_end = 0.0
        self.blocksize = 0
        q = self.queue

        def callback(indata, frames, time, status):  # the recipe's callback
            if status:
                self.flagged += 1  # the recipe prints status to stderr; count it instead
                if status.input_overflow:
                    self.overflowed += 1
            q.put(indata.copy())

        self.stream = sd.InputStream(device=device, channels=channels, samplerate=rate, callback=callback)
        self.consumer: Optional[threading.Thread] = None

    def _consume(self) -> None:
        while True:
            block = self.queue.get()
            if block is None:
                return
            self.consumed += len(block)
            self.blocksize = len(block)
            self.last_block_end = float(block[-1, 0])
            if self.keep:
                self.kept.append(block[:, 0].copy())

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
        return self.consumed + self.queue.qsize() * self.blocksize

    def overflow_flags(self) -> Optional[int]:
        return self.overflowed

    def channel0(self) -> np.ndarray:
        return np.concatenate(self.kept) if self.kept else np.zeros(0, np.float32)

    def has_signal(self) -> bool:
        return self.last_block_end != 0

    def notes(self) -> dict:
        return {"callbacks_with_status": self.flagged, "blocksize": self.stream.blocksize}


class RtmixerRecorder(Recorder):
    """rtmixer's C callback records into a RingBuffer; a thread drains it as rtmixer's examples do."""

    name = "rtmixer"

    def __init__(self, sd: Any, device: int, channels: int, rate: int, buffer_frames: int, keep: bool = False):
        import rtmixer

        self.rtmixer = rtmixer
        self.recorder = rtmixer.Recorder(device=device, channels=channels, samplerate=rate)
        self.ring = rtmixer.RingBuffer(channels * self.recorder.samplesize, next_power_of_two(buffer_frames))
        self.channels = channels
        self.keep = keep
        self.kept: list = []
        self.consumed = 0
        self.last_value = 0.0
        self.action: Any = None
        self.running = False
        self.consumer: Optional[threading.Thread] = None
        self.ring_frames = next_power_of_two(buffer_frames)

    def _drain(self) -> None:
        available = self.ring.read_available
        if not available:
            return
        size, first, second = self.ring.get_read_buffers(available)
        for region in (first, second):
            if len(region):
                block = np.frombuffer(region, dtype="float32").reshape(-1, self.channels)
                self.last_value = float(block[-1, 0])
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

    def notes(self) -> dict:
        return {
            "ring_frames": self.ring_frames,
            "still_recording_at_stop": getattr(self, "still_recording_at_stop", None),
            "blocksize": self.recorder.blocksize,
        }


RECORDER_CLASSES = {
    "audioring": AudioringRecorder,
    "tflite": TfliteRecorder,
    "sd_queue": SdQueueRecorder,
    "rtmixer": RtmixerRecorder,
}


def open_recorder(name: str, channels: int, rate: int, buffer_frames: int, keep: bool = False) -> Recorder:
    """Open recorder `name` on the JACK device (the server named by JACK_DEFAULT_SERVER)."""
    import sounddevice as sd

    device = jack_device(sd)
    return RECORDER_CLASSES[name](sd, device, channels, rate, buffer_frames, keep=keep)


# ---- worker process ---------------------------------------------------------------------


def run_worker(spec: dict, timeout: float, env: Optional[dict] = None) -> dict:
    """Run one scenario in a fresh process; return its JSON result (or an error record)."""
    import subprocess

    command = [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired as error:
        return {"error": f"worker timed out after {timeout:.0f} s", "stderr": str(error.stderr)[-2000:]}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"error": f"worker exited with {result.returncode}", "stderr": result.stderr[-3000:]}
    data = json.loads(lines[-1])
    noise = [line for line in result.stderr.splitlines() if line.strip()]
    if noise:
        data["worker_stderr_lines"] = len(noise)
        data["worker_stderr_tail"] = noise[-5:]
    return data


def _worker_main(argv: list) -> int:
    spec = json.loads(argv[0])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    case = spec["case"]
    if case == "stall":
        import bench_stall as module
    elif case == "capacity":
        import bench_capacity as module
    elif case == "e2e":
        import bench_e2e as module
    else:
        raise SystemExit(f"unknown case {case!r}")
    result = module.worker(spec)
    print(json.dumps(result, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
