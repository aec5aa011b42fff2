"""Case 4: capacity. Many channels at high rates on a JACK dummy server, and the free-running ingest rate.

Part A (JACK dummy, one fresh process per recorder: ``bench_anchors.py``
worker): each recorder records ``channels`` float32 channels at ``rate`` for
30 s (2 s in quick mode) with a buffer of 1 s, plus what it needs to keep
going (the queue recipe's and rtmixer's consumer threads; audioring and the
reference need none). Reported:

* process CPU time (``time.process_time``, all threads of the recorder's
  process) per second of audio (JACK's clock): 100% = one core;
* paInputOverflow flags the recorder saw (where it exposes them);
* frames lost = expected frames (elapsed JACK time) minus frames received,
  where the recorder counts what it received (the reference does not);
* JACK cycles jackd logged as missed during the run (and how many it blamed
  on PortAudio's client).

The JACK period is scaled with the rate (256 frames at 48 kHz: 5.3 ms).

Part B (no device): audioring's ``VirtualInput`` free-running into an
``AudioRecord`` (512-frame blocks, ramp signal, ring of 2 s at 48 kHz):
frames/s and GB/s, next to the native capture callback alone (called back to
back by ``callback_timer.cpp`` with the same blocks into a ring of the same
size) and ``std::memcpy`` of the same blocks into a plain buffer of the ring's
size. The virtual input also generates every sample, so it cannot reach
either.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from _report import MachineLoad, fmt_size

#: (channels, rate, runs per recorder) and seconds per run. The target's configuration runs three times in
#: the full run: one 30 s run cannot tell a recorder's overflow from the odd late wakeup of a machine.
CONFIGS = {
    "full": ((2, 48000, 1), (8, 96000, 1), (32, 48000, 1), (32, 192000, 3)),
    "quick": ((2, 48000, 1), (32, 192000, 1)),
}
SECONDS = {"full": 30.0, "quick": 2.0}
WARMUP_S = 0.5
BUFFER_S = 1

VIRTUAL_CHANNELS = (2, 8, 32)
VIRTUAL_RATE = 48000
VIRTUAL_BLOCK = 512
VIRTUAL_SECONDS = {"full": 0.6, "quick": 0.12}

#: The issue's target: 32 ch at 192 kHz for 30 s on JACK dummy, 0 overflows, under 5% of one core.
TARGET_CPU = 0.05


def period_for(rate: int) -> int:
    return max(64, 256 * rate // 48000)


# ---- part A: the worker -----------------------------------------------------------------


def worker(spec: dict) -> dict:
    from bench_anchors import open_recorder

    channels, rate, seconds = spec["channels"], spec["rate"], spec["seconds"]
    rec = open_recorder(spec["recorder"], channels, rate, BUFFER_S * rate)
    result: dict = {"recorder": spec["recorder"], "channels": channels, "rate": rate}
    try:
        rec.start()
        time.sleep(WARMUP_S)
        frames0, t0, cpu0, wall0 = rec.frames_received(), rec.stream_time, time.process_time(), time.perf_counter()
        time.sleep(seconds)
        frames1, t1, cpu1, wall1 = rec.frames_received(), rec.stream_time, time.process_time(), time.perf_counter()
        still = getattr(rec, "recording", None)
        try:
            rec.stop()
        except Exception as error:  # noqa: BLE001 - an overloaded stream may fail to stop in time: report it
            result["stop_error"] = f"{type(error).__name__}: {error}"
        audio_s = t1 - t0
        result.update(
            audio_s=audio_s,
            wall_s=wall1 - wall0,
            cpu_s=cpu1 - cpu0,
            cpu_per_audio_s=(cpu1 - cpu0) / audio_s if audio_s > 0 else None,
            overflow_flags=rec.overflow_flags(),
            notes=rec.notes(),
        )
        if frames0 is not None and frames1 is not None:
            # The counters move a period at a time while the clock runs on: differences under one period are
            # the resolution of this measurement, not loss.
            period = spec["period"]
            shortfall = round(audio_s * rate) - (frames1 - frames0)
            result["frames_received"] = frames1 - frames0
            result["frames_short_raw"] = shortfall
            result["frames_lost"] = shortfall if shortfall >= period else 0
        if still is not None:
            result["still_recording"] = still
    finally:
        rec.close()
    return result


def _run_jack(mode: str, log) -> list:
    from bench_anchors import RECORDERS, jack_server, run_worker
    from bench_stall import jack_log_summary

    seconds = SECONDS[mode]
    results = []
    for channels, rate, runs in CONFIGS[mode]:
        with jack_server(rate, period_for(rate), channels) as server:
            log_path = server.directory / "jackd.log"
            for repetition, name in [(k, n) for k in range(runs) for n in RECORDERS]:
                before = _lines(log_path)
                load = MachineLoad()
                spec = {"case": "capacity", "recorder": name, "channels": channels, "rate": rate, "seconds": seconds,
                        "period": period_for(rate)}
                result = run_worker(spec, timeout=seconds * 3 + 60, env=server.env)
                result.setdefault("recorder", name)
                result.setdefault("channels", channels)
                result.setdefault("rate", rate)
                result["period"] = period_for(rate)
                result["repetition"] = repetition
                result["jack"] = jack_log_summary(_lines(log_path)[len(before):])
                result["machine"] = load.stop()
                results.append(result)
                if "error" in result:
                    log(f"  case 4: {name:9} {channels:2} ch {rate // 1000:3} kHz: ERROR {result['error']}")
                else:
                    log(f"  case 4: {name:9} {channels:2} ch {rate // 1000:3} kHz: "
                        f"CPU {100 * result['cpu_per_audio_s']:.1f}% of a core, flags {result['overflow_flags']}, "
                        f"lost {result.get('frames_lost', 'n/a')}, JACK missed {result['jack']['process_errors']}")
    return results


def _lines(path: Path) -> list:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


# ---- part B: free-running ingest -----------------------------------------------------------------


def _virtual_ingest(channels: int, frames: int) -> tuple:
    """Seconds for a free-running VirtualInput to deliver `frames`, and the ring's bytes."""
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
        runs = [timer.batch(address, rec._capture.address, block, calls) for _ in range(5)]
        return statistics.median(runs) / 1e9
    finally:
        rec.close()


