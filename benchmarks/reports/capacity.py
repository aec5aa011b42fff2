"""The capacity case's report (``cases/capacity.py`` measures): target, Markdown and chart from the stored result."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from harness import charts
from harness.formatting import fmt_runs, fmt_size
from harness.recorders import LABELS, RECORDERS
from harness.servers import realtime_text

TITLE = "Capacity: channels × rate on JACK, and free-running ingest"

# What the report describes and judges, which cases/capacity.py runs by (it imports them from here).
TARGET_CHANNELS, TARGET_RATE, TARGET_SECONDS = 32, 192000, 30.0
#: The target: audioring at 32 ch × 192 kHz for 30 s on JACK dummy, 0 overflows, under 5% of one core.
TARGET_CPU = 0.05
#: The free-running VirtualInput's rate and block (frames).
VIRTUAL_RATE = 48000
VIRTUAL_BLOCK = 512


def period_for(rate: int) -> int:
    """JACK period at `rate`: 256 frames at 48 kHz, in proportion to the rate, at least 64."""
    return max(64, 256 * rate // 48000)


def targets(result: dict) -> list:
    found = []
    for variant in result["variants"]:
        label = (f"audioring, {TARGET_CHANNELS} ch × {TARGET_RATE // 1000} kHz for {TARGET_SECONDS:g} s: 0 overflow "
                 f"flags and < {100 * TARGET_CPU:g}% of one core — {variant['server']}")
        if "refused" in variant:
            found.append({"label": label, "met": None, "measured": f"not run: {variant['refused'][:200]}"})
            continue
        runs = [r for r in variant["runs"] if r["recorder"] == "audioring" and r["channels"] == TARGET_CHANNELS
                and r["rate"] == TARGET_RATE]
        if not runs:
            continue
        judged = [r for r in runs if "error" not in r and r["seconds"] >= TARGET_SECONDS]
        good = [r for r in runs if "error" not in r]
        measured = (f"CPU {fmt_runs([r['cpu_per_audio_s'] for r in good], lambda x: f'{100 * x:.2f}%')}; overflow "
                    f"flags {fmt_runs([r['overflow_flags'] for r in good])}; frames lost "
                    f"{fmt_runs([r.get('frames_lost') for r in good])}; JACK cycles blamed on the recorder "
                    f"{fmt_runs([r['jack']['portaudio_late'] for r in good])}; runs of "
                    f"{fmt_runs([r['seconds'] for r in good], lambda x: f'{x:g} s')}")
        if len(judged) < len(runs):
            measured += (f"; {len(runs) - len(judged)} run(s) not judged (shorter than {TARGET_SECONDS:g} s, "
                         "or failed)")
        met = all(r["overflow_flags"] == 0 and r["cpu_per_audio_s"] is not None and r["cpu_per_audio_s"] < TARGET_CPU
                  for r in judged) if judged else None
        found.append({"label": label, "met": met, "measured": measured})
    return found


def _cell(group: list) -> str:
    good = [r for r in group if "error" not in r]
    errors = [r["error"] for r in group if "error" in r]
    if not good:
        return f"error: {errors}" if errors else "n/a"
    cpu = fmt_runs([r["cpu_per_audio_s"] for r in good], lambda x: f"{100 * x:.1f}%")
    flags = ("flags not exposed" if any(r["overflow_flags"] is None for r in good)
             else "flags " + fmt_runs([r["overflow_flags"] for r in good]))
    lost = ("lost " + fmt_runs([r["frames_lost"] for r in good]) if all("frames_lost" in r for r in good)
            else "lost n/a")
    missed = fmt_runs([r["jack"]["process_errors"] for r in good])
    late = sum(r["jack"]["portaudio_late"] for r in good)
    text = (f"**{cpu}**; {flags}; {lost}; missed {missed} ({late}); "
            f"{fmt_runs([r['seconds'] for r in good], lambda x: f'{x:g}')} s")
    if any(r.get("still_recording") is False for r in good):
        text += "; ring filled, recording ended"
    if any("stop_error" in r for r in good):
        text += "; stop failed"
    return text + (f"; errors: {errors}" if errors else "")


def _configs(result: dict) -> list:
    seen = {(r["channels"], r["rate"]) for v in result["variants"] for r in v.get("runs", [])}
    return sorted(seen, key=lambda c: (c[0] * c[1], c[0]))


def markdown(result: dict) -> list:
    configs = _configs(result)
    lines = [
        f"float32, buffer {result['buffer_s']} s. Each cell (run by run, separated by /): **process CPU per second "
        "of audio** (100% = one core); paInputOverflow flags the recorder saw; frames lost (expected by JACK's "
        "clock minus received, to within one period; n/a where the recorder does not count); JACK cycles jackd "
        "logged as missed (in parentheses, all runs: those it blamed on PortAudio's client, i.e. the recorder's "
        "process thread was late); the runs' lengths.",
        "",
        "| server | recorder | " + " | ".join(f"{c} ch × {r // 1000} kHz" for c, r in configs) + " |",
        "|---|---|" + "---:|" * len(configs),
    ]
    notes = []
    for variant in result["variants"]:
        if "refused" in variant:
            notes.append(f"**{variant['server']}: not run — realtime scheduling was refused here** "
                         f"({variant['refused']}).")
            continue
        for name in RECORDERS:
            groups = [[r for r in variant["runs"] if (r["recorder"], r["channels"], r["rate"]) == (name, c, rate)]
                      for c, rate in configs]
            if any(groups):
                lines.append(f"| {variant['server']} | {LABELS[name]} | "
                             + " | ".join(_cell(g) if g else "—" for g in groups) + " |")
        rt_workers = sum(1 for r in variant["runs"] if r.get("realtime_threads"))
        late = sum(r["jack"]["driver_late"] for r in variant["runs"])
        notes.append(f"{variant['server']}: jackd's threads with a realtime policy: "
                     f"{realtime_text(variant.get('jackd_scheduling', {}))}; runs whose recorder "
                     f"process had a realtime thread: {rt_workers} of {len(variant['runs'])}; jackd's dummy driver "
                     f"woke late {late} times over all runs.")
    lines += [
        "",
        *[f"- {note}" for note in notes],
        "",
        "JACK periods: "
        + ", ".join(f"{r // 1000} kHz: {period_for(r)} frames" for r in sorted({r for _, r in configs}))
        + ". The jackd process itself is not counted. Flags and missed cycles cover the whole worker run (start-up "
        "and warm-up included), frames lost only the measured window. PortAudio's JACK host API flags "
        "paInputOverflow on every open stream whenever JACK reports an xrun anywhere (another client late, or "
        "the dummy driver's own thread waking late), so a flag can come without a frame lost by that recorder.",
        "",
        f"### Free-running VirtualInput ingest ({VIRTUAL_BLOCK}-frame float32 blocks, ramp signal, ring of "
        f"{result['buffer_s']} s at {VIRTUAL_RATE // 1000} kHz)",
        "",
        "| ch | ring | frames/s | GB/s | per block | × real time at 192 kHz | native callback alone GB/s | "
        "std::memcpy GB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["virtual"]:
        lines.append(
            f"| {r['channels']} | {fmt_size(r['ring_bytes'], binary=True)} | {r['frames_per_s'] / 1e6:,.1f} M | "
            f"{r['gbps']:.2f} | {r['per_block_ns'] / 1e3:.2f} µs | {r['realtime_factor_at_192k']:,.0f} | "
            f"{r['callback_gbps']:.1f} | {r['memcpy_gbps']:.1f} |" + ("" if r["verified"] else " ✗"))
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
    groups, keys = [], []
    for variant in result["variants"]:
        for c, rate in _configs(result):
            if any((r["channels"], r["rate"]) == (c, rate) for r in variant.get("runs", [])):
                keys.append((variant, c, rate))
                groups.append(f"{c} ch × {rate // 1000} kHz\n{'jackd -R' if variant['realtime'] else 'jackd -r'}")
    series = []
    for name in RECORDERS:
        heights = []
        for variant, c, rate in keys:
            values = [r["cpu_per_audio_s"] for r in variant["runs"] if (r["recorder"], r["channels"], r["rate"])
                      == (name, c, rate) and r.get("cpu_per_audio_s")]
            heights.append(100 * statistics.median(values) if values else math.nan)
        series.append((LABELS[name].replace("`", ""), heights))
    with charts.figure(path, stamp, figsize=(9, 5.2)) as (fig, ax):
        charts.grouped_bars(ax, groups, series, annotate=lambda h: f"{h:.1f}")
        ax.axhline(100 * TARGET_CPU, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylabel("CPU per second of audio (% of a core, median)")
        ax.set_title("Recording cost on JACK dummy", fontsize=11)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
