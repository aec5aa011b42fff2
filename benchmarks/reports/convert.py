"""The convert case's report (``cases/convert.py`` measures): targets, Markdown and chart from the stored result.

What is converted, the rows and the methods, which both halves need, are in ``harness/conversions.py``."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Optional

from harness.conversions import CONVERSIONS, METHODS, ROWS, Conversion, conversion_text, period_for
from harness.formatting import fmt_runs
from harness.recorders import LABELS
from harness.servers import realtime_text

TITLE = "Sample-rate conversion: CPU per second of audio, block-edge error, frames lost in a GIL stall"

ROW_LABELS = {
    "audioring": "audioring `AudioRecord`, native conversion",
    "sd_soxr": LABELS["sd_soxr"],
    "sd_scipy": LABELS["sd_scipy"],
    "capture_only": "audioring `AudioRecord` at the device's rate, no conversion (capture alone, for scale)",
}

#: Targets, judged from the numbers of each run.
TARGET_MONO_CPU = 0.001  # 48 -> 16 kHz mono: <= 0.1% of one core
TARGET_32_CPU = 0.05  # 32 ch 192 -> 48 kHz: <= 5% of one core
TARGET_RATIO = 1.2  # the converter alone, against python-soxr's one-shot resample of the same samples


def _conversions(result: dict) -> list:
    return [Conversion(**c) for c in result["conversions"]]


def _runs(result: dict, row: str, c: Conversion, judged: bool = False) -> list:
    """The good runs of `row` on conversion `c` (`judged`: only those long enough for a target)."""
    return [r for r in result["runs"] if r["row"] == row and "error" not in r and r.get("cpu_per_audio_s") is not None
            and (r["channels"], r["in_rate"], r["out_rate"]) == (c.channels, c.in_rate, c.out_rate)
            and (not judged or r["seconds"] >= result["target_min_s"])]


def _median_cpu(runs: list) -> Optional[float]:
    return statistics.median(r["cpu_per_audio_s"] for r in runs) if runs else None


def _offline(result: dict, c: Conversion) -> Optional[dict]:
    offline = result.get("offline", {})
    if "error" in offline:
        return None
    return next((r for r in offline.get("conversions", []) if (r["channels"], r["in_rate"], r["out_rate"])
                 == (c.channels, c.in_rate, c.out_rate)), None)


def _alone(result: dict, c: Conversion, method: str) -> Optional[float]:
    found = _offline(result, c)
    return found["methods"][method]["cpu_per_audio_s"] if found and method in found["methods"] else None


def pct(x: Optional[float]) -> str:
    """A share of one core, to 3 significant digits."""
    return "n/a" if x is None else f"{100 * x:.3g}%"


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _times(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3g}×"


def _cpu_target(result: dict, c: Conversion, limit: float) -> dict:
    # The limit is the conversion's cost (the issue sets it next to python-soxr's own cost of the
    # same conversion): the converter alone, no device. The whole process on JACK also pays for
    # capture (JACK's wake-ups), which no conversion method avoids, so it is shown, not judged.
    label = (f"audioring's conversion {conversion_text(c)}: ≤ {100 * limit:g}% of one core (the converter alone, "
             "CPU per second of audio, no device)")
    alone = _alone(result, c, "converter")
    judged = _runs(result, "audioring", c, judged=True)
    measured = (f"the converter alone {pct(alone)}; for scale, on JACK: the whole process (capture and conversion) "
                f"{pct(_median_cpu(judged))}, capture alone at {c.in_rate / 1000:g} kHz "
                f"{pct(_median_cpu(_runs(result, 'capture_only', c)))}")
    return {"label": label, "met": None if alone is None else alone <= limit, "measured": measured}


def _live_target(result: dict) -> dict:
    """The live cost against the real alternative: python-soxr's streaming resampler in a sounddevice callback.

    Both record the same JACK device in the same run, so both pay for capture: the whole process of
    each is compared, for every conversion that both ran long enough to judge.
    """
    pairs = [(c, _median_cpu(_runs(result, "audioring", c, judged=True)),
              _median_cpu(_runs(result, "sd_soxr", c, judged=True))) for c in _conversions(result)]
    known = [(c, ours, theirs) for c, ours, theirs in pairs if ours is not None and theirs is not None]
    return {
        "label": "audioring's whole process on JACK ≤ the usual recipe's (python-soxr's `ResampleStream` fed from a "
                 "sounddevice Python callback) on the same device in the same run, every conversion",
        "met": all(ours <= theirs for _, ours, theirs in known) if known and len(known) == len(pairs) else None,
        "measured": "; ".join(f"{conversion_text(c)}: {pct(ours)} against {pct(theirs)} "
                              f"({_times(_ratio(theirs, ours))} audioring's)" for c, ours, theirs in known),
    }


def targets(result: dict) -> list:
    mono, _, many = _conversions(result)
    found = [_cpu_target(result, mono, TARGET_MONO_CPU), _cpu_target(result, many, TARGET_32_CPU)]
    ratios = [(c, _ratio(_alone(result, c, "converter"), _alone(result, c, "soxr_oneshot")))
              for c in _conversions(result)]
    known = [x for _, x in ratios if x is not None]
    found.append({
        "label": f"audioring's converter within {TARGET_RATIO:g}× of python-soxr's one-shot `soxr.resample` (HQ): CPU "
                 "per second of audio for the same samples, no device, every conversion",
        "met": all(x <= TARGET_RATIO for x in known) if known and len(known) == len(ratios) else None,
        "measured": "; ".join(f"{conversion_text(c)}: {_times(x)} ({pct(_alone(result, c, 'converter'))} against "
                              f"{pct(_alone(result, c, 'soxr_oneshot'))})" for c, x in ratios),
    })
    found.append(_live_target(result))
    stall = result["stall"]
    converting = conversion_text(Conversion(stall["channels"], stall["in_rate"], stall["out_rate"]))
    for variant in stall["variants"]:
        label = (f"audioring loses 0 frames while the GIL is held ≥ {stall['required_s']:g} s (busy), converting "
                 f"{converting} — {variant['server']}")
        if "refused" in variant:
            found.append({"label": label, "met": None, "measured": f"not run: {variant['refused'][:200]}"})
            continue
        asked = [r for r in variant["runs"] if r["recorder"] == "audioring"]
        if not asked:
            continue
        judged = [r for r in asked if "error" not in r and r.get("stall_reached")]
        lost = [r["frames_lost"] for r in judged]
        measured = (f"frames lost per run: {fmt_runs(lost)} (the converter's own losses, device frames: "
                    f"{fmt_runs([r['converter_device_frames_lost'] for r in judged])}); stall held: "
                    f"{fmt_runs([r['held_s'] for r in judged], lambda x: f'{x:.2f} s')}; overflow flags "
                    f"{fmt_runs([r['overflow_flags'] for r in judged])}")
        redone = sum(len(r.get("short_attempts", [])) for r in asked)
        if redone:
            measured += f"; {redone} attempt(s) whose stall fell short of {stall['required_s']:g} s redone, unjudged"
        if len(asked) > len(judged):
            measured += f"; {len(asked) - len(judged)} run(s) not judged (stall still too short, or failed)"
        found.append({"label": label, "met": all(x == 0 for x in lost) if judged else None, "measured": measured})
    return found


def _cpu_cell(result: dict, row: str, c: Conversion) -> str:
    group = [r for r in result["runs"] if r["row"] == row
             and (r["channels"], r["in_rate"], r["out_rate"]) == (c.channels, c.in_rate, c.out_rate)]
    good = _runs(result, row, c)
    errors = [r["error"] for r in group if "error" in r]
    if not good:
        return f"error: {errors}" if errors else "—"
    median = _median_cpu(good)
    text = f"**{pct(median)}**"
    if len(good) > 1:
        text += f" ({fmt_runs([r['cpu_per_audio_s'] for r in good], pct)})"
    reference = _median_cpu(_runs(result, "audioring", c))
    if row not in ("audioring", "capture_only") and reference:
        text += f", {_times(median / reference)} audioring's"
    flags = ("flags not exposed" if any(r["overflow_flags"] is None for r in good)
             else "flags " + fmt_runs([r["overflow_flags"] for r in good]))
    text += (f"; {flags}; lost {fmt_runs([r['frames_lost'] for r in good])}; missed "
             f"{fmt_runs([r['jack']['process_errors'] for r in good])} "
             f"({sum(r['jack']['portaudio_late'] for r in good)})")
    if any("stop_error" in r for r in good):
        text += "; stop failed"
    return text + (f"; errors: {errors}" if errors else "")


def _offline_cell(found: Optional[dict], method: str) -> str:
    if not found or method not in found["methods"]:
        return "n/a"
    m = found["methods"][method]
    text = f"**{pct(m['cpu_per_audio_s'])}** (wall {pct(m['wall_per_audio_s'])})"
    reference = found["methods"].get("soxr_oneshot")
    if method != "soxr_oneshot" and reference:
        text += f", {_times(_ratio(m['cpu_per_audio_s'], reference['cpu_per_audio_s']))}"
    return text


def _error_text(e: Optional[dict]) -> str:
    if not e:
        return "n/a"
    if e["identical"]:
        return "0 (identical)"
    snr = "∞" if e["snr_db"] is None else f"{e['snr_db']:.1f} dB"
    text = f"{e['max_abs']:.2e}, SNR {snr}"
    if e["frames"] != e["reference_frames"]:
        text += f"; {e['frames']:,} frames against {e['reference_frames']:,}"
    return text


def markdown(result: dict) -> list:
    conversions = _conversions(result)
    header = "| | " + " | ".join(conversion_text(c) for c in conversions) + " |"
    rule = "|---|" + "---:|" * len(conversions)
    periods = ", ".join(f"{rate / 1000:g} kHz: {period_for(rate)}" for rate in sorted({c.in_rate for c in conversions}))
    lines = [
        "### CPU per second of audio on JACK (whole process)",
        "",
        f"JACK dummy at the input rate (periods {periods} frames), a tone per channel injected by a separate JACK "
        f"client; each recorder records the output rate in a fresh process, float32, buffer {result['buffer_s']} s; "
        f"{result['seconds']:g} s measured after {result['warmup_s']:g} s of warm-up. Each cell: **process CPU per "
        "second of audio** (`time.process_time`, all threads; 100% = one core; median, then run by run), and for the "
        "recipes the ratio to audioring's median; paInputOverflow flags; frames lost (output frames: device frames "
        "due by JACK's clock minus those received, beyond one period, plus audioring's converter's own losses); JACK "
        "cycles jackd logged as missed (in parentheses: those blamed on PortAudio's client).",
        "",
        header.replace("| |", "| recorder |", 1), rule,
    ]
    for row in ROWS:
        if any(r["row"] == row for r in result["runs"]):
            lines.append(f"| {ROW_LABELS[row]} | " + " | ".join(_cpu_cell(result, row, c) for c in conversions) + " |")
    if any(r["row"] == "capture_only" for r in result["runs"]):
        cells = []
        for c in conversions:
            converting, capture = _median_cpu(_runs(result, "audioring", c)), _median_cpu(_runs(result, "capture_only",
                                                                                                   c))
            cells.append("n/a" if converting is None or capture is None else pct(converting - capture))
        lines.append("| audioring: conversion's share (converting − capture alone, medians) | " + " | ".join(cells)
                     + " |")
    for row, reason in result.get("skipped", {}).items():
        lines += ["", f"{ROW_LABELS[row]}: not run ({reason})."]
    if result.get("tone_client_restarts"):
        lines += ["", f"The tone client was restarted {result['tone_client_restarts']} time(s) (the tones had not "
                  "arrived; that run was run again)."]
    lines += [
        "",
        "The jackd process and the tone client are not counted. Flags and missed cycles cover the whole worker run, "
        "frames lost only the measured window. Losses are counted in device frames (then scaled to output frames): "
        "a resampler's output count moves with its latency (by a few hundred frames, libsoxr's as well), and "
        "block-wise `resample_poly` rounds every block up (256 frames at 3:1 make 86; see the block-edge table).",
        "",
        "### The conversion alone (no device)",
        "",
    ]
    offline = result.get("offline", {})
    if "error" in offline:
        return lines + [f"Failed: {offline['error']}: {offline.get('stderr', '')[-500:]!r}", ""]
    found = [_offline(result, c) for c in conversions]
    lines += [
        "The same kind of signal (the tones, plus noise at 0.01 rms), float32, converted in one fresh process: "
        + ", ".join(f"{f['seconds']:g} s of {conversion_text(c)}" for c, f in zip(conversions, found) if f)
        + f"; medians of {len(next(iter(found[0]['methods'].values()))['cpu_runs']) if found[0] else '?'} "
        "repetitions taking turns. Each cell: **CPU per second of audio** (100% = one core), wall time per second of "
        "audio, and the ratio of CPU to python-soxr's one-shot. audioring's converter: `_core.Converter` as "
        f"`AudioRecord` builds it ({result['converter_chunk']}-frame steps into a ring), over a capture ring filled "
        "beforehand, timed from `start()` to the end of `stop()` (its thread converts everything, flushes libsoxr "
        "and exits; the timing thread waits without CPU). Chunks and blocks: the JACK period at the input rate.",
        "",
        header.replace("| |", "| method |", 1), rule,
    ]
    for method, label in METHODS.items():
        if any(f and method in f["methods"] for f in found):
            lines.append(f"| {label} | " + " | ".join(_offline_cell(f, method) for f in found) + " |")
    lines.append("| audioring on JACK, whole process (capture included) ÷ python-soxr one-shot | " + " | ".join(
        _times(_ratio(_median_cpu(_runs(result, "audioring", c)), _alone(result, c, "soxr_oneshot")))
        for c in conversions) + " |")
    libsoxr = offline.get("libsoxr", {})
    lines += [
        "",
        f"libsoxr: audioring's {libsoxr.get('audioring', '?')}, python-soxr's {libsoxr.get('python-soxr', 'n/a')}. "
        "Whole-process CPU on JACK also counts the capture (PortAudio's JACK client thread, the ring) and the "
        "wake-ups of each period, which the conversion alone does not.",
        "",
        "### Block-edge error",
        "",
        "Each output against a one-shot conversion of the same input, over their common length: max abs difference "
        "(full scale 1.0) and SNR; the lengths where they differ. Per JACK period, `resample_poly` rounds every "
        "block's output up, so its stream drifts ahead of the signal and the error grows with time; blocks of a "
        "multiple of the decimation make whole output frames, leaving the error of the block edges alone (each "
        "block filtered as if the signal were zero outside it).",
        "",
        "| conversion | scipy `resample_poly` per JACK period vs one-shot | the block edges alone: `resample_poly` "
        "per block of a multiple of the decimation vs one-shot | python-soxr `ResampleStream` per JACK period vs "
        "one-shot `resample` (scale) | audioring's converter vs python-soxr one-shot |",
        "|---|---:|---:|---:|---:|",
    ]
    for c, f in zip(conversions, found):
        if f:
            e = f["errors"]
            edges = _error_text(e.get("poly_edges_vs_oneshot"))
            lines.append(f"| {conversion_text(c)} | {f['period']}-frame blocks: "
                         f"{_error_text(e.get('poly_blocks_vs_oneshot'))} | "
                         + (f"{f['edge_block']}-frame blocks: {edges}" if "edge_block" in f else edges) + " | "
                         f"{f['period']}-frame chunks: {_error_text(e.get('soxr_stream_vs_oneshot'))} | "
                         f"{_error_text(e.get('converter_vs_soxr_oneshot'))} |")
    lines += ["", *_stall_lines(result), ""]
    return lines


def _stall_row(label: str, group: list, out_rate: int) -> str:
    good = [r for r in group if "error" not in r]
    errors = [r["error"] for r in group if "error" in r]
    if not good:
        return f"| {label} | error: {errors} | | | | | |"
    lost = []
    for r in good:
        text = f"{r['frames_lost']:,}"
        lost.append(text if r.get("stall_reached") else f"({text}: stall {r['held_s']:.2f} s, not judged)")
    worst = max(r["frames_lost"] for r in good)
    redone = sum(len(r.get("short_attempts", [])) for r in group)
    first = f"**{' / '.join(lost)}**" + (f" (up to {worst / out_rate:.3g} s)" if worst else "")
    first += (f"; {redone} short attempt(s) redone" if redone else "") + (f"; errors: {errors}" if errors else "")
    converter = ("—" if not any("device_frames_lost" in (r.get("conversion") or {}) for r in good)
                 else fmt_runs([r["converter_device_frames_lost"] for r in good]))
    blamed = sum(r["jack"]["portaudio_late"] for r in good)
    missed = f"{fmt_runs([r['jack']['process_errors'] for r in good])} ({blamed})"
    delivered = fmt_runs([(r["frames_delivered"], r["frames_due"]) for r in good], lambda p: f"{p[0]:,} of {p[1]:,}")
    cells = [label, first, fmt_runs([r["held_s"] for r in good], lambda x: f"{x:.2f} s"),
             fmt_runs([r["overflow_flags"] for r in good]), converter, missed, delivered]
    return "| " + " | ".join(cells) + " |"


def _stall_lines(result: dict) -> list:
    stall = result["stall"]
    c = Conversion(stall["channels"], stall["in_rate"], stall["out_rate"])
    lines = [
        f"### Frames lost while the GIL is held ≥ {stall['required_s']:g} s, converting {conversion_text(c)}",
        "",
        f"JACK dummy at {c.in_rate / 1000:g} kHz (period {stall['period']}), tone injected. The worker's main thread "
        f"holds the GIL in one C call (`sum(range(n))`, calibrated in the worker, aimed at {stall['aim_s']:g} s), from "
        f"{stall['pre_s']:g} s after the tone arrived; the window runs from just before the stall to "
        f"{stall['post_s']:g} s after it. A run is judged only if its measured stall reached {stall['required_s']:g} s "
        "(a short one is redone, aimed longer). Each row, run by run: **frames lost** as above (output frames: device "
        "frames due by JACK's clock minus those received, plus the converter's own losses); how long the GIL was "
        "held; paInputOverflow flags; the device frames audioring's converter itself lost; JACK cycles jackd logged "
        "as missed (in parentheses: those blamed on PortAudio's client); output frames delivered against due over "
        "the window (for scale: a resampler's output count also moves with its latency, by a few hundred frames).",
        "",
        "| server | recorder | frames lost | stall held | overflow flags | converter's own losses | JACK cycles missed "
        "| output frames delivered of due |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for variant in stall["variants"]:
        if "refused" in variant:
            notes.append(f"**{variant['server']}: not run — realtime scheduling was refused here** "
                         f"({variant['refused']}).")
            continue
        for recorder in dict.fromkeys(r["recorder"] for r in variant["runs"]):
            group = [r for r in variant["runs"] if r["recorder"] == recorder]
            label = "audioring `AudioRecord`, native conversion" if recorder == "audioring" else LABELS[recorder]
            lines.append(_stall_row(f"{variant['server']} | {label}", group, c.out_rate))
        late = sum(r["jack"]["driver_late"] for r in variant["runs"] if "jack" in r)
        blamed: dict = {}
        for r in variant["runs"]:
            for client, count in r.get("jack", {}).get("late_clients", {}).items():
                blamed[client] = blamed.get(client, 0) + count
        rt_workers = sum(1 for r in variant["runs"] if r.get("realtime_threads"))
        notes.append(f"{variant['server']}: jackd's threads with a realtime policy: "
                     f"{realtime_text(variant.get('jackd_scheduling', {}))}; runs whose recorder process had a "
                     f"realtime thread (its JACK client's): {rt_workers} of {len(variant['runs'])}; jackd's dummy "
                     f"driver woke late {late} times over all runs; clients jackd blamed for late cycles: "
                     + (", ".join(f"{k} {v}" for k, v in sorted(blamed.items())) or "none") + ".")
    lines += [
        "",
        *[f"- {note}" for note in notes],
        "",
        "A busy stall also keeps one core busy: without realtime scheduling (jackd `-r`), jackd, the tone client and "
        "the recorder's JACK thread share what is left of the machine, so cycles can be missed whatever the "
        "recorder (the stall case separates the two with a sleeping stall). The queue recipe with `resample_poly` in "
        "the consumer has the queue recipe's Python callback, so it loses what that recipe loses in the stall case; "
        "it is not run again here.",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    from harness import charts  # here, not at the top: every worker imports this module, and matplotlib is slow

    conversions = _conversions(result)
    series = []
    for row in ROWS:
        if any(r["row"] == row for r in result["runs"]):
            heights = [_median_cpu(_runs(result, row, c)) for c in conversions]
            series.append((f"JACK, whole process: {ROW_LABELS[row]}".replace("`", ""),
                           [math.nan if h is None else 100 * h for h in heights]))
    for method in ("converter", "soxr_oneshot"):
        heights = [_alone(result, c, method) for c in conversions]
        if any(h is not None for h in heights):
            series.append((f"alone: {METHODS[method]}".replace("`", ""),
                           [math.nan if h is None else 100 * h for h in heights]))
    with charts.figure(path, stamp, figsize=(9, 6.2), bottom=0.05) as (fig, ax):
        charts.grouped_bars(ax, [conversion_text(c) for c in conversions], series, annotate=lambda h: f" {h:.2g}")
        for index, c in enumerate(conversions):
            limit = {CONVERSIONS[0]: TARGET_MONO_CPU, CONVERSIONS[2]: TARGET_32_CPU}.get(c)
            if limit is not None:
                ax.hlines(100 * limit, index - 0.45, index + 0.45, colors="grey", linestyles=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylabel("CPU per second of audio (% of a core, median)")
        ax.set_title("Sample-rate conversion: recording cost on JACK, and the conversion alone\n"
                     "(dotted: audioring's target for that conversion)", fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1)
