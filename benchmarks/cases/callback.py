"""Capture callback cost against the size of the recorder's buffer.

512-frame float32 blocks at 16 kHz into buffers of 1 s, 10 s and 100 s of
audio, at 1, 2 (the target's case), 8 and 32 channels. Each recorder is built
as a user builds it, on a JACK device (never started), and the callback it
installed is called the way PortAudio calls it, by ``callback_timer.cpp``
(loaded with ctypes, which releases the GIL as PortAudio's thread holds none):

* audioring: ``audioring_capture_callback`` with the recorder's ``Capture*``;
  plus, as a cross-check, a free-running ``VirtualInput`` (a native thread
  calling the same entry point): wall time per block, signal generation
  included;
* rtmixer: its C ``callback`` with the ``Recorder``'s state, recording into a
  ``RingBuffer`` of the buffer's size rounded up to a power of two, drained
  between batches (untimed) as a consumer would;
* tflite-support's ``AudioRecord`` and the sounddevice + queue recipe: the cffi
  trampoline sounddevice built around their Python callbacks
  (``InputStream._callback``), which takes the GIL and wraps the block as on
  PortAudio's thread. The queue holds at most the buffer's worth of blocks.

Per-call time = batch time / calls per batch; median and 90th percentile over
batches. Slow calls are capped by time, not count.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from harness.context import RunContext
from harness.formatting import fmt_ns
from harness.recorders import installed, open_recorder
from harness.servers import jack_device, jack_server
from harness.timing import Budget, time_one
from reports.callback import TITLE, chart, markdown, targets

__all__ = ["TITLE", "chart", "markdown", "run", "targets"]

RATE = 16000
BLOCK = 512
#: (channels, buffer seconds) per mode; quick: the corners (and the target's stereo).
CHANNELS = {"full": (1, 2, 8, 32), "quick": (2, 32)}
BUFFER_SECONDS = {"full": (1, 10, 100), "quick": (1, 100)}
ORDER = ("audioring", "rtmixer", "sd_queue", "tflite")
BUDGET = {"full": Budget(0.6, 5, 100_000, 200_000), "quick": Budget(0.1, 2, 100_000, 100_000)}
#: Seconds of free-running VirtualInput per configuration.
VIRTUAL_SECONDS = {"full": 0.3, "quick": 0.05}


def _time_installed_callback(
    name: str, device: int, channels: int, frames: int, block: np.ndarray, timer, budget: Budget
) -> dict:
    rec = open_recorder(name, device, channels, RATE, frames, blocksize=BLOCK)
    try:
        callback = rec.installed_callback(BLOCK)
        measured = time_one(lambda calls: timer.batch(callback.address, callback.user_data, block, calls), budget,
                            max_calls=callback.max_calls, before=callback.before_batch)
        measured["verified"] = rec.holds_newest(block)
        measured["notes"] = rec.notes()
    finally:
        rec.close()
        del rec
        gc.collect()  # the reference's buffers are large
    return measured


def _virtual(channels: int, frames: int, seconds: float) -> dict:
    """Free-running VirtualInput into an AudioRecord: wall time per block (signal generation included)."""
    import audioring

    def run(blocks: int) -> float:
        source = audioring.VirtualInput("ramp", realtime=False, frames=blocks * BLOCK)
        rec = audioring.AudioRecord(channels, RATE, frames, device=source, blocksize=BLOCK)
        try:
            started = time.perf_counter()
            rec.start_recording()
            while rec.frames_recorded < blocks * BLOCK:
                time.sleep(0.0002)
            return time.perf_counter() - started
        finally:
            rec.close()

    probe = 2000
    took = run(probe)
    blocks = max(probe, int(seconds / max(took, 1e-6) * probe))
    took = run(blocks)
    return {"median_ns": took / blocks * 1e9, "blocks": blocks, "seconds": took}


def run(ctx: RunContext) -> dict:
    import sounddevice as sd

    from audioring.testing import refresh_portaudio

    budget = BUDGET[ctx.mode]
    timer = ctx.callback_timer(RATE)
    rng = np.random.default_rng(1)
    results = []
    with jack_server(RATE, BLOCK, max(CHANNELS[ctx.mode])):
        refresh_portaudio()  # PortAudio sees devices (and picks the JACK server) only when it initializes
        device = jack_device(sd)
        for channels in CHANNELS[ctx.mode]:
            block = (0.1 * rng.standard_normal((BLOCK, channels))).astype(np.float32)
            for seconds in BUFFER_SECONDS[ctx.mode]:
                frames = seconds * RATE
                for name in installed(ORDER):
                    measured = _time_installed_callback(name, device, channels, frames, block, timer, budget)
                    results.append({"recorder": name, "channels": channels, "buffer_s": seconds, **measured})
                    ctx.log(f"  callback: {name:9} {channels:2} ch, {seconds:3} s buffer: median "
                            f"{fmt_ns(measured['median_ns'])} ({measured['samples']} x {measured['calls_per_batch']})")
                virtual = _virtual(channels, frames, VIRTUAL_SECONDS[ctx.mode])
                results.append({"recorder": "audioring_virtual", "channels": channels, "buffer_s": seconds, **virtual})
    refresh_portaudio()
    return {"rate": RATE, "block_frames": BLOCK, "budget": budget.as_dict(), "results": results,
            "realtime_budget_ns": BLOCK / RATE * 1e9}
