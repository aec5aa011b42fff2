"""Capacity: many channels at high rates on a JACK dummy server, and the free-running ingest rate.

Part A (JACK dummy, one fresh process per run: ``worker.py``): each recorder
records ``channels`` float32 channels at ``rate`` with a buffer of 1 s, plus
what it needs to keep going (the queue recipe's and rtmixer's consumer
threads). Reported per run:

* process CPU time (``time.process_time``, all threads of the recorder's
  process) per second of audio (JACK's clock): 100% = one core;
* paInputOverflow flags the recorder saw (where it exposes them);
* frames lost = expected frames (elapsed JACK time) minus frames received,
  where the recorder counts what it received (the reference does not);
* JACK cycles jackd logged as missed (and how many it blamed on PortAudio's
  client), and whether the recorder's process had a realtime thread.

The JACK period scales with the rate (256 frames at 48 kHz: 5.3 ms). The
target's configuration, 32 ch × 192 kHz, runs audioring for the target's
30 s (twice in the full run: one run cannot tell a recorder's overflow from
the odd late wakeup of a machine), the anchors for 10 s (their CPU per second
of audio is a rate; their flags are per run, and the table gives each run's
length). The other configurations run 5 s each. Server variants as in the
stall case: jackd ``-r``, and ``-R`` (realtime) for the target's
configuration, reported as its own rows, or as refused.

Part B (no device): audioring's ``VirtualInput`` free-running into an
``AudioRecord`` (512-frame blocks, ramp signal, ring of 1 s at 48 kHz):
frames/s and GB/s, next to the native capture callback alone (called back to
back by ``callback_timer.cpp`` with the same blocks into a ring of the same
size) and ``std::memcpy`` of the same blocks into a plain buffer of the ring's
size. The virtual input also generates every sample, so it cannot reach
either.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from harness.context import RunContext
from harness.recorders import RECORDERS, installed
from harness.servers import SERVER_KINDS, JackLog, RealtimeUnavailable, jack_server, scheduling
from harness.workers import run_worker
from reports.capacity import (
    TARGET_CHANNELS,
    TARGET_RATE,
    TARGET_SECONDS,
    TITLE,
    VIRTUAL_BLOCK,
    VIRTUAL_RATE,
    chart,
    markdown,
    period_for,
    targets,
)

__all__ = ["TITLE", "chart", "markdown", "run", "targets", "worker"]

WARMUP_S = 0.5
BUFFER_S = 1


@dataclass(frozen=True)
class Config:
    channels: int
    rate: int
    seconds: float  # per run, for the anchors
    runs: int
    audioring_seconds: float
    audioring_runs: int


def _plain(channels: int, rate: int, seconds: float) -> Config:
    return Config(channels, rate, seconds, 1, seconds, 1)


#: realtime -> (configurations, recorders).
PLAN = {
    "full": {
        False: ((_plain(2, 48000, 5.0), _plain(8, 96000, 5.0), _plain(32, 48000, 5.0),
                 Config(TARGET_CHANNELS, TARGET_RATE, 10.0, 1, TARGET_SECONDS, 2)), tuple(RECORDERS)),
        True: ((Config(TARGET_CHANNELS, TARGET_RATE, 10.0, 1, TARGET_SECONDS, 2),), tuple(RECORDERS)),
    },
    "quick": {
        False: ((_plain(TARGET_CHANNELS, TARGET_RATE, 1.0),), tuple(RECORDERS)),
        True: ((_plain(TARGET_CHANNELS, TARGET_RATE, 1.0),), ("audioring",)),
    },
}

VIRTUAL_CHANNELS = (2, 8, 32)
VIRTUAL_SECONDS = {"full": 0.6, "quick": 0.12}


# ---- part A: the worker ------------------------------------------------------------------


def worker(spec: dict) -> dict:
    import sounddevice as sd

    from harness.recorders import open_recorder
    from harness.servers import jack_device

    channels, rate, seconds = spec["channels"], spec["rate"], spec["seconds"]
    rec = open_recorder(spec["recorder"], jack_device(sd), channels, rate, BUFFER_S * rate)
    result: dict = {}
    try:
        rec.start()
        time.sleep(WARMUP_S)
        threads = scheduling(os.getpid())
        frames0, t0, cpu0, wall0 = rec.frames_received(), rec.stream_time, time.process_time(), time.perf_counter()
        time.sleep(seconds)
        frames1, t1, cpu1, wall1 = rec.frames_received(), rec.stream_time, time.process_time(), time.perf_counter()
        still = getattr(rec, "recording", None)
        try:
            rec.stop()
        except Exception as error:  # noqa: BLE001 - an overloaded stream may fail to stop in time: report it
            result["stop_error"] = f"{type(error).__name__}: {error}"
        audio_s = t1 - t0
        result.update(audio_s=audio_s, wall_s=wall1 - wall0, cpu_s=cpu1 - cpu0,
                      cpu_per_audio_s=(cpu1 - cpu0) / audio_s if audio_s > 0 else None,
                      overflow_flags=rec.overflow_flags(), realtime_threads=threads["realtime_threads"],
                      notes=rec.notes())
        if frames0 is not None and frames1 is not None:
            # The counters move a period at a time while the clock runs on: differences under one period are
            # the resolution of this measurement, not loss.
            shortfall = round(audio_s * rate) - (frames1 - frames0)
            result.update(frames_received=frames1 - frames0, frames_short_raw=shortfall,
                          frames_lost=shortfall if shortfall >= spec["period"] else 0)
        if still is not None:
            result["still_recording"] = still
    finally:
        rec.close()
    return result


def _variant(realtime: bool, ctx: RunContext) -> dict:
    configs, recorders = PLAN[ctx.mode][realtime]
    variant: dict = {"realtime": realtime, "server": SERVER_KINDS[realtime], "runs": []}
    for config in configs:
        period = period_for(config.rate)
        try:
            with jack_server(config.rate, period, config.channels, realtime=realtime) as server:
                variant.setdefault("jackd_scheduling", scheduling(server.pid))
                for name in installed(recorders):
                    seconds, runs = ((config.audioring_seconds, config.audioring_runs) if name == "audioring"
                                     else (config.seconds, config.runs))
                    for repetition in range(runs):
                        log = JackLog(server)
                        spec = {"case": "capacity", "recorder": name, "channels": config.channels,
                                "rate": config.rate, "seconds": seconds, "period": period}
                        result = run_worker(spec, timeout=seconds * 3 + 60, env=server.env)
                        result.update(recorder=name, channels=config.channels, rate=config.rate, seconds=seconds,
                                      period=period, repetition=repetition, jack=log.since())
                        variant["runs"].append(result)
                        ctx.log(f"  capacity [{'-R' if realtime else '-r'}] {name:9} {config.channels:2} ch "
                                f"{config.rate // 1000:3} kHz {seconds:g} s: " + (
                                    f"ERROR {result['error']}" if "error" in result else
                                    f"CPU {100 * result['cpu_per_audio_s']:.1f}% of a core, flags "
                                    f"{result['overflow_flags']}, lost {result.get('frames_lost', 'n/a')}, "
                                    f"JACK missed {result['jack']['process_errors']}"))
        except RealtimeUnavailable as error:
            variant["refused"] = str(error)
            ctx.log(f"  capacity: realtime jackd refused here: {error}")
            break
    variant["configs"] = [asdict(c) for c in configs]
    return variant


# ---- part B: free-running ingest -----------------------------------------------------------------


def _virtual_ingest(channels: int, frames: int) -> tuple:
    """Seconds for a free-running VirtualInput to deliver `frames`, the ring's bytes, and whether it checked out."""
    import audioring

    source = audioring.VirtualInput("ramp", realtime=False, frames=frames)
    rec = audioring.AudioRecord(channels, VIRTUAL_RATE, BUFFER_S * VIRTUAL_RATE, device=source,
                                blocksize=VIRTUAL_BLOCK)
    try:
        started = time.perf_counter()
        rec.start_recording()
        while rec.frames_recorded < frames:
            time.sleep(0.0005)
        took = time.perf_counter() - started
        newest = rec.read(VIRTUAL_BLOCK)
        ok = bool(np.array_equal(newest[:, 0], np.arange(frames - VIRTUAL_BLOCK, frames) % 2**24))
        return took, rec._ring.capacity * channels * 4, ok
    finally:
        rec.close()