def _run_virtual(mode: str, timer, log) -> list:
    results = []
    for channels in VIRTUAL_CHANNELS:
        probe = 4000 * VIRTUAL_BLOCK
        took, _, _ = _virtual_ingest(channels, probe)
        frames = max(probe, int(VIRTUAL_SECONDS[mode] / took * probe) // VIRTUAL_BLOCK * VIRTUAL_BLOCK)
        runs = [_virtual_ingest(channels, frames) for _ in range(3)]
        took = statistics.median(r[0] for r in runs)
        ring_bytes = runs[0][1]
        frame_bytes = channels * 4
        memcpy = timer.memcpy_ns(VIRTUAL_BLOCK * frame_bytes, ring_bytes, frames * frame_bytes, 5)
        memcpy_s = statistics.median(memcpy) / 1e9
        callback_s = _callback_alone(timer, channels, frames)
        result = {
            "channels": channels,
            "frames": frames,
            "block_frames": VIRTUAL_BLOCK,
            "ring_bytes": ring_bytes,
            "seconds": took,
            "frames_per_s": frames / took,
            "gbps": frames * frame_bytes / took / 1e9,
            "per_block_ns": took / (frames / VIRTUAL_BLOCK) * 1e9,
            "memcpy_gbps": frames * frame_bytes / memcpy_s / 1e9,
            "callback_gbps": frames * frame_bytes / callback_s / 1e9,
            "realtime_factor_at_192k": frames / took / 192000,
            "verified": all(r[2] for r in runs),
        }
        results.append(result)
        log(f"  case 4: VirtualInput {channels:2} ch: {result['frames_per_s'] / 1e6:,.1f} M frames/s, "
            f"{result['gbps']:.2f} GB/s (callback alone {result['callback_gbps']:.1f} GB/s, "
            f"memcpy {result['memcpy_gbps']:.1f} GB/s)")
    return results


def run(mode: str, timer, log=print) -> dict:
    result = {"seconds": SECONDS[mode], "warmup_s": WARMUP_S, "buffer_s": BUFFER_S, "jack": _run_jack(mode, log),
              "virtual": _run_virtual(mode, timer, log)}
    result["target"] = target_of(result)
    return result


def target_of(result: dict) -> dict:
    """The issue's target, judged on the runs of the 32 ch x 192 kHz configuration."""
    target_rows = [r for r in result["jack"]
                   if r["recorder"] == "audioring" and r["channels"] == 32 and r["rate"] == 192000]
    good = [r for r in target_rows if "error" not in r]
    target = {"description": "audioring, 32 ch at 192 kHz for 30 s on JACK dummy: 0 overflows, < 5% of one core",
              "seconds": result["seconds"],
              "overflow_flags_each_run": [r["overflow_flags"] for r in good],
              "frames_lost_each_run": [r.get("frames_lost") for r in good],
              "cpu_per_audio_s_each_run": [r["cpu_per_audio_s"] for r in good],
              "jack_missed_blamed_on_portaudio_each_run": [r["jack"]["portaudio_late"] for r in good],
              "jack_driver_late_each_run": [r["jack"]["driver_late"] for r in good],
              "errors": [r["error"] for r in target_rows if "error" in r]}
    target["met"] = bool(good) and len(good) == len(target_rows) and all(
        r["overflow_flags"] == 0 and (r["cpu_per_audio_s"] or 1) < TARGET_CPU for r in good)
    return target


def markdown(result: dict) -> list:
    from bench_anchors import LABELS, RECORDERS

    configs = sorted({(r["channels"], r["rate"]) for r in result["jack"]}, key=lambda c: (c[0] * c[1], c[0]))
    lines = [
        f"## 4. Capacity: {result['seconds']:g} s runs on JACK dummy (float32, buffer {result['buffer_s']} s)",
        "",
        "Each cell (run by run, separated by /): **process CPU per second of audio** (100% = one core); "
        "paInputOverflow flags the recorder saw; frames lost (expected by JACK's clock minus received, to within one "
        "period; n/a where the recorder does not count); JACK cycles jackd logged as missed (in parentheses, all "
        "runs: those it blamed on PortAudio's client, i.e. the recorder's process thread was late).",
        "",
        "| recorder | " + " | ".join(f"{c} ch × {r // 1000} kHz" for c, r in configs) + " |",
        "|---|" + "---:|" * len(configs),
    ]
    runs: dict = {}
    for r in result["jack"]:
        runs.setdefault((r["recorder"], r["channels"], r["rate"]), []).append(r)
    for name in RECORDERS:
        cells = []
        for channels, rate in configs:
            group = runs.get((name, channels, rate), [])
            good = [r for r in group if "error" not in r]
            errors = [r["error"] for r in group if "error" in r]
            if not good:
                cells.append(f"error: {errors}" if errors else "n/a")
                continue

            def each(values: list) -> str:
                return " / ".join(values)

            cpu = each([f"{100 * r['cpu_per_audio_s']:.1f}%" for r in good])
            if any(r["overflow_flags"] is None for r in good):
                flags = "flags not exposed"
            else:
                flags = "flags " + each([str(r["overflow_flags"]) for r in good])
            if all("frames_lost" in r for r in good):
                lost = "lost " + each([f"{r['frames_lost']:,}" for r in good])
            else:
                lost = "lost n/a"
            missed = each([str(r["jack"]["process_errors"]) for r in good])
            late = sum(r["jack"]["portaudio_late"] for r in good)
            extra = ""
            if any(r.get("still_recording") is False for r in good):
                extra += "; ring filled, recording ended"
            if any("stop_error" in r for r in good):
                extra += "; stop failed"
            if errors:
                extra += f"; errors: {errors}"
            cells.append(f"**{cpu}**; {flags}; {lost}; missed {missed} ({late}){extra}")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "JACK periods: "
        + ", ".join(f"{r // 1000} kHz: {period_for(r)} frames" for r in sorted({r for _, r in configs}))
        + ". The jackd process itself is not counted. Flags and missed cycles cover the whole worker run (start-up "
        "and warm-up included), frames lost only the measured window. PortAudio's JACK host API flags "
        "paInputOverflow on every open stream whenever JACK reports an xrun anywhere (another client late, or "
        "the dummy driver's own thread waking late), so a flag can come without a frame lost by that recorder.",
        "",
        f"### Free-running VirtualInput ingest ({VIRTUAL_BLOCK}-frame float32 blocks, ramp signal, ring of 2 s at "
        f"{VIRTUAL_RATE // 1000} kHz)",
        "",
        "| ch | ring | frames/s | GB/s | per block | × real time at 192 kHz | native callback alone GB/s | "
        "std::memcpy GB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["virtual"]:
        lines.append(
            f"| {r['channels']} | {fmt_size(r['ring_bytes'], binary=True)} | {r['frames_per_s'] / 1e6:,.1f} M | "
            f"{r['gbps']:.2f} | {r['per_block_ns'] / 1e3:.2f} µs | {r['realtime_factor_at_192k']:,.0f} | "
            f"{r['callback_gbps']:.1f} | {r['memcpy_gbps']:.1f} |" + ("" if r["verified"] else " ✗")
        )
    lines += [
        "",
        "The virtual input computes every sample (the ramp) before calling the same callback PortAudio calls, and "
        "reads the clock twice per block: generation, not the ring, sets its rate. \"Native callback alone\": "
        "`audioring_capture_callback` called back to back by `callback_timer.cpp` with the same blocks into a ring "
        "of the same size. std::memcpy: the same blocks copied into a plain buffer of the ring's size, wrapping "
        "around as the ring does.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench_anchors import LABELS, RECORDERS

    configs = sorted({(r["channels"], r["rate"]) for r in result["jack"]}, key=lambda c: (c[0] * c[1], c[0]))
    rows: dict = {}
    for r in result["jack"]:
        if r.get("cpu_per_audio_s"):
            rows.setdefault((r["recorder"], r["channels"], r["rate"]), []).append(r["cpu_per_audio_s"])
    fig, ax = plt.subplots(figsize=(8, 4.8))
    width = 0.8 / len(RECORDERS)
    for k, name in enumerate(RECORDERS):
        heights = []
        for channels, rate in configs:
            values = rows.get((name, channels, rate))
            heights.append(100 * statistics.median(values) if values else float("nan"))
        xs = [i + (k - (len(RECORDERS) - 1) / 2) * width for i in range(len(configs))]
        bars = ax.bar(xs, heights, width, label=LABELS[name].replace("`", ""))
        for bar, height in zip(bars, heights):
            if height == height:
                ax.text(bar.get_x() + bar.get_width() / 2, height, f"{height:.1f}", ha="center", va="bottom",
                        fontsize=6)
    ax.axhline(100 * TARGET_CPU, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(configs)), [f"{c} ch × {r // 1000} kHz" for c, r in configs])
    ax.set_ylabel("CPU per second of audio (% of a core, median)")
    ax.set_title(f"Case 4: recording cost on JACK dummy ({result['seconds']:g} s runs)", fontsize=11)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.text(0.5, 0.005, stamp, ha="center", va="bottom", fontsize=6, color="dimgrey")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
