"""The stall case's report (``cases/stall.py`` measures): targets, Markdown and chart from the stored result."""

from __future__ import annotations

import math
from pathlib import Path

from harness import charts
from harness.formatting import fmt_runs
from harness.gil import HOLDS
from harness.recorders import LABELS, RECORDERS
from harness.servers import realtime_text

TITLE = "Frames lost while Python holds the GIL (JACK, ramp injected)"


def _judged(runs: list, name: str, hold: str) -> list:
    """Runs that count for a stall target: no error, and the measured stall reached its length."""
    return [r for r in runs if r["recorder"] == name and r["hold"] == hold and "error" not in r
            and r.get("stall_reached")]


def targets(result: dict) -> list:
    found = []
    for variant in result["variants"]:
        for hold in ("busy", "sleep"):
            label = (f"audioring loses 0 frames while the GIL is held ≥ {result['required_s']:g} s, "
                     f"{HOLDS[hold].split(', ', 1)[1]} — {variant['server']}")
            if "refused" in variant:
                found.append({"label": label, "met": None, "measured": f"not run: {variant['refused'][:200]}"})
                continue
            asked = [r for r in variant["runs"] if r["recorder"] == "audioring" and r["hold"] == hold]
            if not asked:
                continue
            judged = _judged(variant["runs"], "audioring", hold)
            lost = [r["ramp"].get("frames_lost") for r in judged]
            measured = (f"frames lost per run: {fmt_runs(lost)}; stall held: "
                        f"{fmt_runs([r['held_s'] for r in judged], lambda x: f'{x:.2f} s')}")
            redone = sum(len(r.get("short_attempts", [])) for r in asked)
            if redone:
                measured += (
                    f"; {redone} attempt(s) whose stall fell short of {result['required_s']:g} s redone, unjudged"
                )
            if len(asked) > len(judged):
                measured += f"; {len(asked) - len(judged)} run(s) not judged (stall still too short, or failed)"
            found.append({"label": label, "met": (all(x == 0 for x in lost) if judged else None),
                          "measured": measured})
    return found


def _cell(group: list, rate: int, required_s: float) -> str:
    if not group:
        return "n/a"
    errors = [r["error"] for r in group if "error" in r]
    good = [r for r in group if "error" not in r]
    parts = []
    for r in good:
        lost = r["ramp"].get("frames_lost")
        text = "?" if lost is None else f"{lost:,}"
        if r["hold"] != "none" and not r.get("stall_reached"):
            text = f"({text}: stall {r['held_s']:.2f} s < {required_s:g} s, not judged)"
        parts.append(text)
    worst = max((r["ramp"].get("frames_lost") or 0 for r in good), default=0)
    text = "**" + " / ".join(parts) + "**" + (f" (up to {worst / rate:.3g} s)" if worst else "")
    if any(r["overflow_flags"] is None for r in good):
        flags = "flags not exposed"
    else:
        total = sum(r["overflow_flags"] for r in good)
        flags = f"{total} flag{'' if total == 1 else 's'}"
    missed = sum(r["jack"]["process_errors"] for r in good)
    late = sum(r["jack"]["portaudio_late"] for r in good)
    held = ", ".join(f"{r['held_s']:.2f}" for r in good if r["hold"] != "none")
    text += f"; {flags}; missed {missed} ({late})" + (f"; held {held} s" if held else "")
    retried = sum(len(r.get("short_attempts", [])) for r in group)
    if retried:
        text += f"; {retried} short attempt(s) redone"
    return text + (f"; errors: {errors}" if errors else "")


