"""End-to-end CPU: recording 48 kHz stereo while the main thread reads the latest 1 s twice a second.

What an audio classifier does before each inference (the inference itself is
left out: it is the same for every recorder). Audio from a JACK dummy server
(period 256) into a recorder with a 1 s buffer; each recorder runs in a fresh
process (``worker.py``) for 30 s (quick: 1 s), scaled to CPU seconds per
minute of audio (JACK's clock) and labelled so. Reported: process CPU
(``time.process_time``, all threads) and the overflow flags.

Recorders: audioring (zero-copy ``read(48000)``, and ``read(48000,
copy=True)``, which a consumer that keeps windows needs) and the
tflite-support reference (``read(48000)``, always a copy). The sounddevice +
queue recipe and rtmixer have no read of the latest window: the application
would have to build one, so they are n/a here (the capacity case has their
recording cost).
"""

from __future__ import annotations

import time

from harness.context import RunContext
from harness.recorders import installed
from harness.servers import JackLog, jack_server
from harness.workers import run_worker
from reports.e2e import TITLE, markdown, targets

__all__ = ["TITLE", "markdown", "run", "targets", "worker"]

RATE = 48000
PERIOD = 256
CHANNELS = 2
WINDOW = RATE  # 1 s
INTERVAL_S = 0.5
SECONDS = {"full": 30.0, "quick": 1.0}
WARMUP_S = 0.5

#: (row, recorder, read with copy)
VARIANTS = (("audioring", "audioring", False), ("audioring_copy", "audioring", True), ("tflite", "tflite", False))


def worker(spec: dict) -> dict:
    import sounddevice as sd

    from harness.recorders import open_recorder
    from harness.servers import jack_device

    rec = open_recorder(spec["recorder"], jack_device(sd), CHANNELS, RATE, WINDOW)
    copy = spec["copy"]
    reads = 0
    try:
        rec.start()
        time.sleep(WARMUP_S)
        t0, cpu0 = rec.stream_time, time.process_time()
        deadline = time.perf_counter() + spec["seconds"]
        tick = time.perf_counter()
        while tick < deadline:
            window = rec.read(WINDOW, copy=copy)
            assert window.shape == (WINDOW, CHANNELS)
            reads += 1
            tick += INTERVAL_S
            time.sleep(max(0.0, tick - time.perf_counter()))
        t1, cpu1 = rec.stream_time, time.process_time()
        rec.stop()
        audio_s = t1 - t0
        return {"audio_s": audio_s, "cpu_s": cpu1 - cpu0, "cpu_s_per_minute": (cpu1 - cpu0) / audio_s * 60,
                "reads": reads, "overflow_flags": rec.overflow_flags()}
    finally:
        rec.close()


def run(ctx: RunContext) -> dict:
    seconds = SECONDS[ctx.mode]
    results = []
    with jack_server(RATE, PERIOD, CHANNELS) as server:
        for variant, recorder, copy in [v for v in VARIANTS if v[1] in installed()]:
            log = JackLog(server)
            spec = {"case": "e2e", "recorder": recorder, "copy": copy, "seconds": seconds}
            result = run_worker(spec, timeout=seconds * 2 + 60, env=server.env)
            result.update(variant=variant, recorder=recorder, jack=log.since())
            results.append(result)
            ctx.log(f"  e2e: {variant:14} " + (f"ERROR {result['error']}" if "error" in result else
                                               f"{result['cpu_s_per_minute']:.2f} CPU-s per minute ({result['reads']}"
                                               f" reads, flags {result['overflow_flags']})"))
    return {"rate": RATE, "period": PERIOD, "channels": CHANNELS, "window": WINDOW, "interval_s": INTERVAL_S,
            "seconds": seconds, "results": results}
