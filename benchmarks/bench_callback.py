"""Case 1: the cost of one capture callback against the size of the recorder's buffer.

512-frame float32 blocks at 16 kHz into buffers of 1 s, 10 s and 100 s of
audio, at 1, 8 and 32 channels, and stereo (the target's case). Each recorder
is built as a user builds it (on a JACK device, never started) and its
installed callback is called the way PortAudio calls it, by
``callback_timer.cpp`` (loaded with ctypes):

* audioring: ``audioring_capture_callback`` with the recorder's ``Capture*``;
  also, as a cross-check, a free-running ``VirtualInput`` (a native thread
  calling the same entry point): wall time / blocks, signal generation included.
* rtmixer: its C ``callback`` with the ``Recorder``'s state, recording into a
  ``RingBuffer`` of the buffer's size (rounded up to a power of two); the ring
  is drained between batches (outside the timing), as a consumer would.
* tflite-support's ``AudioRecord`` and the sounddevice + queue recipe: the cffi
  trampoline sounddevice built around their Python callbacks
  (``InputStream._callback``); it takes the GIL and wraps the block as
  sounddevice does on PortAudio's thread. The queue holds at most the buffer's
  worth of blocks (drained between batches): the recipe has no buffer of its
  own, so its cost cannot depend on one.

Per-call time = batch time / calls per batch; median and 90th percentile over
batches. Slow calls are capped by time, not count.
"""

from __future__ import annotations

import ctypes
import gc
import queue
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from _report import fmt_ns, summarize

RATE = 16000
BLOCK = 512
CHANNELS = (1, 2, 8, 32)
BUFFER_SECONDS = (1, 10, 100)
ORDER = ("audioring", "rtmixer", "sd_queue", "tflite")

#: (seconds per configuration and recorder, least batches, least ns per batch, seconds of VirtualInput run)
BUDGET = {"full": (1.5, 5, 200_000, 0.4), "quick": (0.2, 2, 100_000, 0.08)}

#: The issue's target for audioring: native callback median under 1 µs (512-frame stereo float32 block).
TARGET_NS = 1000.0


class CallbackTimer:
    """ctypes front of benchmarks/callback_timer.cpp."""

    def __init__(self, library: Path) -> None:
        self.lib = ctypes.CDLL(str(library))  # CDLL: the GIL is released during calls
        self.lib.ar_time_callback.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_double,
            ctypes.POINTER(ctypes.c_double), ctypes.c_longlong, ctypes.c_longlong, ctypes.POINTER(ctypes.c_longlong),
        ]
        self.lib.ar_time_callback.restype = ctypes.c_int
        self.lib.ar_memcpy_ns.argtypes = [
            ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int, ctypes.POINTER(ctypes.c_longlong),
        ]
        self.lib.ar_memcpy_ns.restype = ctypes.c_int
        self.clock = ctypes.c_double(1.0)

    def batch(self, callback: int, user_data: Optional[int], block: np.ndarray, calls: int) -> int:
        """Nanoseconds of `calls` calls of `callback` with `block` as input."""
        out = (ctypes.c_longlong * 1)()
        result = self.lib.ar_time_callback(
            callback, user_data, block.ctypes.data, len(block), float(RATE), ctypes.byref(self.clock), calls, 1, out
        )
        if result != 0:
            raise RuntimeError(f"callback returned {result} (not paContinue)")
        return int(out[0])

    def memcpy_ns(self, block_bytes: int, ring_bytes: int, total_bytes: int, reps: int) -> list:
        out = (ctypes.c_longlong * reps)()
        if self.lib.ar_memcpy_ns(block_bytes, ring_bytes, total_bytes, reps, out) != 0:
            raise ValueError("bad memcpy sizes")
        return list(out)


def time_callback(
    timer: CallbackTimer,
    callback: int,
    user_data: Optional[int],
    block: np.ndarray,
    budget: tuple,
    max_calls: int = 1 << 16,
    between: Optional[Callable[[], None]] = None,
) -> dict:
    """Per-call ns of a callback: batches grow until one lasts min_batch_ns, then repeat for the budget."""
    seconds, least, min_batch_ns = budget[:3]
    calls = 1
    if between:
        between()
    elapsed = timer.batch(callback, user_data, block, calls)  # warm-up
    while elapsed < min_batch_ns and calls < max_calls:
        calls = min(max_calls, calls * (2 if elapsed * 4 > min_batch_ns else 8))
        if between:
            between()
        elapsed = timer.batch(callback, user_data, block, calls)
    per_call = []
    deadline = time.perf_counter() + seconds
    while len(per_call) < least or time.perf_counter() < deadline:
        if between:
            between()
        per_call.append(timer.batch(callback, user_data, block, calls) / calls)
    return {**summarize(per_call), "calls_per_batch": calls}


