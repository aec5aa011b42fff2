#!/usr/bin/env python3
"""Benchmark the frame ring: read latency from Python, write throughput in C++.

Part 1 (in this process, through the public API): the time of
``Ring.latest(n)`` (zero-copy view) and ``Ring.latest(n, copy=True)`` for
n = 1, 10, ..., 10**7 frames of a filled stereo float32 ring of more than
10**7 frames. Calls are timed in batches with ``time.perf_counter_ns``; the
median and 90th percentile are over batches, per call.

Part 2 (a separate C++ program, ``benchmarks/ring_write.cpp``): throughput of
the native producer path ``FrameRing::write`` on mirrored (memfd) and plain
memory next to ``std::memcpy`` of the same bytes, measured in the same run. It
is configured and built with CMake (Release) into ``build/bench``.

Writes ``benchmarks/results/ring.json`` (everything) and
``benchmarks/results/ring.md`` (tables stamped with machine, versions, date
and command) and prints the Markdown at the end.

Usage::

    python3 benchmarks/bench_ring.py           # full run, under 3 minutes
    python3 benchmarks/bench_ring.py --quick   # under 30 seconds, for a smoke test

Absolute times vary between machines (and between runs on a shared machine);
compare the columns of one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import audioring
from _report import (
    Quietness,
    build_targets,
    cmake_cache,
    cpu_text,
    fmt_ns,
    fmt_size,
    machine_stamp,
    quietness_text,
    run_checked,
    write_atomically,
)

_REPO = Path(__file__).resolve().parent.parent
_CHANNELS = 2
_DTYPE = np.dtype("float32")
_LARGEST = 10**7
#: Ring capacity: the largest read plus 2**20 frames of headroom.
_CAPACITY = _LARGEST + 2**20
#: How much worse (median, largest vs. one frame) zero-copy latest() may get and still count as flat.
_FLAT_LIMIT = 3.0

# Timing budgets: (seconds per size and mode, least rounds, most rounds, least ns per batch).
_BUDGET = {"full": (3.0, 25, 3000, 1_000_000), "quick": (0.2, 7, 300, 300_000)}


# ---- part 1: latest() through the public API ------------------------------------


def _filled_ring() -> audioring.Ring:
    ring = audioring.Ring(channels=_CHANNELS, capacity=_CAPACITY, dtype=_DTYPE)
    block_frames = 2**20
    ramp = np.arange(block_frames * _CHANNELS, dtype=_DTYPE).reshape(block_frames, _CHANNELS)
    while ring.frames_written < ring.capacity + block_frames:
        ring.write(ramp)
    # Sanity: the newest frame is the ramp's last one, through both kinds of read.
    assert np.array_equal(ring.latest(1), ramp[-1:]), "ring content is not what was written"
    assert np.array_equal(ring.latest(3, copy=True), ramp[-3:]), "copied content is not what was written"
    return ring


def _time_latest(ring: audioring.Ring, copy: bool, sizes: list, budget: tuple) -> list:
    """Per-call ns of latest(n) for each n, in batches that grow until one takes min_batch_ns.

    Zero-copy views: the sizes take turns batch by batch, which spreads any slow
    stretch of a shared machine over every size alike and keeps the ratio
    between sizes fair (a view touches no frame data, so the order cannot
    change what is measured). Copies: each size runs back to back, the steady
    state of repeated reads; taking turns would let the 80 MB copies evict the
    smaller ones' data from the cache.
    """
    seconds, least, most, min_batch_ns = budget
    latest = ring.latest
    clock = time.perf_counter_ns

    def batch(frames: int, calls: int) -> int:
        loop = range(calls)
        if copy:
            start = clock()
            for _ in loop:
                latest(frames, copy=True)
            return clock() - start
        start = clock()
        for _ in loop:
            latest(frames)
        return clock() - start

    calls = {}
    for frames in sizes:
        count = 1
        batch(frames, count)  # warm-up
        while True:
            elapsed = batch(frames, count)
            if elapsed >= min_batch_ns or count >= 1 << 20:
                break
            count *= 2 if elapsed * 4 > min_batch_ns else 8
        calls[frames] = count
    per_call: dict = {frames: [] for frames in sizes}
    for group in ([sizes] if not copy else [[frames] for frames in sizes]):
        deadline = time.perf_counter() + seconds * len(group)
        rounds = 0
        while rounds < most and (rounds < least or time.perf_counter() < deadline):
            for k in range(len(group)):
                frames = group[(k + rounds) % len(group)]
                per_call[frames].append(batch(frames, calls[frames]) / calls[frames])
            rounds += 1
    results = []
    for frames in sizes:
        times = sorted(per_call[frames])
        median = statistics.median(times)
        nbytes = frames * _CHANNELS * _DTYPE.itemsize
        results.append(
            {
                "mode": "copy" if copy else "view",
                "frames": frames,
                "bytes": nbytes,
                "calls_per_batch": calls[frames],
                "batches": len(times),
                "median_ns": median,
                "p90_ns": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))],
                "min_ns": times[0],
                "gbps_median": nbytes / median,  # bytes per ns == GB/s
            }
        )
        print(
            f"  latest({frames:>8}{', copy=True' if copy else ''}): median {median:12.1f} ns  "
            f"({len(times)} batches x {calls[frames]})",
            file=sys.stderr,
        )
    return results


def bench_latest(mode: str) -> dict:
    ring = _filled_ring()
    budget = _BUDGET[mode]
    sizes = [10**k for k in range(8)]
    results = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: no collector pauses inside batches
    try:
        for copy in (False, True):
            results += _time_latest(ring, copy, sizes, budget)
    finally:
        if gc_was_enabled:
            gc.enable()
    view = {r["frames"]: r for r in results if r["mode"] == "view"}
    ratio = view[_LARGEST]["median_ns"] / view[1]["median_ns"]
    summary = {
        "ring": repr(ring),
        "capacity_frames": ring.capacity,
        "channels": _CHANNELS,
        "dtype": str(_DTYPE),
        "memory": ring.memory,
        "timer": "time.perf_counter_ns, batches of calls, gc disabled; views: sizes take turns batch by "
        "batch; copies: each size back to back",
        "budget_per_size_s": budget[0],
        "results": results,
        "view_ratio_largest_to_1": ratio,
        "view_ratio_p90_largest_to_1": view[_LARGEST]["p90_ns"] / view[1]["p90_ns"],
        "view_flat": ratio <= _FLAT_LIMIT,
        "flat_limit": _FLAT_LIMIT,
    }
    del ring
    gc.collect()
    return summary


# ---- part 2: the native writer ---------------------------------------------------


def _build_ring_write(build_dir: Path) -> list:
    """Configure and build ring_write (Release); return the two commands."""
    return build_targets(build_dir, ["ring_write"], "bench_ring")


def bench_write(mode: str, build_dir: Path, build_commands: list) -> dict:
    program = build_dir / "benchmarks" / "ring_write"
    run = [str(program)] + (["--quick"] if mode == "quick" else [])
    output = run_checked(run, "bench_ring")
    data = json.loads(output.stdout)
    if output.stderr.strip():
        data["stderr"] = output.stderr.strip()
    data["commands"] = [*build_commands, shlex.join(run)]
    data["cxx_flags"] = cmake_cache(build_dir, ("CMAKE_CXX_COMPILER", "CMAKE_CXX_FLAGS", "CMAKE_CXX_FLAGS_RELEASE"))
    return data


# ---- report ------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# audioring ring benchmark",
        "",
        f"- Machine: {cpu_text(m)}; caches {', '.join(m['caches']) or 'unknown'}; {m['memory_gib']} GiB RAM",
        f"- OS: {m['os']}",
        f"- Python {m['python']}, numpy {m['numpy']}, audioring {m['audioring']} (git {m['git_commit']})",
        f"- Date: {m['date']}; load average at start {', '.join(map(str, m['load_average_at_start']))}",
        f"- Command: `{m['command']}` (mode: {report['mode']})",
        "",
        "Absolute times vary between machines and between runs on a shared machine; compare the columns of one run.",
        "",
    ]
    noisy = []
    for part, name in (("latest", "latest part"), ("write", "ring_write")):
        q = report[part].get("quietness")
        if q:
            noisy.append(quietness_text(name, q))
    if noisy:
        lines += ["Quietness of the run: " + "; ".join(noisy) + ".", ""]
    latest = report["latest"]
    rows = {(r["mode"], r["frames"]): r for r in latest["results"]}
    lines += [
        f"## `Ring.latest(n)` from Python ({latest['channels']} ch {latest['dtype']}, "
        f"capacity {latest['capacity_frames']:,} frames, {latest['memory']} memory, filled)",
        "",
        "Per call; median and 90th percentile over batches of calls (`time.perf_counter_ns`, gc off). "
        "Views: the sizes take turns batch by batch. Copies: each size back to back (warm steady state).",
        "",
        "| n frames | bytes | `latest(n)` median | p90 | `latest(n, copy=True)` median | p90 | copy GB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for frames in sorted({f for _, f in rows}):
        view, copy = rows[("view", frames)], rows[("copy", frames)]
        lines.append(
            f"| {frames:,} | {fmt_size(view['bytes'])} | {fmt_ns(view['median_ns'])} | {fmt_ns(view['p90_ns'])} | "
            f"{fmt_ns(copy['median_ns'])} | {fmt_ns(copy['p90_ns'])} | {copy['gbps_median']:.2f} |"
        )
    largest = max(f for _, f in rows)
    lines += [
        "",
        f"Zero-copy `latest` is {'flat' if latest['view_flat'] else 'NOT flat'}: median at n = {largest:,} "
        f"/ median at n = 1 = **{latest['view_ratio_largest_to_1']:.2f}** (limit {latest['flat_limit']:g}; "
        f"p90 ratio {latest['view_ratio_p90_largest_to_1']:.2f}).",
        "",
    ]
    write = report["write"]
    by_key = {(r["channels"], r["block_frames"], r["method"]): r for r in write["results"]}
    ring_bytes = {r["channels"]: r["ring_bytes"] for r in write["results"]}
    lines += [
        "## Native `FrameRing::write` throughput (C++, no Python)",
        "",
        f"`ring_write`: float32 frames, ring of {write['ring_seconds']:g} s at {write['rate']} Hz "
        f"({', '.join(f'{c} ch: {fmt_size(b)}' for c, b in sorted(ring_bytes.items()))} per copy), "
        f"source = one block-sized buffer; {write['reps']} repetitions of {write['passes']} passes "
        "through the ring, the three writers interleaved. GB/s of payload (frames x frame bytes), median "
        "over repetitions; the memcpy column copies the same blocks into an ordinary buffer of the "
        "ring's size with the same wrap-around. The ratio columns are the median of per-repetition "
        f"ratios (time of memcpy / time of the ring, same repetition). Compiler: {write['compiler']}, "
        f"flags `{write['cxx_flags'].get('CMAKE_CXX_FLAGS_RELEASE', '?')}`.",
        "",
        "| ch | block frames | block bytes | memcpy GB/s | ring memfd GB/s | memfd / memcpy | "
        "ring plain GB/s | plain / memcpy | memfd ns/write |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for channels, block in sorted({(c, b) for c, b, _ in by_key}):
        base = by_key.get((channels, block, "memcpy"))
        memfd = by_key.get((channels, block, "ring_memfd"))
        plain = by_key.get((channels, block, "ring_plain"))

        def gbps(r):
            return f"{r['gbps_median']:.1f}" if r else "n/a"

        def ratio(r):
            return f"{r['vs_memcpy_median']:.2f}" if r and r.get("vs_memcpy_median") is not None else "n/a"

        lines.append(
            f"| {channels} | {block:,} | {fmt_size((base or memfd or plain)['block_bytes'], binary=True)} | "
            f"{gbps(base)} | "
            f"{gbps(memfd)} | {ratio(memfd)} | {gbps(plain)} | {ratio(plain)} | "
            f"{memfd['ns_per_write_median']:,.0f} |"
            if memfd
            else f"| {channels} | {block:,} | | {gbps(base)} | n/a | n/a | {gbps(plain)} | {ratio(plain)} | n/a |"
        )
    lines += [
        "",
        "Plain memory stores every frame twice (once in each half), so about half of memcpy's throughput "
        "is its expected ceiling; mirrored memory stores once.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (< 30 s) with fewer repetitions")
    parser.add_argument(
        "--build-dir", type=Path, default=_REPO / "build" / "bench", help="CMake build directory (default: %(default)s)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=_REPO / "benchmarks" / "results",
        help="where ring.json and ring.md go (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    command = shlex.join(["python3", *sys.argv]) if argv is None else shlex.join(["bench_ring.py", *argv])

    started = time.perf_counter()
    report = {"mode": mode, "machine": machine_stamp(command)}
    print(f"bench_ring ({mode}): latest() through the public API", file=sys.stderr)
    quietness = Quietness()
    report["latest"] = bench_latest(mode)
    report["latest"]["quietness"] = quietness.stop()
    print("bench_ring: native write throughput (benchmarks/ring_write.cpp)", file=sys.stderr)
    build_dir = args.build_dir.resolve()
    build_commands = _build_ring_write(build_dir)
    quietness = Quietness(children=True)
    report["write"] = bench_write(mode, build_dir, build_commands)
    report["write"]["quietness"] = quietness.stop()
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["elapsed_s"] = round(time.perf_counter() - started, 1)

    # A quick run is a smoke test: it must not replace the full results.
    stem = "ring" if mode == "full" else "ring-quick"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(args.results_dir / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    write_atomically(args.results_dir / f"{stem}.md", text)
    print(
        f"bench_ring: done in {report['elapsed_s']} s; wrote {args.results_dir / stem}.json and {stem}.md",
        file=sys.stderr,
    )
    print(text)
    return 0 if report["latest"]["view_flat"] and report["write"].get("verified", False) else 1


if __name__ == "__main__":
    sys.exit(main())
