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

import numpy as np

from harness.context import RunContext
from harness.formatting import fmt_ns
from harness.servers import jack_device, jack_server
from harness.timing import Budget, statement, time_one, time_together
from reports.read import TITLE, VIEWS, chart, markdown, targets

__all__ = ["TITLE", "chart", "markdown", "run", "targets"]

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
