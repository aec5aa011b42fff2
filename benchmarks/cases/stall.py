"""Frames lost while Python holds the GIL, on a JACK dummy server at 48 kHz, with a ramp injected.

Each recorder (stereo, a fresh process per run: ``worker.py``) records from
PortAudio's JACK device while a separate JACK client feeds every PortAudio
input port a frame-clock ramp (``harness/ramp.py``). Once the ramp arrives,
the worker's main thread holds the GIL in ONE C call, then records on for
0.7 s and stops. Two stalls, side by side for every recorder:

* **busy**: ``sum(range(n))``, CPU-bound; it never releases the GIL and its
  time grows linearly with n. n is calibrated in the process that stalls,
  from the fastest of three probes of at least 0.25 s each, aiming at 2.6 s
  (as ``tests/test_record_servers.py`` does), so the stall lasts at least
  2 s (quick: 0.65 s and 0.5 s). It also keeps one core busy: on a 2-core
  machine the audio threads share the other.
* **sleeping**: ``usleep`` called through ``ctypes.PyDLL``, which keeps the GIL
  held and the core idle: the GIL alone, without CPU starvation.

The full run adds a **baseline** (Python sleeps without the GIL: what a
recorder loses when nothing stalls). A stall's target is judged only on runs
whose *measured* stall reached 2 s; a shorter busy stall is run again,
recalibrated and aimed longer (at most three attempts; short attempts stay in
the JSON, never judged).

Frames lost = the jumps in the ramp of what the recorder holds (its latest
5 s, or everything its consumer took): the same method for every recorder.
Also reported: paInputOverflow flags the recorder saw, the cycles jackd
logged as missed (and whom it blamed), and whether the threads really ran
with realtime scheduling.

Server variants: jackd ``-r`` (no realtime scheduling, as the test servers
run) and, with ``realtime``, jackd ``-R`` (``JackServer(realtime=True)``);
if the machine refuses realtime scheduling, the report says so and has no
such rows.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Optional

from harness import charts
from harness.context import RunContext
from harness.formatting import fmt_runs
from harness.gil import AIM_S, HOLDS, MAX_ATTEMPTS, REQUIRED_S, holder, until_stall_reached
from harness.ramp import RampSource, ramp_gaps
from harness.recorders import LABELS, RECORDERS, installed
from harness.servers import SERVER_KINDS, JackLog, RealtimeUnavailable, jack_server, realtime_text, scheduling
from harness.workers import run_worker

TITLE = "Frames lost while Python holds the GIL (JACK, ramp injected)"
RATE = 48000
PERIOD = 256
CHANNELS = 2
BUFFER_S = 5
PRE_S = 0.3
POST_S = 0.7
#: realtime -> ((hold, runs per recorder, recorders), ...). Quick: a smoke run; busy for audioring and the reference,
#: sleeping for audioring.
_ALL = tuple(RECORDERS)
PLAN = {
    "full": {False: (("busy", 2, _ALL), ("sleep", 2, _ALL), ("none", 1, _ALL)),
             True: (("busy", 2, _ALL), ("sleep", 1, _ALL))},
    "quick": {False: (("busy", 1, ("audioring", "tflite")), ("sleep", 1, ("audioring",))),
              True: (("busy", 1, ("audioring",)),)},
}


# ---- in the worker process ----------------------------------------------------------------


def worker(spec: dict) -> dict:
    import sounddevice as sd

    from harness.recorders import open_recorder
    from harness.servers import jack_device

    hold, calibration = holder(spec["hold"], spec["aim_s"])
    rec = open_recorder(spec["recorder"], jack_device(sd), CHANNELS, RATE, BUFFER_S * RATE, keep=True)
    try:
        rec.start()
        deadline = time.monotonic() + 10
        while not rec.has_signal():
            if time.monotonic() > deadline:
                raise RuntimeError("the ramp did not arrive within 10 s")
            time.sleep(0.01)
        time.sleep(PRE_S)
        threads = scheduling(os.getpid())
        t0 = rec.stream_time
        started = time.perf_counter()
        hold()  # ONE C call: holds the GIL throughout
        held = time.perf_counter() - started
        time.sleep(POST_S)
        t1 = rec.stream_time
        rec.stop()
        return {
            "held_s": held,
            "calibration": calibration,
            "stream_time_s": t1 - t0,
            "overflow_flags": rec.overflow_flags(),
            "frames_received": rec.frames_received(),
            "ramp": ramp_gaps(rec.channel0()),
            "realtime_threads": threads["realtime_threads"],
            "notes": rec.notes(),
        }
    finally:
        rec.close()


# ---- in the harness -------------------------------------------------------------------------


def _one_run(server, ramp: RampSource, name: str, hold: str, ctx: RunContext) -> dict:
    """One judged run of `name` with stall `hold`; a busy stall that fell short is redone, aimed longer."""

    def attempt(aim: float, number: int) -> Optional[dict]:
        spec = {"case": "stall", "recorder": name, "hold": hold, "aim_s": aim}
        died = ramp.ensure_running()
        if died:
            ctx.log(f"  stall: the ramp client had exited ({died[-300:]!r}); restarted it")
        log = JackLog(server)
        result = run_worker(spec, timeout=60 + 3 * aim, env=server.env)
        if "the ramp did not arrive" in result.get("stderr", "") and number < MAX_ATTEMPTS:
            ctx.log(f"  stall: {name}: the ramp did not arrive; restarting the ramp client "
                    f"(its log: {ramp.log_tail()[-300:]!r})")
            ramp.restart()
            return None
        result.update(recorder=name, hold=hold, aim_s=aim, attempt=number, jack=log.since())
        return result

    def short(result: dict) -> None:
        ctx.log(f"  stall: {name} {hold}: held only {result['held_s']:.2f} s "
                f"(< {REQUIRED_S[ctx.mode]:g} s): not judged, recalibrating and aiming longer")

    return until_stall_reached(attempt, hold, ctx.mode, short)


def _variant(realtime: bool, ctx: RunContext) -> dict:
    variant: dict = {"realtime": realtime, "server": SERVER_KINDS[realtime], "runs": []}
    try:
        with jack_server(RATE, PERIOD, CHANNELS, realtime=realtime) as server:
            variant["jackd_scheduling"] = scheduling(server.pid)
            with RampSource(server.name, server.env, Path(server.directory) / "ramp.log") as ramp:
                for hold, runs, recorders in PLAN[ctx.mode][realtime]:
                    for repetition in range(runs):
                        for name in installed(recorders):
                            result = _one_run(server, ramp, name, hold, ctx)
                            result["repetition"] = repetition
                            variant["runs"].append(result)
                            ctx.log(f"  stall [{'-R' if realtime else '-r'}] {name:9} {hold:5}: " + (
                                f"ERROR {result['error']}: {result.get('stderr', '')[-300:]!r}" if "error" in result
                                else f"held {result['held_s']:.2f} s, {result['ramp'].get('frames_lost')} frames lost,"
                                     f" flags {result['overflow_flags']}, {result['jack']['process_errors']} JACK "
                                     f"cycles missed"))
                variant["ramp_restarts"] = ramp.restarts
    except RealtimeUnavailable as error:
        variant["refused"] = str(error)
        ctx.log(f"  stall: realtime jackd refused here: {error}")
    return variant


def run(ctx: RunContext) -> dict:
    variants = [_variant(False, ctx)]
    if ctx.realtime:
        variants.append(_variant(True, ctx))
    return {"rate": RATE, "period": PERIOD, "channels": CHANNELS, "buffer_s": BUFFER_S, "aim_s": AIM_S[ctx.mode],
            "required_s": REQUIRED_S[ctx.mode], "variants": variants}


# ---- judging and reporting -------------------------------------------------------------------


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
