"""The asyncio case's report (``cases/asyncio.py`` measures): targets and Markdown from the stored result."""

from __future__ import annotations

from harness.formatting import fmt_ns

TITLE = "asyncio consumers: wake latency and the cost of waiting (JACK)"
#: The targets: wake latency p99, and the CPU of the waiting consumers.
LATENCY_TARGET_NS = 1_000_000
IDLE_TARGET = 0.001  # of one core

LABELS = {
    "audioring": "audioring `AudioRecord.astream()`",
    "audioring_other": "audioring `astream()`, its watcher thread switched to SCHED_OTHER (for comparison)",
    "sd_asyncio": "sounddevice `InputStream` + `call_soon_threadsafe(queue.put_nowait, ...)`",
    "audioring_threads": "audioring `stream()` in a thread per consumer (`run_in_executor`)",
}


def percent(cpu_s: float, seconds: float) -> str:
    """CPU seconds over `seconds` of wall time, as a percentage of one core (also in the case's progress log)."""
    return f"{cpu_s / seconds * 100:.3f}%"


def _row(results: list, recipe: str):
    return next((r for r in results if r["recipe"] == recipe and "error" not in r), None)


def targets(result: dict) -> list:
    wake = _row(result["latency"], "audioring")
    idle = _row(result["idle"], "audioring")
    return [
        {"label": "`astream()` wake latency, from the callback that publishes the block to the consumer, p99 < 1 ms",
         "met": None if wake is None else wake["wake"]["p99_ns"] < LATENCY_TARGET_NS,
         "measured": "n/a" if wake is None else f"p99 {fmt_ns(wake['wake']['p99_ns'])} "
                                                  f"(p50 {fmt_ns(wake['wake']['median_ns'])})"},
        {"label": f"{result['consumers']} waiting `astream()` consumers, no audio arriving: no measurable CPU "
                  f"(< {IDLE_TARGET * 100:g}% of a core)",
         "met": None if idle is None else idle["paused_cpu_s"] / idle["seconds"] < IDLE_TARGET,
         "measured": "n/a" if idle is None else f"{idle['paused_cpu_s'] * 1000:.2f} ms of CPU in "
                                                  f"{idle['seconds']:g} s"},
    ]


def markdown(result: dict) -> list:
    lines = [
        f"JACK dummy, {result['rate']} Hz, period {result['period']}, {result['channels']} ch float32; one event "
        f"loop per recipe, each in a fresh process; every {result['period']}-frame block of a "
        f"{result['seconds']:g} s run. Wake latency: from the entry of the callback that publishes the block "
        "(audioring: its C callback, which publishes a `memcpy` after entry, timed by `publish_probe.cpp`; the "
        "recipe: its Python callback's first line, after cffi took the GIL, which favours it) to the awaiting "
        "consumer task having the block. The callback's own time (entry to return) is what it costs the audio "
        "thread: audioring's includes the doorbell's futex wake of the watcher thread (a SCHED_BATCH thread, which "
        "does not preempt the callback; the SCHED_OTHER row shows the alternative); the recipe's the copy and "
        "`call_soon_threadsafe`'s write to the loop's self-pipe. The recipe's publish (`call_soon_threadsafe`) to "
        "consumer is in the last column.",
        "",
        "| recipe | blocks | callback → consumer p50 / p99 / max | callback's own time p50 / p99 | "
        "recipe: publish → consumer p50 / p99 | overflow flags | JACK cycles missed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["latency"]:
        label = LABELS[r["recipe"]]
        if "error" in r:
            lines.append(f"| {label} | error: {r['error']} | | | | | |")
            continue
        w, c = r["wake"], r["callback"]
        publish = (f"{fmt_ns(r['publish']['median_ns'])} / {fmt_ns(r['publish']['p99_ns'])}" if "publish" in r
                   else "n/a")
        lines.append(f"| {label} | {r['blocks']} | **{fmt_ns(w['median_ns'])}** / **{fmt_ns(w['p99_ns'])}** / "
                     f"{fmt_ns(w['max_ns'])} | {fmt_ns(c['median_ns'])} / {fmt_ns(c['p99_ns'])} | {publish} | "
                     f"{r['overflow_flags']} | {r['jack']['process_errors']} |")
    seconds = result["idle_s"]
    lines += [
        "",
        f"Cost of {result['consumers']} consumers waiting on one loop: process CPU (all threads) over "
        f"{seconds:g} s, as % of one core. No audio: jackd stopped (SIGSTOP) for the measurement. Audio flowing: "
        "each consumer waits for a whole second of audio (the recipe's consumers collect a second of blocks).",
        "",
        "| recipe | no audio arriving | audio flowing, recorder alone | audio flowing, with the consumers | "
        "overflow flags |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["idle"]:
        label = LABELS[r["recipe"]]
        if "error" in r:
            lines.append(f"| {label} | error: {r['error']} | | | |")
            continue
        lines.append(f"| {label} | **{percent(r['paused_cpu_s'], seconds)}** | {percent(r['alone_cpu_s'], seconds)} "
                     f"| {percent(r['flowing_cpu_s'], seconds)} | {r['overflow_flags']} |")
    lines.append("")
    return lines
