"""The share case's report: its targets judged, its Markdown tables and its chart, from a stored result.

What is measured, and how, is ``cases/share.py``'s (its docstring describes the
five parts); this module reads only the result dict as stored in the JSON,
so a run and ``run.py --from-json`` render the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from harness.formatting import fmt_ns

TITLE = "One device, many processes: a shared recording read from other processes"

#: Target: audioring's wake-up across processes, p99 (1. in cases/share.py).
WAKE_TARGET_P99_NS = 200_000.0
#: Target: read(n) in a reader process, median, over the producer process's (2.).
READ_TARGET_RATIO = 1.1
#: Target: the producer's callback p99 with 8 spinning readers, over none's (3.).
CB_TARGET_RATIO = 1.2

#: Table labels.
LABELS = {
    "audioring_callback": "audioring `AudioRecord(share=)`, its capture callback → `attach().stream(480)`",
    "audioring": "audioring `Ring(share=)`, `write` from Python → `attach().stream(480)`",
    "mp_queue": "`multiprocessing.Queue` `put` / `get`",
    "shm_condition": "`SharedMemory` + `multiprocessing.Condition`",
    "pipe_stamp": "yardstick: `multiprocessing.Pipe` `send_bytes` of the 8-byte stamp alone",
    "native_futex": "floor: a C++ process waking another on a shared futex word, no Python",
    "mp_queues": "`AudioRecord.stream` → copy → 4 × `multiprocessing.Queue`",
}
#: Chart labels.
WAKE_SHORT = {"audioring_callback": "audioring,\ncallback", "audioring": "audioring,\nRing.write",
              "mp_queue": "mp.Queue", "shm_condition": "SharedMemory\n+ Condition",
              "pipe_stamp": "Pipe, stamp\n(yardstick)", "native_futex": "C++ futex\n(floor)"}
CB_SHORT = {"private": "private\nring", "none": "shared,\nno reader", "one": "1 reader", "eight": "8 readers",
            "eight_unpinned": "8 readers,\nunpinned"}
FAN_LABELS = {
    "audioring": "audioring: `AudioRecord(share=)`, 4 × `attach().stream(1024)`",
    "mp_queues": "recipe: `AudioRecord.stream(1024)`, copy, `put` on 4 `multiprocessing.Queue`s",
}


def _ok(result: dict, part: str) -> Optional[dict]:
    data = result.get(part)
    return data if data and "error" not in data else None


def targets(result: dict) -> list:
    found = []
    wake = _ok(result, "wake")
    for recipe, producer in (("audioring_callback", "a recorder's capture callback"),
                             ("audioring", "`Ring.write` from Python")):
        label = f"audioring wake-up across processes, published by {producer}: p99 < {fmt_ns(WAKE_TARGET_P99_NS)}"
        r = next((x for x in wake["results"] if x["recipe"] == recipe), None) if wake else None
        if r is not None:
            found.append({"label": label, "met": r["p99_ns"] < WAKE_TARGET_P99_NS if r.get("samples") else None,
                          "measured": f"median {fmt_ns(r.get('median_ns'))}, p99 {fmt_ns(r.get('p99_ns'))} "
                                      f"({r['samples']} blocks)"})
    read = _ok(result, "read")
    label = f"`read(n)` in a reader process: median ≤ {READ_TARGET_RATIO:g}× the producer process's, every n"
    if read:
        ratios = _read_ratios(read)
        found.append({"label": label, "met": max(ratios.values()) <= READ_TARGET_RATIO if ratios else None,
                      "measured": ", ".join(f"n = {n:,}: {x:.2f}×" for n, x in ratios.items())})
    callback = _ok(result, "callback")
    label = f"producer's callback p99 with 8 spinning reader processes ≤ {CB_TARGET_RATIO:g}× with none"
    if callback:
        rows = {r["key"]: r for r in callback["results"]}
        eight, base = rows.get("eight"), rows.get("none")
        met = None if not (eight and base) else eight["p99_ns"] <= CB_TARGET_RATIO * base["p99_ns"]
        found.append({"label": label, "met": met,
                      "measured": "n/a" if met is None else
                      f"{fmt_ns(eight['p99_ns'])} / {fmt_ns(base['p99_ns'])} = {eight['p99_ns'] / base['p99_ns']:.2f}×"
                      + (" (readers on other CPUs than the callback)" if eight["pinned"] else "")})
    return found


def _read_ratios(read: dict) -> dict:
    rows = {(r["side"], r["statement"], r["frames"]): r for r in read["results"]}
    return {n: rows[("reader", "read", n)]["median_ns"] / rows[("producer", "read", n)]["median_ns"]
            for n in read["sizes"] if ("reader", "read", n) in rows and ("producer", "read", n) in rows}


def _tails(r: dict) -> str:
    text = f"**{fmt_ns(r.get('median_ns'))}** / {fmt_ns(r.get('p99_ns'))}"
    return text + (f" / {fmt_ns(r['p999_ns'])}" if "p999_ns" in r else " / n/a")


def _markdown_wake(wake: dict) -> list:
    base = next((r for r in wake["results"] if r["recipe"] == "audioring_callback" and r.get("samples")), None)
    lines = [
        f"### 1. Producer → reader wake-up latency across processes ({wake['block_frames']}-frame blocks at "
        f"{wake['rate'] // 1000} kHz, one every {wake['block_frames'] / wake['rate'] * 1e3:g} ms)",
        "",
        f"Reader's `time.monotonic_ns()` on waking with the block minus the stamp the producer put in it just "
        f"before publishing. {wake['runs']} run(s) of {wake['seconds']:g} s per recipe, taking turns, fresh "
        f"processes each (spawn); the first {wake['skipped_blocks']} blocks of a run not counted. Median / p99 / "
        "p99.9; ratio = the recipe's over audioring's with its capture callback publishing.",
        "",
        "| recipe | wake-up: median / p99 / p99.9 | p99 ratio | max | producer's publish: median / p99 | "
        "after the publish returned: median / p99 | blocks counted | blocks missed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in wake["results"]:
        if not r.get("samples"):
            lines.append(f"| {LABELS[r['recipe']]} | no samples | | | | | 0 | {r['missed']} |")
            continue
        ratio = f"{r['p99_ns'] / base['p99_ns']:.1f}×" if base else "n/a"
        publish, after = r["publish"], r["after_publish"]
        lines.append(f"| {LABELS[r['recipe']]} | {_tails(r)} | {ratio} | {fmt_ns(r['max_ns'])} | "
                     f"{fmt_ns(publish.get('median_ns'))} / {fmt_ns(publish.get('p99_ns'))} | "
                     f"{fmt_ns(after.get('median_ns'))} / {fmt_ns(after.get('p99_ns'))} | {r['samples']:,} | "
                     f"{r['missed']} |")
    late = sum(r["late"] for r in wake["results"])
    lines += ["", "Producer's publish: from the stamp to the publishing call's return (stamping the block included), "
                  "part of every wake-up; after the publish returned: the rest, until the reader held the block (the "
                  "two add up block by block, not their percentiles). The first row publishes as a recording does: "
                  "`callback_timer.cpp` plays the device, calling the recorder's capture callback (no Python) with "
                  "a stamped block every 10 ms; the second publishes from Python (`Ring.write`), as the anchors do. "
                  "The native row is no Python at all: two C++ processes and a shared futex word "
                  "(`wake_floor.cpp`), the kernel's floor under every row. The pipe row is no recipe for blocks: the "
                  "8-byte stamp alone through a pipe, for the machine's floor of a Python process waking another. "
                  "Blocks missed: published while the reader was still busy with an earlier one (only the condition "
                  "recipe can miss one). "
                  f"Producer wake-ups that came after a block's due time: {late}.", ""]
    return lines


def _markdown_read(read: dict) -> list:
    rows = {(r["side"], r["statement"], r["frames"]): r for r in read["results"]}
    ratios = _read_ratios(read)
    lines = [
        f"### 2. `read(n)` in a reader process next to the producer's own (2 ch float32, {read['rate'] // 1000} kHz, "
        "recording)",
        "",
        f"Per call, median / p99 / p99.9 over batches (timeit-compiled loops, gc off), {read['rounds']} turns per "
        "process. numpy's `a[i:j]` of an array in the same process: what a view costs there.",
        "",
        "| n | producer process `rec.read(n)` | reader process `mic.read(n)` | reader / producer | "
        "numpy `a[i:j]` producer / reader |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in read["sizes"]:
        p, r = rows.get(("producer", "read", n)), rows.get(("reader", "read", n))
        sp, sr = rows.get(("producer", "slice", n)), rows.get(("reader", "slice", n))
        lines.append(f"| {n:,} | {_tails(p) if p else 'n/a'} | {_tails(r) if r else 'n/a'} | "
                     + (f"**{ratios[n]:.2f}×**" if n in ratios else "n/a") + " | "
                     + (f"{fmt_ns(sp['median_ns'])} / {fmt_ns(sr['median_ns'])}" if sp and sr else "n/a") + " |")
    p, r = rows.get(("producer", "is_intact", 1600)), rows.get(("reader", "is_intact", 1600))
    if p and r:
        lines.append(f"| `is_intact(view)` | {_tails(p)} | {_tails(r)} | "
                     f"{r['median_ns'] / p['median_ns']:.2f}× | |")
    lines.append("")
    return lines


def _markdown_callback(cb: dict) -> list:
    rows = {r["key"]: r for r in cb["results"]}
    base = rows["none"]
    lines = [
        f"### 3. The producer's capture callback with reader processes spinning on `read({cb['read_frames']})` + "
        "`is_intact(view)`",
        "",
        f"`audioring_capture_callback` called by `callback_timer.cpp` as PortAudio calls it, {cb['block_frames']}-"
        f"frame {cb['channels']} ch float32 blocks into a recorder's ring; the rows take turns, {cb['rounds']} rounds "
        f"of {cb['seconds']:g} s each. Each call timed alone (median / p99 / p99.9, the clock's own cost included); "
        f"\"batches\": per-call median of batches of {cb['chunk']:,} calls timed whole (as the callback case). "
        + (f"Pinned rows: the callback on CPU {cb['producer_cpus']}, the readers on CPU {cb['reader_cpus']}."
           if cb["pinning"] else "One CPU: nothing pinned.")
        + " Ratio: p99 over the shared ring's p99 with no reader.",
        "",
        "| ring, readers | per call: median / p99 / p99.9 | p99 ratio | batches, per call | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in cb["results"]:
        lines.append(f"| {r['label']} | {_tails(r)} | {r['p99_ns'] / base['p99_ns']:.2f}× | "
                     f"{fmt_ns(r['batch_median_ns'])} | {fmt_ns(r['max_ns'])} |")
    rates = cb["spinner_reads_per_s"]
    lines += ["", "Readers' loops (`read` + `is_intact`) per second of spinning, each: "
                  + (f"{min(rates):,.0f} ... {max(rates):,.0f}. " if rates else "none. ")
              + "The unpinned row is not judged: there the 8 readers also take the callback's CPU. A shared ring's "
                "producer wakes the futex word after every block, waiters or not (other processes' waiters cannot "
                "announce themselves on a read-only mapping): the private row shows what that costs. "
              + ("The rings held the last block afterwards." if cb["verified"] else
                 "✗ a ring did not hold the last block afterwards."), ""]
    return lines


def _markdown_fanout(fan: dict) -> list:
    lines = [
        f"### 4. {fan['channels']} ch × {fan['rate'] // 1000} kHz float32 fanned out to {fan['readers']} reader "
        "processes",
        "",
        f"CPU (user + system, all threads, `/proc/<pid>/stat`) of the producer and the {fan['readers']} readers over "
        f"{fan['seconds']:g} s, after every reader had its first block and {fan['warmup_s']:g} s more; 100% = one "
        f"core. Blocks of {fan['block_frames']} frames ({fan['block_frames'] * fan['channels'] * 4 // 1024} KiB). "
        "Frames per reader: delivered / lost, over the whole run (the producer's recorded frames for scale).",
        "",
        "| recipe | total CPU | producer | readers (each) | frames recorded | per reader: delivered / lost | "
        "ramp breaks |",
        "|---|---:|---:|---|---:|---|---:|",
    ]
    base = next((r for r in fan["results"] if r["recipe"] == "audioring"), None)
    for r in fan["results"]:
        wall = r["wall_s"]
        ratio = f" ({r['total_cpu_s'] / base['total_cpu_s']:.1f}×)" if base and r is not base and \
            base["total_cpu_s"] > 0 else ""
        lines.append(
            f"| {FAN_LABELS[r['recipe']]} | **{100 * r['total_core_fraction']:.1f}%**{ratio} | "
            f"{100 * r['producer_cpu_s'] / wall:.1f}% | "
            + ", ".join(f"{100 * c / wall:.1f}%" for c in r["readers_cpu_s"])
            + f" | {r['frames_recorded']:,} | "
            + ", ".join(f"{x['frames']:,} / {x['lost']:,}" for x in r["readers"])
            + f" | {sum(x['wrong_blocks'] for x in r['readers'])} |")
    lines += ["", "The recipe's readers get every block the producer sent (a queue does not drop; it grows); "
                  "audioring's readers stream from the shared ring and lose frames only if lapped "
                  "(`OverrunError`). Ramp breaks: blocks whose first or last frame was not the next frame number.",
              ""]
    return lines


def _markdown_ring_write(rw: dict) -> list:
    rows = [r for r in rw["results"] if r["method"] == "ring_memfd"]
    memcpy = {r["block_frames"]: r for r in rw["results"] if r["method"] == "memcpy"}
    zero = {r["block_frames"]: r for r in rows if r["readers"] == 0}
    lines = [
        "### 5. `FrameRing::write` (C++) with native reader threads spinning on `written()` + `intact()`",
        "",
        f"`{Path(rw['command'].split()[0]).name} {' '.join(rw['command'].split()[1:])}`: mirrored memory, "
        f"{rows[0]['channels'] if rows else '?'} ch float32, ring of {rw['ring_seconds']:g} s at {rw['rate']} Hz; "
        f"{rw['reps']} repetitions of {rw['passes']} passes, every reader count taking its turn each repetition. "
        "The writer thread's CPU time per write (its CPU clock: preemption excluded), median and p99 over "
        "repetitions; " + ("writer pinned to one CPU, readers on the others." if rw.get("pinned") else
                           "nothing pinned (one CPU).") + f" Compiler: {rw['compiler']}.",
        "",
        "| block frames | reader threads | CPU ns per write: median / p99 | × no readers | wall ns per write | "
        "reader checks per µs | memcpy ns per block |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda x: (x["block_frames"], x["readers"])):
        z = zero.get(r["block_frames"])
        m = memcpy.get(r["block_frames"])
        lines.append(f"| {r['block_frames']:,} | {r['readers']} | **{r['cpu_ns_per_write_median']:,.0f}** / "
                     f"{r['cpu_ns_per_write_p99']:,.0f} | "
                     + (f"{r['cpu_ns_per_write_median'] / z['cpu_ns_per_write_median']:.2f}×" if z else "n/a")
                     + f" | {r['ns_per_write_median']:,.0f} | {r['reader_checks_per_s'] / 1e6:,.1f} | "
                     + (f"{m['cpu_ns_per_write_median']:,.0f}" if m else "n/a") + " |")
    lines += ["", "Every write checked out." if rw.get("verified") else "✗ a write did not check out.", ""]
    return lines


def markdown(result: dict) -> list:
    lines = []
    for part, render in (("wake", _markdown_wake), ("read", _markdown_read), ("callback", _markdown_callback),
                         ("fanout", _markdown_fanout), ("ring_write", _markdown_ring_write)):
        data = result.get(part)
        if data is None:
            continue
        if "error" in data:
            lines += [f"Part `{part}` failed: {data['error']}", ""]
            continue
        lines += render(data)
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    from harness import charts

    with charts.figure(path, stamp, 2, 3, figsize=(14, 8.5), bottom=0.04) as (fig, axes):
        ax = axes[0, 0]
        wake = _ok(result, "wake")
        if wake:
            recipes = [r for r in wake["results"] if r.get("samples")]
            charts.grouped_bars(ax, [WAKE_SHORT[r["recipe"]] for r in recipes],
                                [(q, [r.get(k, math.nan) / 1e3 for r in recipes])
                                 for q, k in (("median", "median_ns"), ("p99", "p99_ns"), ("p99.9", "p999_ns"))],
                                annotate=lambda h: f"{h:.0f}")
            ax.axhline(WAKE_TARGET_P99_NS / 1e3, color="grey", linestyle=":", linewidth=1)
            ax.set_yscale("log")
            ax.set_ylim(10, ax.get_ylim()[1] * 3)  # room for the labels
            ax.set_ylabel("µs")
            ax.legend(fontsize=7)
        ax.set_title("1. wake-up latency across processes", fontsize=9)

        ax = axes[0, 1]
        read = _ok(result, "read")
        if read:
            rows = {(r["side"], r["statement"], r["frames"]): r for r in read["results"]}
            charts.grouped_bars(ax, [f"n = {n:,}" for n in read["sizes"]],
                                [(f"{side} process", [rows[(side, "read", n)]["median_ns"] for n in read["sizes"]])
                                 for side in ("producer", "reader")], annotate=lambda h: f"{h:.0f}")
            ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
            ax.set_ylabel("ns per read(n), median")
            ax.legend(fontsize=7)
        ax.set_title("2. read(n): producer's process vs a reader process", fontsize=9)

        ax = axes[0, 2]
        cb = _ok(result, "callback")
        if cb:
            charts.grouped_bars(ax, [CB_SHORT[r["key"]] for r in cb["results"]],
                                [(q, [r.get(k, math.nan) for r in cb["results"]])
                                 for q, k in (("median", "median_ns"), ("p99", "p99_ns"), ("p99.9", "p999_ns"))],
                                annotate=lambda h: f"{h:.0f}")
            ax.set_yscale("log")
            ax.set_ylim(10, ax.get_ylim()[1] * 3)
            ax.set_ylabel("ns per callback (each call timed)")
            ax.legend(fontsize=7)
        ax.set_title("3. producer's callback with spinning reader processes", fontsize=9)

        ax = axes[1, 0]
        fan = _ok(result, "fanout")
        if fan:
            names = [{"audioring": "audioring", "mp_queues": "4 × mp.Queue"}[r["recipe"]] for r in fan["results"]]
            producer = [100 * r["producer_cpu_s"] / r["wall_s"] for r in fan["results"]]
            readers = [100 * sum(r["readers_cpu_s"]) / r["wall_s"] for r in fan["results"]]
            ax.bar(names, producer, label="producer")
            ax.bar(names, readers, bottom=producer, label=f"{fan['readers']} readers")
            for k, (p, r) in enumerate(zip(producer, readers)):
                ax.text(k, p + r, f"{p + r:.1f}%", ha="center", va="bottom", fontsize=7)
            ax.set_ylabel("% of one core")
            ax.legend(fontsize=7)
        ax.set_title("4. 32 ch × 192 kHz to 4 reader processes: total CPU", fontsize=9)

        ax = axes[1, 1]
        rw = _ok(result, "ring_write")
        if rw:
            rows = [r for r in rw["results"] if r["method"] == "ring_memfd"]
            blocks = sorted({r["block_frames"] for r in rows})
            readers = sorted({r["readers"] for r in rows})
            by = {(r["block_frames"], r["readers"]): r for r in rows}
            charts.grouped_bars(ax, [f"{b} frames" for b in blocks],
                                [(f"{k} reader threads", [by[(b, k)]["cpu_ns_per_write_median"] if (b, k) in by
                                                          else math.nan for b in blocks]) for k in readers],
                                annotate=lambda h: f"{h:.0f}")
            ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
            ax.set_ylabel("writer CPU ns per write, median")
            ax.legend(fontsize=7)
        ax.set_title("5. FrameRing::write with native reader threads", fontsize=9)
        axes[1, 2].axis("off")
        for ax in axes.flat:
            ax.grid(True, axis="y", which="both", alpha=0.3)
        fig.suptitle("One device, many processes", fontsize=11)
