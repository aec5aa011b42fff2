"""Reading the latest n frames, next to numpy's own view costs measured in the same run.

A stereo float32 source holding 10**7 frames; n = 1, 10**3, 10**5, 10**7:

* audioring: ``AudioRecord.read(n)`` (zero-copy, read-only view; the ring
  filled by a free-running ``VirtualInput`` ramp, checked) and
  ``Ring.latest(n)`` (the ring alone, filled through ``Ring.write``), and
  ``is_intact(view)`` of each; also ``copy=True``;
* numpy's own costs as reference columns: a basic slice of a 2-D array
  (``a[i:j]``, what any view costs at least) and
  ``np.frombuffer(buf, dtype, count, offset).reshape(n, channels)`` over an
  anonymous ``mmap`` (how a view of foreign memory is made); for copies,
  ``a[i:j].copy()``;
* tflite-support's ``AudioRecord.read(n)`` (a copy of its float64 buffer),
  after ``start_recording()``/``stop()`` on a JACK device, which zero-fills
  (touches) the whole buffer as a user's recorder would;
* rtmixer: its ``RingBuffer`` is a consuming FIFO of the *oldest* frames, not
  a window of the latest; shown for scale are ``np.frombuffer(ring.read(n))``
  (a copy that consumes; the ring is refilled between batches, untimed) and
  ``get_read_buffers(n)`` (zero-copy: up to two cffi buffers, not arrays);
* sounddevice + queue: no read at all (n/a).

Every statement is compiled by ``timeit`` into its loop (no extra call
frame) and timed in batches, gc off; median and 99th percentile are over
batches, per call. The zero-copy reads, the numpy references and
``is_intact`` take turns batch by batch at each n, so the ratio to the basic
slice compares like with like; copies run back to back (the steady state of
repeated reads; turns would let the large copies evict the small ones' data).
"""

from __future__ import annotations

import gc
import mmap
import time
from pathlib import Path

import numpy as np

from harness import charts
from harness.context import RunContext
from harness.formatting import fmt_ns
from harness.servers import jack_device, jack_server
from harness.timing import Budget, statement, time_one, time_together

TITLE = "Reading the latest n frames"
RATE = 16000
CHANNELS = 2
DTYPE = np.dtype("float32")
SIZES = (1, 10**3, 10**5, 10**7)
BUFFER = SIZES[-1]
#: Ring.latest's ring: the largest read plus headroom, as an AudioRecord's ring has.
RING_CAPACITY = BUFFER + 2**20

#: Zero-copy statements (per statement; they take turns) and copies (each alone).
BUDGET_VIEWS = {"full": Budget(0.35, 50, 20_000, 20_000), "quick": Budget(0.04, 20, 2_000, 20_000)}
BUDGET_COPIES = {"full": Budget(0.4, 5, 2_000, 200_000), "quick": Budget(0.04, 3, 300, 100_000)}

#: Targets (the issue's): read(n) and latest(n) medians at most this, and at most this many times numpy's slice.
TARGET_VIEW_NS = 400.0
TARGET_SLICE_RATIO = 4.0
TARGET_INTACT_NS = 200.0

#: (key, label, statement): the zero-copy group.
VIEWS = (
    ("numpy_slice", "numpy `a[i:j]` (reference)", "a[i:j]"),
    ("numpy_frombuffer", "numpy `frombuffer(...).reshape(...)` (reference)",
     "frombuffer(buf, dtype, count, offset).reshape(shape)"),
    ("ring_latest", "`Ring.latest(n)`", "ring_latest(n)"),
    ("record_read", "`AudioRecord.read(n)`", "record_read(n)"),
    ("ring_is_intact", "`Ring.is_intact(view)`", "ring_is_intact(ring_view)"),
    ("record_is_intact", "`AudioRecord.is_intact(view)`", "record_is_intact(record_view)"),
)
#: (key, label): the copies and the anchors' reads.
COPIES = (
    ("numpy_slice_copy", "numpy `a[i:j].copy()` (reference)"),
    ("ring_latest_copy", "`Ring.latest(n, copy=True)`"),
    ("record_read_copy", "`AudioRecord.read(n, copy=True)`"),
    ("tflite_read", "tflite-support `read(n)` (copy)"),
    ("rtmixer_read", "rtmixer `RingBuffer.read(n)` (copy, consumes oldest)"),
    ("rtmixer_regions", "rtmixer `get_read_buffers(n)` (zero-copy regions of oldest)"),
)


