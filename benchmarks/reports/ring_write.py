"""The ring_write case's report (``cases/ring_write.py`` measures): its target and Markdown, from the stored result."""

from __future__ import annotations

from harness.formatting import fmt_size

TITLE = "Native ring write throughput (C++, no Python)"


def targets(result: dict) -> list:
    return [{"label": "every native ring write checked out (the ring held exactly what was written)",
             "met": bool(result.get("verified")), "measured": f"verified: {result.get('verified')}"}]


def markdown(result: dict) -> list:
    by_key = {(r["channels"], r["block_frames"], r["method"]): r for r in result["results"]}
    ring_bytes = {r["channels"]: r["ring_bytes"] for r in result["results"]}
    lines = [
        f"`ring_write`: float32 frames, ring of {result['ring_seconds']:g} s at {result['rate']} Hz "
        f"({', '.join(f'{c} ch: {fmt_size(b)}' for c, b in sorted(ring_bytes.items()))} per copy), "
        f"source = one block-sized buffer; {result['reps']} repetitions of {result['passes']} passes "
        "through the ring, the three writers interleaved. GB/s of payload (frames × frame bytes), median "
        "over repetitions; the ratio columns are the median of per-repetition ratios (time of memcpy / time of "
        f"the ring, same repetition). Compiler: {result['compiler']}.",
        "",
        "| ch | block frames | block bytes | memcpy GB/s | ring memfd GB/s | memfd / memcpy | "
        "ring plain GB/s | plain / memcpy | memfd ns/write |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def gbps(r) -> str:
        return f"{r['gbps_median']:.1f}" if r else "n/a"

    def ratio(r) -> str:
        return f"{r['vs_memcpy_median']:.2f}" if r and r.get("vs_memcpy_median") is not None else "n/a"

    for channels, block in sorted({(c, b) for c, b, _ in by_key}):
        base, memfd, plain = (by_key.get((channels, block, m)) for m in ("memcpy", "ring_memfd", "ring_plain"))
        any_row = base or memfd or plain
        lines.append(f"| {channels} | {block:,} | {fmt_size(any_row['block_bytes'], binary=True)} | {gbps(base)} | "
                     f"{gbps(memfd)} | {ratio(memfd)} | {gbps(plain)} | {ratio(plain)} | "
                     + (f"{memfd['ns_per_write_median']:,.0f} |" if memfd else "n/a |"))
    lines += ["", "Plain memory stores every frame twice (once in each half), so about half of memcpy's throughput "
                  "is its expected ceiling; mirrored memory stores once.", ""]
    return lines
