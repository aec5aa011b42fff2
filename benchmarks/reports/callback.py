"""The callback case's report (``cases/callback.py`` measures): target, Markdown and chart from the stored result."""

from __future__ import annotations

from pathlib import Path

from harness import charts
from harness.formatting import fmt_ns

TITLE = "Capture callback cost against buffer size"
#: The target for audioring: native callback median under 1 µs for a 512-frame stereo float32 block.
TARGET_NS = 1000.0


def targets(result: dict) -> list:
    stereo = [r for r in result["results"] if r["recorder"] == "audioring" and r["channels"] == 2]
    worst = max((r["median_ns"] for r in stereo), default=None)
    return [{
        "label": f"audioring's native callback: median < {fmt_ns(TARGET_NS)} for a {result['block_frames']}-frame "
                 "stereo float32 block, at every buffer size",
        "met": None if worst is None else worst < TARGET_NS,
        "measured": f"worst median {fmt_ns(worst)} (" + ", ".join(
            f"{r['buffer_s']} s: {fmt_ns(r['median_ns'])}" for r in stereo) + ")",
    }]


_COLUMNS = (("audioring", "audioring (native callback)"), ("audioring_virtual", "audioring VirtualInput"),
            ("rtmixer", "rtmixer (C callback)"), ("sd_queue", "sounddevice + queue"),
            ("tflite", "tflite-support reference"))


def markdown(result: dict) -> list:
    rows = {(r["recorder"], r["channels"], r["buffer_s"]): r for r in result["results"]}
    lines = [
        f"{result['block_frames']}-frame float32 blocks at {result['rate'] // 1000} kHz. Median per block (90th "
        "percentile in parentheses), each recorder's installed callback called as PortAudio calls it. Real-time "
        f"budget per block: {fmt_ns(result['realtime_budget_ns'])}. The VirtualInput column is wall time per block "
        "of a free-running native thread (signal generation included).",
        "",
        "| ch | buffer | " + " | ".join(label for _, label in _COLUMNS) + " |",
        "|---:|---:|" + "---:|" * len(_COLUMNS),
    ]

    def cell(r) -> str:
        if r is None:
            return "n/a"
        text = fmt_ns(r["median_ns"]) + (f" ({fmt_ns(r['p90_ns'])})" if "p90_ns" in r else "")
        return text + (" ✗" if r.get("verified") is False else "")

    channels_seen = sorted({r["channels"] for r in result["results"]})
    buffers_seen = sorted({r["buffer_s"] for r in result["results"]})
    for channels in channels_seen:
        for seconds in buffers_seen:
            lines.append(f"| {channels} | {seconds} s ({seconds * result['rate']:,} frames) | "
                         + " | ".join(cell(rows.get((name, channels, seconds))) for name, _ in _COLUMNS) + " |")
    lines += [
        "",
        "rtmixer's ring is the buffer rounded up to a power of two frames. The queue recipe has no buffer: its queue "
        "held at most the buffer's worth of blocks. ✗ = the recorder did not hold the block afterwards.",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    channels_seen = sorted({r["channels"] for r in result["results"]})
    buffers_seen = sorted({r["buffer_s"] for r in result["results"]})
    rows = (len(channels_seen) + 1) // 2
    with charts.figure(path, stamp, rows, 2, figsize=(10, 1 + 3.5 * rows), bottom=0.2 / rows, sharex=True,
                       sharey=True, squeeze=False) as (fig, axes):
        for ax, channels in zip(axes.flat, channels_seen):
            for name, label in _COLUMNS:
                points = sorted((r["buffer_s"], r["median_ns"]) for r in result["results"]
                                if r["recorder"] == name and r["channels"] == channels)
                if points:
                    ax.plot([p[0] for p in points], [p[1] / 1e3 for p in points], marker="o", label=label,
                            linestyle="--" if name == "audioring_virtual" else "-")
            budget_us = result["realtime_budget_ns"] / 1e3
            ax.axhline(budget_us, color="grey", linestyle=":", linewidth=1)
            ax.text(buffers_seen[0], budget_us * 1.4, f"real-time budget per block ({budget_us / 1e3:.0f} ms)",
                    fontsize=7, color="grey")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{channels} channel{'s' if channels > 1 else ''}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        for ax in axes[-1]:
            ax.set_xlabel(f"recorder buffer (s of {result['rate'] // 1000} kHz audio)")
            ax.set_xticks(buffers_seen, [f"{s} s" for s in buffers_seen])
        for ax in axes[:, 0]:
            ax.set_ylabel(f"time per {result['block_frames']}-frame block (µs, median)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.07 / rows))
        fig.suptitle("Capture callback cost against buffer size (log-log)", fontsize=11)