def _filled_ring():
    import audioring

    ring = audioring.Ring(channels=CHANNELS, capacity=RING_CAPACITY, dtype=DTYPE)
    block = np.arange(2**20 * CHANNELS, dtype=DTYPE).reshape(-1, CHANNELS)
    while ring.frames_written < ring.capacity + len(block):
        ring.write(block)
    assert np.array_equal(ring.latest(3, copy=True), block[-3:]), "the ring does not hold what was written"
    return ring


def _filled_record():
    import audioring

    source = audioring.VirtualInput("ramp", realtime=False, frames=BUFFER + RATE)
    rec = audioring.AudioRecord(CHANNELS, RATE, BUFFER, device=source, blocksize=4096)
    rec.start_recording()
    while rec.frames_recorded < BUFFER + RATE:
        time.sleep(0.01)
    rec.stop()
    ramp = np.arange(RATE, BUFFER + RATE, dtype=np.float64) % 2**24
    assert np.array_equal(rec.read(BUFFER)[:, 0], ramp), "the AudioRecord does not hold the ramp"
    return rec


def _numpy_sources() -> tuple:
    """A touched 2-D array like the ring, and an anonymous mapping like the ring's memory."""
    array = np.ones((RING_CAPACITY, CHANNELS), dtype=DTYPE)
    memory = mmap.mmap(-1, array.nbytes)
    memory.write(array.tobytes())
    return array, memory


def _audioring_and_numpy(ctx: RunContext) -> list:
    ring, rec = _filled_ring(), _filled_record()
    array, memory = _numpy_sources()
    results = []
    try:
        for n in SIZES:
            start = RING_CAPACITY - n
            space = {
                "a": array, "i": start, "j": RING_CAPACITY, "frombuffer": np.frombuffer, "buf": memory,
                "dtype": DTYPE, "count": n * CHANNELS, "offset": start * CHANNELS * DTYPE.itemsize,
                "shape": (n, CHANNELS), "n": n, "ring_latest": ring.latest, "record_read": rec.read,
                "ring_is_intact": ring.is_intact, "ring_view": ring.latest(n),
                "record_is_intact": rec.is_intact, "record_view": rec.read(n),
            }
            measured = time_together({key: statement(stmt, space) for key, _, stmt in VIEWS},
                                     BUDGET_VIEWS[ctx.mode])
            for key, _, _ in VIEWS:
                results.append({"method": key, "frames": n, **measured[key]})
            ctx.log(f"  read: n = {n:>8,}: " + ", ".join(f"{key} {fmt_ns(measured[key]['median_ns'])}"
                                                      for key, _, _ in VIEWS))
            del space
        for key, stmt, space in (("numpy_slice_copy", "a[i:j].copy()", {"a": array}),
                                 ("ring_latest_copy", "f(n, copy=True)", {"f": ring.latest}),
                                 ("record_read_copy", "f(n, copy=True)", {"f": rec.read})):
            for n in SIZES:
                measured = time_one(statement(stmt, {**space, "n": n, "i": RING_CAPACITY - n, "j": RING_CAPACITY}),
                                    BUDGET_COPIES[ctx.mode])
                results.append({"method": key, "frames": n, **measured})
            ctx.log(f"  read: {key}: " + ", ".join(fmt_ns(r["median_ns"]) for r in results[-len(SIZES):]))
    finally:
        rec.close()
        del ring, array
        gc.collect()
        memory.close()
    return results


