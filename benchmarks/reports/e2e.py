"""The e2e case's report (``cases/e2e.py`` measures): its Markdown, from the stored result.

No target: the comparison is the result.
"""

from __future__ import annotations

TITLE = "End-to-end CPU: 48 kHz stereo, the latest 1 s read twice a second"
LABELS = {
    "audioring": "audioring `AudioRecord.read(48000)` (zero-copy view)",
    "audioring_copy": "audioring `AudioRecord.read(48000, copy=True)`",
    "tflite": "tflite-support `AudioRecord.read(48000)` (reference; copies)",
    "sd_queue": "sounddevice `InputStream` + `queue.Queue`",
    "rtmixer": "rtmixer `Recorder` + `RingBuffer`",
}


def targets(result: dict) -> list:
    return []  # no target: the comparison is the result


def markdown(result: dict) -> list:
    lines = [
        f"Process CPU seconds per minute of audio (all threads; JACK dummy, period {result['period']}), each run "
        f"{result['seconds']:g} s, **scaled to one minute**.",
        "",
        "| recorder | CPU s per minute | % of one core | reads | overflow flags | JACK cycles missed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        label = LABELS[r["variant"]]
        if "error" in r:
            lines.append(f"| {label} | error: {r['error']} | | | | |")
            continue
        flags = "not exposed" if r["overflow_flags"] is None else r["overflow_flags"]
        lines.append(f"| {label} | **{r['cpu_s_per_minute']:.2f}** | {r['cpu_s_per_minute'] / 60 * 100:.2f}% | "
                     f"{r['reads']} | {flags} | {r['jack']['process_errors']} |")
    for name in ("sd_queue", "rtmixer"):
        lines.append(f"| {LABELS[name]} | n/a: no read of the latest window (see the capacity case for its "
                     "recording cost) | | | | |")
    lines.append("")
    return lines
