"""Case 2: the cost of reading the latest n frames, n = 10**3 ... 10**7.

Stereo float32 at 16 kHz, every recorder holding 10**7 frames (625 s):

* audioring ``AudioRecord.read(n)`` (a zero-copy, read-only view) and
  ``read(n, copy=True)``, the ring filled by a free-running ``VirtualInput``
  ramp (and checked);
* tflite-support's ``AudioRecord.read(n)`` (a copy of its float64 buffer),
  after ``start_recording()``/``stop()`` on the JACK device, which zero-fills
  (touches) the whole buffer as a user's recorder would;
* rtmixer: its ``RingBuffer`` is a consuming FIFO of the *oldest* frames, not
  a window of the latest; shown for scale are ``np.frombuffer(ring.read(n))``
  (a copy that consumes, the ring refilled between batches outside the
  timing) and ``get_read_buffers(n)`` (zero-copy: up to two cffi buffers over
  the ring's memory, not yet arrays);
* sounddevice + queue: no read at all (blocks come off a queue; keeping the
  latest n frames is the application's job: n/a).

Calls are timed in batches (``time.perf_counter_ns``, gc off); median and
90th percentile over batches, per call.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np

from _report import fmt_ns, summarize, time_batches

RATE = 16000
CHANNELS = 2
SIZES = tuple(10**k for k in range(3, 8))
BUFFER = SIZES[-1]

#: (seconds per size and method, least batches, most batches, least ns per batch)
BUDGET = {"full": (1.5, 7, 5000, 500_000), "quick": (0.15, 3, 300, 200_000)}

#: The issue's target: audioring zero-copy read median under 2 µs for every n up to 10**7.
TARGET_NS = 2000.0

METHODS = (
    ("audioring_view", "audioring `read(n)` (zero-copy view)"),
    ("audioring_copy", "audioring `read(n, copy=True)`"),
    ("tflite_copy", "tflite-support `read(n)` (copy)"),
    ("rtmixer_read", "rtmixer `RingBuffer.read(n)` (copy, consumes oldest)"),
    ("rtmixer_regions", "rtmixer `get_read_buffers(n)` (zero-copy regions of oldest)"),
    ("sd_queue", "sounddevice + queue"),
)


def _timed(call, budget: tuple) -> dict:
    seconds, least, most, min_batch_ns = budget
    per_call, calls = time_batches(call, seconds, least, most, min_batch_ns)
    return {**summarize(per_call), "calls_per_batch": calls}


def _audioring(budget: tuple, log) -> list:
    import audioring

    source = audioring.VirtualInput("ramp", realtime=False, frames=BUFFER + RATE)
    rec = audioring.AudioRecord(CHANNELS, RATE, BUFFER, device=source, blocksize=4096)
    results = []
    try:
        rec.start_recording()
        while rec.frames_recorded < BUFFER + RATE:
            time.sleep(0.01)
        rec.stop()
        newest = rec.read(BUFFER)
        ramp = np.arange(RATE, BUFFER + RATE, dtype=np.float64) % 2**24
        assert np.array_equal(newest[:, 0], ramp), "audioring ring does not hold the ramp"
        del newest
        for copy in (False, True):
            for n in SIZES:
                measured = _timed(lambda n=n, copy=copy: rec.read(n, copy=copy), budget)
                results.append({"method": "audioring_copy" if copy else "audioring_view", "frames": n, **measured})
                log(f"  case 2: audioring read({n:>8}{', copy=True' if copy else ''}): "
                    f"median {fmt_ns(measured['median_ns'])}")
    finally:
        rec.close()
    return results


def _tflite(device: int, budget: tuple, log) -> list:
    import sounddevice as sd
    from tflite_support.task.audio import AudioRecord

    sd.default.device = (device, sd.default.device[1])  # the reference opens the default input device
    rec = AudioRecord(CHANNELS, RATE, BUFFER)
    results = []
    try:
        rec.start_recording()  # zero-fills (touches) the buffer
        rec.stop()
        for n in SIZES:
            measured = _timed(lambda n=n: rec.read(n), budget)
            results.append({"method": "tflite_copy", "frames": n, **measured})
            log(f"  case 2: tflite read({n:>8}): median {fmt_ns(measured['median_ns'])}")
    finally:
        rec._stream.close()
    return results


def _rtmixer(budget: tuple, log) -> list:
    import rtmixer

    size = 1 << int(BUFFER - 1).bit_length()
    ring = rtmixer.RingBuffer(CHANNELS * 4, size)
    chunk = np.zeros((1 << 20, CHANNELS), dtype=np.float32)
    while ring.write_available:
        ring.write(chunk, min(len(chunk), ring.write_available))  # real writes: every page touched
    results = []
    seconds, least, most, min_batch_ns = budget
    for n in SIZES:
        # A consuming read: each batch reads what the ring holds, then the write index is advanced
        # again (no data moved) outside the timing, so the same memory is read every batch.
        calls_cap = max(1, ring.read_available // n)

        def read(n: int = n) -> Any:  # this round's n, bound at definition (B023)
            return np.frombuffer(ring.read(n), dtype="float32").reshape(-1, CHANNELS)

        def batch(calls: int) -> int:
            start = time.perf_counter_ns()
            for _ in range(calls):
                read()
            elapsed = time.perf_counter_ns() - start
            ring.advance_write_index(ring.write_available)  # refill, untimed
            return elapsed

        calls = 1
        while batch(calls) < min_batch_ns and calls < calls_cap:
            calls = min(calls_cap, calls * 2)
        per_call = []
        deadline = time.perf_counter() + seconds
        while len(per_call) < most and (len(per_call) < least or time.perf_counter() < deadline):
            per_call.append(batch(calls) / calls)
        results.append({"method": "rtmixer_read", "frames": n, **summarize(per_call), "calls_per_batch": calls})
        log(f"  case 2: rtmixer read({n:>8}): median {fmt_ns(results[-1]['median_ns'])}")
        measured = _timed(lambda n=n: ring.get_read_buffers(n), budget)
        results.append({"method": "rtmixer_regions", "frames": n, **measured})
    return results


def run(mode: str, device: int, log=print) -> dict:
    budget = BUDGET[mode]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        results = _audioring(budget, log)
        results += _tflite(device, budget, log)
        gc.collect()  # the reference's 160 MB buffer
        results += _rtmixer(budget, log)
    finally:
        if gc_was_enabled:
            gc.enable()
    view = [r["median_ns"] for r in results if r["method"] == "audioring_view"]
    return {
        "rate": RATE,
        "channels": CHANNELS,
        "buffer_frames": BUFFER,
        "budget": {"seconds": budget[0], "least": budget[1], "most": budget[2], "min_batch_ns": budget[3]},
        "results": results,
        "target": {
            "description": "audioring read(n) zero-copy median < 2 µs for every n up to 10**7",
            "limit_ns": TARGET_NS,
            "worst_median_ns": max(view),
            "met": max(view) < TARGET_NS,
            "ratio_largest_to_smallest": view[-1] / view[0],
        },
    }


def markdown(result: dict) -> list:
    rows = {(r["method"], r["frames"]): r for r in result["results"]}
    lines = [
        f"## 2. Reading the latest n frames ({result['channels']} ch, buffers of {result['buffer_frames']:,} frames)",
        "",
        "Median per call (90th percentile in parentheses); `time.perf_counter_ns` over batches of calls, gc off.",
        "",
        "| n frames | " + " | ".join(label for _, label in METHODS) + " |",
        "|---:|" + "---:|" * len(METHODS),
    ]
    for n in SIZES:
        cells = []
        for method, _ in METHODS:
            r = rows.get((method, n))
            if method == "sd_queue":
                cells.append("n/a (no read)")
            elif r is None:
                cells.append("n/a")
            else:
                cells.append(f"{fmt_ns(r['median_ns'])} ({fmt_ns(r['p90_ns'])})")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "audioring returns float32 (the device's format); the reference returns float64 (its buffer's), so it copies "
        "twice the bytes. rtmixer's reads return the oldest frames and consume them; the sounddevice + queue recipe "
        "hands out blocks and has no read of the latest frames.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for method, label in METHODS:
        points = sorted((r["frames"], r["median_ns"]) for r in result["results"] if r["method"] == method)
        if points:
            ax.plot([p[0] for p in points], [p[1] / 1e3 for p in points], marker="o", label=label.replace("`", ""),
                    linestyle="--" if method.startswith("rtmixer") else "-")
    ax.axhline(TARGET_NS / 1e3, color="grey", linestyle=":", linewidth=1)
    ax.text(SIZES[-1], TARGET_NS / 1e3 * 1.15, "target for the zero-copy read: 2 µs", fontsize=7, color="grey",
            ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"n (frames of {result['channels']} channels)")
    ax.set_ylabel("time per read (µs, median)")
    ax.set_title("Case 2: reading the latest n frames (log-log)", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.text(0.5, 0.005, stamp, ha="center", va="bottom", fontsize=6, color="dimgrey")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