def _tflite(ctx: RunContext) -> list:
    import sounddevice as sd

    from audioring.testing import refresh_portaudio
    from harness.recorders import open_recorder

    results = []
    with jack_server(RATE, 512, CHANNELS):
        refresh_portaudio()
        rec = open_recorder("tflite", jack_device(sd), CHANNELS, RATE, BUFFER)
        try:
            rec.start()  # zero-fills (touches) the buffer
            rec.stop()
            for n in SIZES:
                measured = time_one(statement("f(n)", {"f": rec.read, "n": n}), BUDGET_COPIES[ctx.mode])
                results.append({"method": "tflite_read", "frames": n, **measured})
            ctx.log("  read: tflite_read: " + ", ".join(fmt_ns(r["median_ns"]) for r in results))
        finally:
            rec.close()
            del rec
            gc.collect()  # the reference's 160 MB buffer
    refresh_portaudio()
    return results


def _rtmixer(ctx: RunContext) -> list:
    import rtmixer

    size = 1 << int(BUFFER - 1).bit_length()  # rtmixer's ring sizes are powers of two
    ring = rtmixer.RingBuffer(CHANNELS * DTYPE.itemsize, size)
    chunk = np.zeros((1 << 20, CHANNELS), dtype=DTYPE)
    while ring.write_available:
        ring.write(chunk, min(len(chunk), ring.write_available))  # real writes: every page touched

    def refill() -> None:
        ring.advance_write_index(ring.write_available)  # no data moved: the same memory is read every batch

    results = []
    for n in SIZES:
        measured = time_one(statement("frombuffer(read(n), dtype='float32').reshape(-1, channels)",
                                      {"frombuffer": np.frombuffer, "read": ring.read, "n": n, "channels": CHANNELS}),
                            BUDGET_COPIES[ctx.mode], max_calls=max(1, size // n), before=refill)
        results.append({"method": "rtmixer_read", "frames": n, **measured})
        measured = time_one(statement("f(n)", {"f": ring.get_read_buffers, "n": n}), BUDGET_COPIES[ctx.mode])
        results.append({"method": "rtmixer_regions", "frames": n, **measured})
    ctx.log("  read: rtmixer: " + ", ".join(fmt_ns(r["median_ns"]) for r in results))
    return results


def run(ctx: RunContext) -> dict:
    from harness.recorders import installed

    results = _audioring_and_numpy(ctx)
    results += _tflite(ctx) if installed(["tflite"]) else []
    results += _rtmixer(ctx) if installed(["rtmixer"]) else []
    return {"rate": RATE, "channels": CHANNELS, "dtype": str(DTYPE), "buffer_frames": BUFFER,
            "ring_capacity": RING_CAPACITY, "sizes": list(SIZES),
            "budget": {"views": BUDGET_VIEWS[ctx.mode].as_dict(), "copies": BUDGET_COPIES[ctx.mode].as_dict()},
            "results": results}


def _rows(result: dict) -> dict:
    return {(r["method"], r["frames"]): r for r in result["results"]}


def _ratio_to_slice(rows: dict, method: str, n: int):
    r, base = rows.get((method, n)), rows.get(("numpy_slice", n))
    return r["median_ns"] / base["median_ns"] if r and base else None


def targets(result: dict) -> list:
    rows = _rows(result)
    sizes = result["sizes"]
    found = []
    for method, name in (("record_read", "`AudioRecord.read(n)`"), ("ring_latest", "`Ring.latest(n)`")):
        medians = [rows[(method, n)]["median_ns"] for n in sizes if (method, n) in rows]
        ratios = [_ratio_to_slice(rows, method, n) for n in sizes]
        measured = ", ".join(f"n = {n:,}: {fmt_ns(rows[(method, n)]['median_ns'])}" for n in sizes
                             if (method, n) in rows)
        found.append({"label": f"{name} median ≤ {fmt_ns(TARGET_VIEW_NS)} at every n",
                      "met": (max(medians) <= TARGET_VIEW_NS) if len(medians) == len(sizes) else None,
                      "measured": measured})
        found.append({"label": f"{name} median ≤ {TARGET_SLICE_RATIO:g}× numpy's basic slice `a[i:j]` at every n",
                      "met": (max(ratios) <= TARGET_SLICE_RATIO) if None not in ratios else None,
                      "measured": ", ".join("?" if x is None else f"{x:.2f}×" for x in ratios)})
    for method, name in (("ring_is_intact", "`Ring.is_intact(view)`"),
                         ("record_is_intact", "`AudioRecord.is_intact(view)`")):
        medians = [rows[(method, n)]["median_ns"] for n in sizes if (method, n) in rows]
        found.append({"label": f"{name} median ≤ {fmt_ns(TARGET_INTACT_NS)}",
                      "met": (max(medians) <= TARGET_INTACT_NS) if medians else None,
                      "measured": f"worst median over the views' sizes {fmt_ns(max(medians, default=None))}"})
    return found


def markdown(result: dict) -> list:
    rows = _rows(result)
    sizes = result["sizes"]

    def cell(method: str, n: int, ratio: bool) -> str:
        r = rows.get((method, n))
        if r is None:
            return "n/a"
        text = f"{fmt_ns(r['median_ns'])} ({fmt_ns(r['p99_ns'])})"
        x = _ratio_to_slice(rows, method, n)
        return text + (f" **{x:.2f}×**" if ratio and x is not None else "")

    lines = [
        f"{result['channels']} ch {result['dtype']}, sources of {result['buffer_frames']:,} frames (the ring: "
        f"{result['ring_capacity']:,}). Per call: median (99th percentile over batches in parentheses), "
        "timeit-compiled "
        "loops in batches, gc off; **×** = median / median of numpy's basic slice at the same n, same run.",
        "",
        "### Zero-copy reads, next to numpy's view costs (taking turns batch by batch)",
        "",
        "| n frames | " + " | ".join(label for _, label, _ in VIEWS) + " |",
        "|---:|" + "---:|" * len(VIEWS),
    ]
    for n in sizes:
        lines.append(f"| {n:,} | " + " | ".join(cell(key, n, key != "numpy_slice") for key, _, _ in VIEWS) + " |")
    flat = [rows.get(("ring_latest", sizes[-1])), rows.get(("ring_latest", sizes[0]))]
    if all(flat):
        lines += ["", f"`Ring.latest` at n = {sizes[-1]:,} / at n = {sizes[0]:,}: "
                      f"{flat[0]['median_ns'] / flat[1]['median_ns']:.2f} (a zero-copy view costs the same for any n)."]
    lines += [
        "",
        "### Copies, and the anchors' reads (each alone, back to back)",
        "",
        "| n frames | " + " | ".join(label for _, label in COPIES) + " | sounddevice + queue |",
        "|---:|" + "---:|" * (len(COPIES) + 1),
    ]
    for n in sizes:
        lines.append(f"| {n:,} | " + " | ".join(cell(key, n, False) for key, _ in COPIES) + " | n/a (no read) |")
    lines += [
        "",
        "audioring returns float32 (the device's format); the reference returns float64 (its buffer's), so it copies "
        "twice the bytes. rtmixer's reads return the oldest frames and consume them; the sounddevice + queue recipe "
        "hands out blocks and has no read of the latest frames. The numpy columns are no recorder: they are what a "
        "view (or copy) of that many frames costs in numpy itself on this machine.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    lines = VIEWS + COPIES
    with charts.figure(path, stamp, figsize=(8.5, 6)) as (fig, ax):
        for k, (key, label, *_) in enumerate(lines):
            points = sorted((r["frames"], r["median_ns"]) for r in result["results"] if r["method"] == key)
            if points:
                style = ":" if key.startswith("numpy") else ("--" if any(key == c for c, _ in COPIES) else "-")
                ax.plot([p[0] for p in points], [p[1] / 1e3 for p in points], marker="os^vD"[k % 5], linestyle=style,
                        color=charts.distinct_color(k, len(lines)), label=label.replace("`", ""))
        ax.axhline(TARGET_VIEW_NS / 1e3, color="grey", linestyle=":", linewidth=1)
        ax.text(result["sizes"][-1], TARGET_VIEW_NS / 1e3 * 1.15, f"target for zero-copy reads: "
                f"{fmt_ns(TARGET_VIEW_NS)}", fontsize=7, color="grey", ha="right")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"n (frames of {result['channels']} channels)")
        ax.set_ylabel("time per call (µs, median)")
        ax.set_title("Reading the latest n frames (log-log; dotted: numpy references)", fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left")
