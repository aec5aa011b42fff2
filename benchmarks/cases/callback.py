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
from pathlib import Path

import numpy as np

from harness import charts
from harness.context import RunContext
from harness.formatting import fmt_ns
from harness.recorders import installed, open_recorder
from harness.servers import jack_device, jack_server
from harness.timing import Budget, time_one

TITLE = "Capture callback cost against buffer size"
RATE = 16000
BLOCK = 512
#: (channels, buffer seconds) per mode; quick: the corners (and the target's stereo).
CHANNELS = {"full": (1, 2, 8, 32), "quick": (2, 32)}
BUFFER_SECONDS = {"full": (1, 10, 100), "quick": (1, 100)}
ORDER = ("audioring", "rtmixer", "sd_queue", "tflite")
BUDGET = {"full": Budget(0.6, 5, 100_000, 200_000), "quick": Budget(0.1, 2, 100_000, 100_000)}
#: Seconds of free-running VirtualInput per configuration.
VIRTUAL_SECONDS = {"full": 0.3, "quick": 0.05}
#: The target for audioring: native callback median under 1 µs for a 512-frame stereo float32 block.
TARGET_NS = 1000.0


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


def targets(result: dict) -> list:
    stereo = [r for r in result["results"] if r["recorder"] == "audioring" and r["channels"] == 2]
    worst = max((r["median_ns"] for r in stereo), default=None)
    return [{
        "label": f"audioring's native callback: median < {fmt_ns(TARGET_NS)} for a {result['block_frames']}-frame "
                 "stereo float32 block, at every buffer size",
        "met": None if worst is None else worst < TARGET_NS,
        "measured": f"worst median {fmt_ns(worst)} (" + ", ".join(
            f"{r['buffer_s']} s: {fmt_ns(r['median_ns'])}" for r in stereo) + ")",
    }]


_COLUMNS = (("audioring", "audioring (native callback)"), ("audioring_virtual", "audioring VirtualInput"),
            ("rtmixer", "rtmixer (C callback)"), ("sd_queue", "sounddevice + queue"),
            ("tflite", "tflite-support reference"))


def markdown(result: dict) -> list:
    rows = {(r["recorder"], r["channels"], r["buffer_s"]): r for r in result["results"]}
    lines = [
        f"{result['block_frames']}-frame float32 blocks at {result['rate'] // 1000} kHz. Median per block (90th "
        "percentile in parentheses), each recorder's installed callback called as PortAudio calls it. Real-time "
        f"budget per block: {fmt_ns(result['realtime_budget_ns'])}. The VirtualInput column is wall time per block "
        "of a free-running native thread (signal generation included).",
        "",
        "| ch | buffer | " + " | ".join(label for _, label in _COLUMNS) + " |",
        "|---:|---:|" + "---:|" * len(_COLUMNS),
    ]

    def cell(r) -> str:
        if r is None:
            return "n/a"
        text = fmt_ns(r["median_ns"]) + (f" ({fmt_ns(r['p90_ns'])})" if "p90_ns" in r else "")
        return text + (" ✗" if r.get("verified") is False else "")

    channels_seen = sorted({r["channels"] for r in result["results"]})
    buffers_seen = sorted({r["buffer_s"] for r in result["results"]})
    for channels in channels_seen:
        for seconds in buffers_seen:
            lines.append(f"| {channels} | {seconds} s ({seconds * result['rate']:,} frames) | "
                         + " | ".join(cell(rows.get((name, channels, seconds))) for name, _ in _COLUMNS) + " |")
    lines += [
        "",
        "rtmixer's ring is the buffer rounded up to a power of two frames. The queue recipe has no buffer: its queue "
        "held at most the buffer's worth of blocks. ✗ = the recorder did not hold the block afterwards.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    channels_seen = sorted({r["channels"] for r in result["results"]})
    buffers_seen = sorted({r["buffer_s"] for r in result["results"]})
    rows = (len(channels_seen) + 1) // 2
    with charts.figure(path, stamp, rows, 2, figsize=(10, 1 + 3.5 * rows), bottom=0.2 / rows, sharex=True,
                       sharey=True, squeeze=False) as (fig, axes):
        for ax, channels in zip(axes.flat, channels_seen):
            for name, label in _COLUMNS:
                points = sorted((r["buffer_s"], r["median_ns"]) for r in result["results"]
                                if r["recorder"] == name and r["channels"] == channels)
                if points:
                    ax.plot([p[0] for p in points], [p[1] / 1e3 for p in points], marker="o", label=label,
                            linestyle="--" if name == "audioring_virtual" else "-")
            budget_us = result["realtime_budget_ns"] / 1e3
            ax.axhline(budget_us, color="grey", linestyle=":", linewidth=1)
            ax.text(buffers_seen[0], budget_us * 1.4, f"real-time budget per block ({budget_us / 1e3:.0f} ms)",
                    fontsize=7, color="grey")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{channels} channel{'s' if channels > 1 else ''}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        for ax in axes[-1]:
            ax.set_xlabel(f"recorder buffer (s of {result['rate'] // 1000} kHz audio)")
            ax.set_xticks(buffers_seen, [f"{s} s" for s in buffers_seen])
        for ax in axes[:, 0]:
            ax.set_ylabel(f"time per {result['block_frames']}-frame block (µs, median)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.07 / rows))
        fig.suptitle("Capture callback cost against buffer size (log-log)", fontsize=11)

