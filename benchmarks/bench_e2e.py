"""Case 5: end-to-end CPU of the audio-classification loop.

48 kHz stereo from a JACK dummy server (period 256) into a recorder with a
1 s buffer, while the main thread reads the latest 1 s window twice a second
(what an audio classifier does before each inference; the inference itself is
left out, being the same for every recorder). Each recorder runs in a fresh
process (``bench_anchors.py`` worker) for 60 s (quick mode: 5 s, scaled to a
minute and labeled so). Reported: process CPU seconds (``time.process_time``,
all threads) per minute of audio (JACK's clock), and the overflow flags.

Recorders: audioring (zero-copy ``read(48000)``; and ``read(48000,
copy=True)``, which is what a consumer that keeps windows needs) and the
tflite-support reference (``read(48000)``, always a copy). The sounddevice +
queue recipe and rtmixer have no read of the latest window: the application
would have to build one, so they are n/a here (case 4 has their recording
cost).
"""

from __future__ import annotations

import time
from pathlib import Path

RATE = 48000
PERIOD = 256
CHANNELS = 2
WINDOW = RATE  # 1 s
INTERVAL_S = 0.5
SECONDS = {"full": 60.0, "quick": 5.0}
WARMUP_S = 0.5

#: (row key, recorder, read with copy)
VARIANTS = (("audioring", "audioring", False), ("audioring_copy", "audioring", True), ("tflite", "tflite", False))
LABELS = {
    "audioring": "audioring `AudioRecord.read(48000)` (zero-copy view)",
    "audioring_copy": "audioring `AudioRecord.read(48000, copy=True)`",
    "tflite": "tflite-support `AudioRecord.read(48000)` (reference; copies)",
    "sd_queue": "sounddevice `InputStream` + `queue.Queue`",
    "rtmixer": "rtmixer `Recorder` + `RingBuffer`",
}


def worker(spec: dict) -> dict:
    from bench_anchors import open_recorder

    rec = open_recorder(spec["recorder"], CHANNELS, RATE, WINDOW)
    copy = spec["copy"]
    if copy:
        inner = rec.rec  # audioring's own AudioRecord: read(n, copy=True)

        def read():
            return inner.read(WINDOW, copy=True)
    else:
        def read():
            return rec.read(WINDOW)
    reads = 0
    try:
        rec.start()
        time.sleep(WARMUP_S)
        t0, cpu0 = rec.stream_time, time.process_time()
        deadline = time.perf_counter() + spec["seconds"]
        tick = time.perf_counter()
        while tick < deadline:
            window = read()
            assert window.shape == (WINDOW, CHANNELS)
            reads += 1
            tick += INTERVAL_S
            time.sleep(max(0.0, tick - time.perf_counter()))
        t1, cpu1 = rec.stream_time, time.process_time()
        rec.stop()
        audio_s = t1 - t0
        return {
            "variant": spec["variant"],
            "recorder": spec["recorder"],
            "audio_s": audio_s,
            "cpu_s": cpu1 - cpu0,
            "cpu_s_per_minute": (cpu1 - cpu0) / audio_s * 60,
            "reads": reads,
            "overflow_flags": rec.overflow_flags(),
        }
    finally:
        rec.close()


def run(mode: str, log=print) -> dict:
    from bench_anchors import jack_server, run_worker
    from bench_stall import jack_log_summary

    seconds = SECONDS[mode]
    results = []
    with jack_server(RATE, PERIOD, CHANNELS) as server:
        log_path = server.directory / "jackd.log"
        for variant, recorder, copy in VARIANTS:
            before = len(_lines(log_path))
            spec = {"case": "e2e", "variant": variant, "recorder": recorder, "copy": copy, "seconds": seconds}
            result = run_worker(spec, timeout=seconds * 2 + 60, env=server.env)
            result.setdefault("variant", variant)
            result["jack"] = jack_log_summary(_lines(log_path)[before:])
            results.append(result)
            if "error" in result:
                log(f"  case 5: {variant:14} ERROR {result['error']}")
            else:
                log(f"  case 5: {variant:14} {result['cpu_s_per_minute']:.2f} CPU-s per minute "
                    f"({result['reads']} reads, flags {result['overflow_flags']})")
    return {"rate": RATE, "channels": CHANNELS, "window": WINDOW, "interval_s": INTERVAL_S, "seconds": seconds,
            "scaled": mode != "full", "results": results}


def _lines(path: Path) -> list:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def markdown(result: dict) -> list:
    scaled = result["scaled"]
    lines = [
        f"## 5. End-to-end CPU: {result['rate'] // 1000} kHz stereo, latest 1 s read every {result['interval_s']:g} s",
        "",
        f"Process CPU seconds per minute of audio (all threads; JACK dummy, period {PERIOD}), each run "
        f"{result['seconds']:g} s" + (" — **quick mode: a short run scaled to one minute**" if scaled else "") + ".",
        "",
        "| recorder | CPU s per minute | % of one core | reads | overflow flags |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        label = LABELS[r["variant"]]
        if "error" in r:
            lines.append(f"| {label} | error: {r['error']} | | | |")
            continue
        flags = "not exposed" if r["overflow_flags"] is None else r["overflow_flags"]
        lines.append(f"| {label} | **{r['cpu_s_per_minute']:.2f}** | {r['cpu_s_per_minute'] / 60 * 100:.2f}% | "
                     f"{r['reads']} | {flags} |")
    for name in ("sd_queue", "rtmixer"):
        lines.append(f"| {LABELS[name]} | n/a: no read of the latest window (see case 4 for its recording cost) "
                     "| | | |")
    lines.append("")
    return lines