def markdown(result: dict) -> list:
    rate = result["rate"]
    lines = [
        f"JACK dummy at {rate // 1000} kHz, period {result['period']}, {result['channels']} ch; recorders keep "
        f"{result['buffer_s']} s. Each cell, run by run (separated by /): **frames lost** (jumps in the ramp the "
        "recorder kept: expected frames by JACK's clock minus frames received); then paInputOverflow flags the "
        "recorder saw, JACK cycles jackd logged as missed (in parentheses: those it blamed on PortAudio's client, "
        f"i.e. the recorder's process thread was late), and how long the GIL was really held. Stalls aim at "
        f"{result['aim_s']:g} s; a run is judged only if its measured stall reached {result['required_s']:g} s.",
        "",
    ]
    columns = [h for h in HOLDS if any(r["hold"] == h for v in result["variants"] for r in v.get("runs", []))]
    lines += ["| server | recorder | " + " | ".join(HOLDS[h] for h in columns) + " |",
              "|---|---|" + "---:|" * len(columns)]
    notes = []
    for variant in result["variants"]:
        if "refused" in variant:
            notes.append(f"**{variant['server']}: not run — realtime scheduling was refused here** "
                         f"({variant['refused']}).")
            continue
        for name in RECORDERS:
            groups = [[r for r in variant["runs"] if r["recorder"] == name and r["hold"] == h] for h in columns]
            if any(groups):
                lines.append(f"| {variant['server']} | {LABELS[name]} | "
                             + " | ".join(_cell(g, rate, result["required_s"]) for g in groups) + " |")
        late = sum(r["jack"]["driver_late"] for r in variant["runs"] if "jack" in r)
        rt_workers = sum(1 for r in variant["runs"] if r.get("realtime_threads"))
        notes.append(f"{variant['server']}: jackd's threads with a realtime policy: "
                     f"{realtime_text(variant.get('jackd_scheduling', {}))}; runs whose recorder "
                     f"process had a realtime thread (its JACK client's): {rt_workers} of {len(variant['runs'])}; "
                     f"jackd's dummy driver woke late {late} times over all runs; ramp client restarts: "
                     f"{variant.get('ramp_restarts', 0)}.")
    lines += ["", *[f"- {note}" for note in notes], "",
              "The tflite-support reference ignores the status flags in its callback (\"not exposed\"). PortAudio's "
              "JACK host API flags paInputOverflow on every open stream whenever JACK reports an xrun anywhere, so "
              "flags can come without a frame lost by that recorder. A stall longer than rtmixer's ring "
              f"({1 << int(result['buffer_s'] * rate - 1).bit_length():,} frames here) would end its recording for "
              "good (rtmixer drops the recording action when the ring is full). Without realtime scheduling, while "
              "`sum(range(n))` keeps one core busy, jackd, the ramp client and every recorder's process thread share "
              "the other core(s).", ""]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    rate = result["rate"]
    groups, keys = [], []
    for variant in result["variants"]:
        if "refused" in variant:
            continue
        for hold in HOLDS:
            if any(r["hold"] == hold for r in variant["runs"]):
                keys.append((variant["realtime"], hold))
                groups.append(f"{'jackd -R' if variant['realtime'] else 'jackd -r'}\n"
                              f"{HOLDS[hold].split(' (')[0]}")
    series = []
    for name in RECORDERS:
        heights = []
        for realtime, hold in keys:
            runs = next(v["runs"] for v in result["variants"] if v["realtime"] == realtime and "runs" in v)
            lost = [r["ramp"].get("frames_lost") or 0 for r in runs if r["recorder"] == name and r["hold"] == hold
                    and "ramp" in r and (hold == "none" or r.get("stall_reached"))]
            heights.append(max(lost) / rate if lost else math.nan)
        series.append((LABELS[name].replace("`", ""), heights))
    with charts.figure(path, stamp, figsize=(9, 5.6), bottom=0.05) as (fig, ax):
        charts.grouped_bars(ax, groups, series, annotate=lambda h: f" {h * rate:,.0f}")
        ax.set_ylabel("audio lost (s; label: frames), worst judged run")
        ax.set_ylim(0, max(0.01, ax.get_ylim()[1] * 1.15))
        ax.set_title(f"Frames lost while the GIL is held ≥ {result['required_s']:g} s (JACK dummy {rate // 1000} kHz)",
                     fontsize=11)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
