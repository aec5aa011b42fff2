"""The read case's report (``cases/read.py`` measures): targets, Markdown and chart from the stored result."""

from __future__ import annotations

from pathlib import Path

from harness import charts
from harness.formatting import fmt_ns

TITLE = "Reading the latest n frames"

#: Targets (the issue's): read(n) and latest(n) medians at most this, and at most this many times numpy's slice.
TARGET_VIEW_NS = 400.0
TARGET_SLICE_RATIO = 4.0
TARGET_INTACT_NS = 200.0

#: (key, label, statement): the zero-copy group.
VIEWS = (
    ("numpy_slice", "numpy `a[i:j]` (reference)", "a[i:j]"),
    ("numpy_frombuffer", "numpy `frombuffer(...).reshape(...)` (reference)",
     "frombuffer(buf, dtype, count, offset).reshape(shape)"),
    ("ring_latest", "`Ring.latest(n)`", "ring_latest(n)"),
    ("record_read", "`AudioRecord.read(n)`", "record_read(n)"),
    ("ring_is_intact", "`Ring.is_intact(view)`", "ring_is_intact(ring_view)"),
    ("record_is_intact", "`AudioRecord.is_intact(view)`", "record_is_intact(record_view)"),
)
#: (key, label): the copies and the anchors' reads.
COPIES = (
    ("numpy_slice_copy", "numpy `a[i:j].copy()` (reference)"),
    ("ring_latest_copy", "`Ring.latest(n, copy=True)`"),
    ("record_read_copy", "`AudioRecord.read(n, copy=True)`"),
    ("tflite_read", "tflite-support `read(n)` (copy)"),
    ("rtmixer_read", "rtmixer `RingBuffer.read(n)` (copy, consumes oldest)"),
    ("rtmixer_regions", "rtmixer `get_read_buffers(n)` (zero-copy regions of oldest)"),
)


def _rows(result: dict) -> dict:
    return {(r["method"], r["frames"]): r for r in result["results"]}


def _ratio_to_slice(rows: dict, method: str, n: int):
    r, base = rows.get((method, n)), rows.get(("numpy_slice", n))
    return r["median_ns"] / base["median_ns"] if r and base else None


def targets(result: dict) -> list:
    rows = _rows(result)
    sizes = result["sizes"]
    found = []
    for method, name in (("record_read", "`AudioRecord.read(n)`"), ("ring_latest", "`Ring.latest(n)`")):
        medians = [rows[(method, n)]["median_ns"] for n in sizes if (method, n) in rows]
        ratios = [_ratio_to_slice(rows, method, n) for n in sizes]
        measured = ", ".join(f"n = {n:,}: {fmt_ns(rows[(method, n)]['median_ns'])}" for n in sizes
                             if (method, n) in rows)
        found.append({"label": f"{name} median ≤ {fmt_ns(TARGET_VIEW_NS)} at every n",
                      "met": (max(medians) <= TARGET_VIEW_NS) if len(medians) == len(sizes) else None,
                      "measured": measured})
        found.append({"label": f"{name} median ≤ {TARGET_SLICE_RATIO:g}× numpy's basic slice `a[i:j]` at every n",
                      "met": (max(ratios) <= TARGET_SLICE_RATIO) if None not in ratios else None,
                      "measured": ", ".join("?" if x is None else f"{x:.2f}×" for x in ratios)})
    for method, name in (("ring_is_intact", "`Ring.is_intact(view)`"),
                         ("record_is_intact", "`AudioRecord.is_intact(view)`")):
        medians = [rows[(method, n)]["median_ns"] for n in sizes if (method, n) in rows]
        found.append({"label": f"{name} median ≤ {fmt_ns(TARGET_INTACT_NS)}",
                      "met": (max(medians) <= TARGET_INTACT_NS) if medians else None,
                      "measured": f"worst median over the views' sizes {fmt_ns(max(medians, default=None))}"})
    return found


def markdown(result: dict) -> list:
    rows = _rows(result)
    sizes = result["sizes"]

    def cell(method: str, n: int, ratio: bool) -> str:
        r = rows.get((method, n))
        if r is None:
            return "n/a"
        text = f"{fmt_ns(r['median_ns'])} ({fmt_ns(r['p99_ns'])})"
        x = _ratio_to_slice(rows, method, n)
        return text + (f" **{x:.2f}×**" if ratio and x is not None else "")

    lines = [
        f"{result['channels']} ch {result['dtype']}, sources of {result['buffer_frames']:,} frames (the ring: "
        f"{result['ring_capacity']:,}). Per call: median (99th percentile over batches in parentheses), "
        "timeit-compiled "
        "loops in batches, gc off; **×** = median / median of numpy's basic slice at the same n, same run.",
        "",
        "### Zero-copy reads, next to numpy's view costs (taking turns batch by batch)",
        "",
        "| n frames | " + " | ".join(label for _, label, _ in VIEWS) + " |",
        "|---:|" + "---:|" * len(VIEWS),
    ]
    for n in sizes:
        lines.append(f"| {n:,} | " + " | ".join(cell(key, n, key != "numpy_slice") for key, _, _ in VIEWS) + " |")
    flat = [rows.get(("ring_latest", sizes[-1])), rows.get(("ring_latest", sizes[0]))]
    if all(flat):
        lines += ["", f"`Ring.latest` at n = {sizes[-1]:,} / at n = {sizes[0]:,}: "
                      f"{flat[0]['median_ns'] / flat[1]['median_ns']:.2f} (a zero-copy view costs the same for any n)."]
    lines += [
        "",
        "### Copies, and the anchors' reads (each alone, back to back)",
        "",
        "| n frames | " + " | ".join(label for _, label in COPIES) + " | sounddevice + queue |",
        "|---:|" + "---:|" * (len(COPIES) + 1),
    ]
    for n in sizes:
        lines.append(f"| {n:,} | " + " | ".join(cell(key, n, False) for key, _ in COPIES) + " | n/a (no read) |")
    lines += [
        "",
        "audioring returns float32 (the device's format); the reference returns float64 (its buffer's), so it copies "
        "twice the bytes. rtmixer's reads return the oldest frames and consume them; the sounddevice + queue recipe "
        "hands out blocks and has no read of the latest frames. The numpy columns are no recorder: they are what a "
        "view (or copy) of that many frames costs in numpy itself on this machine.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    lines = VIEWS + COPIES
    with charts.figure(path, stamp, figsize=(8.5, 6)) as (fig, ax):
        for k, (key, label, *_) in enumerate(lines):
            points = sorted((r["frames"], r["median_ns"]) for r in result["results"] if r["method"] == key)
            if points:
                style = ":" if key.startswith("numpy") else ("--" if any(key == c for c, _ in COPIES) else "-")
                ax.plot([p[0] for p in points], [p[1] / 1e3 for p in points], marker="os^vD"[k % 5], linestyle=style,
                        color=charts.distinct_color(k, len(lines)), label=label.replace("`", ""))
        ax.axhline(TARGET_VIEW_NS / 1e3, color="grey", linestyle=":", linewidth=1)
        ax.text(result["sizes"][-1], TARGET_VIEW_NS / 1e3 * 1.15, f"target for zero-copy reads: "
                f"{fmt_ns(TARGET_VIEW_NS)}", fontsize=7, color="grey", ha="right")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"n (frames of {result['channels']} channels)")
        ax.set_ylabel("time per call (µs, median)")
        ax.set_title("Reading the latest n frames (log-log; dotted: numpy references)", fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left")