def _address(ffi: Any, cdata: Any) -> int:
    return int(ffi.cast("uintptr_t", cdata))


def _audioring(sd: Any, device: int, channels: int, frames: int, block: np.ndarray, timer, budget) -> dict:
    import audioring

    rec = audioring.AudioRecord(channels, RATE, frames, device=device, blocksize=BLOCK)
    try:
        result = time_callback(timer, audioring._core.capture_callback_address(), rec._capture.address, block, budget)
        result["verified"] = bool(np.array_equal(rec.read(BLOCK), block))
        result["ring_frames"] = rec._ring.capacity
        result["ring_bytes"] = rec._ring.capacity * channels * 4
    finally:
        rec.close()
    return result


def _audioring_virtual(channels: int, frames: int, budget: tuple) -> dict:
    """Free-running VirtualInput into an AudioRecord: wall time per block (generation included)."""
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
    blocks = max(probe, int(budget[3] / max(took, 1e-6) * probe))
    took = run(blocks)
    return {"median_ns": took / blocks * 1e9, "blocks": blocks, "seconds": took}


def _rtmixer(sd: Any, device: int, channels: int, frames: int, block: np.ndarray, timer, budget) -> dict:
    import rtmixer

    recorder = rtmixer.Recorder(device=device, channels=channels, samplerate=RATE, blocksize=BLOCK)
    ring_frames = 1 << max(0, int(frames - 1).bit_length())
    ring = rtmixer.RingBuffer(channels * 4, ring_frames)
    try:
        action = recorder.record_ringbuffer(ring)

        def drain() -> None:
            ring.advance_read_index(ring.read_available)

        result = time_callback(
            timer,
            _address(rtmixer._ffi, recorder._callback),
            _address(rtmixer._ffi, recorder._state),
            block,
            budget,
            max_calls=max(1, (ring_frames - 1) // BLOCK),
            between=drain,
        )
        still = action in recorder.actions
        size, first, _ = ring.get_read_buffers(ring.read_available)
        last = np.frombuffer(first, dtype="float32").reshape(-1, channels)[-BLOCK:] if size >= BLOCK else None
        result["verified"] = bool(still and (last is None or np.array_equal(last, block)))
        result["ring_frames"] = ring_frames
    finally:
        recorder.close()
    return result


def _sd_queue(sd: Any, device: int, channels: int, frames: int, block: np.ndarray, timer, budget) -> dict:
    q: queue.Queue = queue.Queue()

    def callback(indata, frames_, time_, status):  # the recipe's callback
        if status:
            print(status, file=sys.stderr)
        q.put(indata.copy())

    stream = sd.InputStream(device=device, channels=channels, samplerate=RATE, blocksize=BLOCK, callback=callback)
    held = max(1, frames // BLOCK)
    last: list = []

    def drain() -> None:
        if q.qsize() > held:
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                last[:] = [item]

    try:
        result = time_callback(timer, _address(sd._ffi, stream._callback), None, block, budget, between=drain)
        newest = q.queue[-1] if q.qsize() else (last[0] if last else None)
        result["verified"] = newest is not None and bool(np.array_equal(newest, block))
        result["blocks_held_at_most"] = held
    finally:
        stream.close()
    return result


def _tflite(sd: Any, device: int, channels: int, frames: int, block: np.ndarray, timer, budget) -> dict:
    from tflite_support.task.audio import AudioRecord

    sd.default.device = (device, sd.default.device[1])  # the reference opens the default input device
    rec = AudioRecord(channels, RATE, frames)
    try:
        rec._buffer.fill(0)  # as start_recording() does: the buffer's pages are touched before the first block
        result = time_callback(timer, _address(sd._ffi, rec._stream._callback), None, block, budget)
        result["verified"] = bool(np.array_equal(rec.read(BLOCK), block))
        result["buffer_bytes"] = rec._buffer.nbytes
    finally:
        rec._stream.close()
        del rec
        gc.collect()
    return result


_MEASURE = {"audioring": _audioring, "rtmixer": _rtmixer, "sd_queue": _sd_queue, "tflite": _tflite}


def run(mode: str, device: int, timer: CallbackTimer, log=print) -> dict:
    """Case 1 on the JACK device `device` (a server at 16 kHz with >= 32 channels)."""
    import sounddevice as sd

    budget = BUDGET[mode]
    rng = np.random.default_rng(1)
    results = []
    for channels in CHANNELS:
        block = (0.1 * rng.standard_normal((BLOCK, channels))).astype(np.float32)
        for seconds in BUFFER_SECONDS:
            frames = seconds * RATE
            for name in ORDER:
                measured = _MEASURE[name](sd, device, channels, frames, block, timer, budget)
                results.append({"recorder": name, "channels": channels, "buffer_s": seconds, "buffer_frames": frames,
                                **measured})
                log(f"  case 1: {name:9} {channels:2} ch, {seconds:3} s buffer: median {fmt_ns(measured['median_ns'])}"
                    f" ({measured['samples']} batches x {measured['calls_per_batch']})")
            virtual = _audioring_virtual(channels, frames, budget)
            results.append({"recorder": "audioring_virtual", "channels": channels, "buffer_s": seconds,
                            "buffer_frames": frames, **virtual})
            log(f"  case 1: VirtualInput {channels:2} ch, {seconds:3} s buffer: "
                f"{fmt_ns(virtual['median_ns'])} per block")
    return {
        "rate": RATE,
        "block_frames": BLOCK,
        "dtype_in": "float32",
        "budget": {"seconds_per_config": budget[0], "least_batches": budget[1], "min_batch_ns": budget[2]},
        "results": results,
        "realtime_budget_ns": BLOCK / RATE * 1e9,
        "target": _target(results),
    }


def _target(results: list) -> dict:
    """The issue's target: native callback median < 1 µs for a 512-frame stereo float32 block, every buffer size."""
    stereo = [r for r in results if r["recorder"] == "audioring" and r["channels"] == 2]
    worst = max((r["median_ns"] for r in stereo), default=None)
    return {
        "description": "audioring native callback median < 1 µs for a 512-frame stereo float32 block at every "
        "buffer size",
        "limit_ns": TARGET_NS,
        "worst_median_ns": worst,
        "met": worst is not None and worst < TARGET_NS,
    }


def markdown(result: dict) -> list:
    rows = {(r["recorder"], r["channels"], r["buffer_s"]): r for r in result["results"]}
    lines = [
        f"## 1. Callback cost against buffer size ({result['block_frames']}-frame float32 blocks, "
        f"{result['rate'] // 1000} kHz)",
        "",
        "Median per block (90th percentile in parentheses), each recorder's installed callback called as PortAudio "
        "calls it. Real-time budget per block: "
        f"{fmt_ns(result['realtime_budget_ns'])}. The VirtualInput column is wall time per block of a free-running "
        "native thread (signal generation included).",
        "",
        "| ch | buffer | audioring (native callback) | audioring VirtualInput | rtmixer (C callback) | "
        "sounddevice + queue | tflite-support reference |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(key: tuple) -> str:
        r = rows.get(key)
        if r is None:
            return "n/a"
        text = fmt_ns(r["median_ns"])
        if "p90_ns" in r:
            text += f" ({fmt_ns(r['p90_ns'])})"
        if r.get("verified") is False:
            text += " ✗"
        return text

    for channels in CHANNELS:
        for seconds in BUFFER_SECONDS:
            frames = seconds * RATE
            lines.append(
                f"| {channels} | {seconds} s ({frames:,} frames) | {cell(('audioring', channels, seconds))} | "
                f"{cell(('audioring_virtual', channels, seconds))} | {cell(('rtmixer', channels, seconds))} | "
                f"{cell(('sd_queue', channels, seconds))} | {cell(('tflite', channels, seconds))} |"
            )
    lines += [
        "",
        "rtmixer's ring is the buffer rounded up to a power of two frames. The queue recipe has no buffer: its queue "
        "held at most the buffer's worth of blocks. ✗ = the recorder's content did not check out after timing.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [("audioring", "audioring (native callback)"),
             ("audioring_virtual", "audioring VirtualInput (+ generation)"),
             ("rtmixer", "rtmixer (C callback)"), ("sd_queue", "sounddevice + queue"),
             ("tflite", "tflite-support reference")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 8), sharex=True, sharey=True)
    for ax, channels in zip(axes.flat, CHANNELS):
        for name, label in names:
            points = sorted((r["buffer_s"], r["median_ns"]) for r in result["results"]
                            if r["recorder"] == name and r["channels"] == channels)
            if points:
                ax.plot([p[0] for p in points], [p[1] / 1e3 for p in points], marker="o", label=label,
                        linestyle="--" if name == "audioring_virtual" else "-")
        budget_us = result["realtime_budget_ns"] / 1e3
        ax.axhline(budget_us, color="grey", linestyle=":", linewidth=1)
        ax.text(1, budget_us * 1.4, "real-time budget per block (32 ms)", fontsize=7, color="grey")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{channels} channel{'s' if channels > 1 else ''}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("recorder buffer (s of 16 kHz audio)")
        ax.set_xticks(list(BUFFER_SECONDS), [f"{s} s" for s in BUFFER_SECONDS])
    for ax in axes[:, 0]:
        ax.set_ylabel("time per 512-frame block (µs, median)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.035))
    fig.suptitle("Case 1: capture callback cost against buffer size (log-log)", fontsize=11)
    fig.text(0.5, 0.005, stamp, ha="center", va="bottom", fontsize=6, color="dimgrey")
    fig.tight_layout(rect=(0, 0.1, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