def _callback_alone(timer, channels: int, frames: int) -> float:
    """Seconds the native capture callback alone takes for `frames` in 512-frame blocks (same ring size)."""
    import audioring

    rec = audioring.AudioRecord(channels, VIRTUAL_RATE, BUFFER_S * VIRTUAL_RATE,
                                device=audioring.VirtualInput("ramp"), blocksize=VIRTUAL_BLOCK)
    try:
        block = np.ones((VIRTUAL_BLOCK, channels), dtype=np.float32)
        calls = frames // VIRTUAL_BLOCK
        address = audioring._core.capture_callback_address()
        return statistics.median(timer.batch(address, rec._capture.address, block, calls) for _ in range(5)) / 1e9
    finally:
        rec.close()


def _virtual(ctx: RunContext) -> list:
    timer = ctx.callback_timer(VIRTUAL_RATE)
    results = []
    for channels in VIRTUAL_CHANNELS:
        probe = 4000 * VIRTUAL_BLOCK
        took, _, _ = _virtual_ingest(channels, probe)
        frames = max(probe, int(VIRTUAL_SECONDS[ctx.mode] / took * probe) // VIRTUAL_BLOCK * VIRTUAL_BLOCK)
        runs = [_virtual_ingest(channels, frames) for _ in range(3)]
        took = statistics.median(r[0] for r in runs)
        ring_bytes = runs[0][1]
        frame_bytes = channels * 4
        memcpy_s = statistics.median(timer.memcpy_ns(VIRTUAL_BLOCK * frame_bytes, ring_bytes, frames * frame_bytes,
                                                     5)) / 1e9
        callback_s = _callback_alone(timer, channels, frames)
        result = {
            "channels": channels, "frames": frames, "block_frames": VIRTUAL_BLOCK, "ring_bytes": ring_bytes,
            "seconds": took, "frames_per_s": frames / took, "gbps": frames * frame_bytes / took / 1e9,
            "per_block_ns": took / (frames / VIRTUAL_BLOCK) * 1e9,
            "memcpy_gbps": frames * frame_bytes / memcpy_s / 1e9,
            "callback_gbps": frames * frame_bytes / callback_s / 1e9,
            "realtime_factor_at_192k": frames / took / 192000, "verified": all(r[2] for r in runs),
        }
        results.append(result)
        ctx.log(f"  capacity: VirtualInput {channels:2} ch: {result['frames_per_s'] / 1e6:,.1f} M frames/s "
                f"(callback alone {result['callback_gbps']:.1f} GB/s, memcpy {result['memcpy_gbps']:.1f} GB/s)")
    return results


def run(ctx: RunContext) -> dict:
    variants = [_variant(False, ctx)]
    if ctx.realtime:
        variants.append(_variant(True, ctx))
    return {"warmup_s": WARMUP_S, "buffer_s": BUFFER_S, "variants": variants, "virtual": _virtual(ctx)}
