"""The disk case's report (``cases/disk.py`` measures): its targets, Markdown and chart, from the stored result."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from harness import charts
from harness.formatting import fmt_size

TITLE = "Recording to disk and to tmpfs at 192 kHz int32, 64-256 channels (JACK, ramp injected)"

LABELS = {
    "jack_capture": "`jack_capture` (C, disk thread)",
    "sd_recipe": "sounddevice `InputStream` + `queue.Queue` + soundfile",
    "record_to": "audioring `record_to` (GIL held, 1 s ring)",
    "record": "audioring `record` (command line)",
}
#: The targets' configuration (issue 20).
TARGET_CHANNELS, TARGET_SECONDS, TARGET_HOLD_S = 256, 60.0, 2.5
CPU_RATIO, THROUGHPUT_SHARE = 1.2, 0.8


def _ok(run: dict) -> bool:
    return "error" not in run and "check" in run


def _lost(run: dict) -> Optional[int]:
    return run["check"]["ramp"].get("frames_lost") if _ok(run) else None


def _variant(result: dict, name: str) -> Optional[dict]:
    return next((v for v in result.get("variants", []) if v["name"] == name), None)


def _run(variant: Optional[dict], recorder: str, channels: int) -> Optional[dict]:
    if variant is None:
        return None
    return next((r for r in variant["runs"] if r["recorder"] == recorder and r["channels"] == channels), None)


def _dd(variant: Optional[dict], flag: str = "conv=fdatasync") -> Optional[dict]:
    found = next((d for d in (variant or {}).get("dd", []) if d["flag"] == flag), None)
    return found if found and "error" not in found else None


def _not_judged(result: dict, recorder: str, variant: Optional[dict]) -> Optional[str]:
    """Why a target on `recorder` at the target's size on `variant` cannot be judged in this run, or None."""
    if recorder in result.get("unavailable", {}):
        return f"not run: {result['unavailable'][recorder]}"
    if variant is None:
        return f"not measured in this run (filesystems: {', '.join(result.get('filesystems', []))})"
    if "refused" in variant:
        return f"{variant['name']} refused: {variant['refused']}"
    if result["seconds"] < TARGET_SECONDS or TARGET_CHANNELS not in result["widths"]:
        return (f"{result['seconds']:g} s runs at {', '.join(map(str, result['widths']))} ch in this run, not the "
                f"target's {TARGET_SECONDS:g} s at {TARGET_CHANNELS} ch")
    return None


def _lossless_target(result: dict, recorder: str) -> dict:
    label = (f"{LABELS[recorder]}: {TARGET_CHANNELS} ch × 192 kHz int32 for {TARGET_SECONDS:g} s to disk, 0 frames "
             "lost and no more overflow flags than jack_capture (same run)")
    disk = _variant(result, "disk")
    reason = _not_judged(result, recorder, disk) or _not_judged(result, "jack_capture", disk)
    if reason:
        return {"label": label, "met": None, "measured": reason}
    ours, anchor = _run(disk, recorder, TARGET_CHANNELS), _run(disk, "jack_capture", TARGET_CHANNELS)
    if not ours or not anchor or not _ok(ours) or not _ok(anchor):
        failed = [r.get("error", "no file checked")[:200] for r in (ours, anchor) if r and not _ok(r)]
        return {"label": label, "met": None, "measured": f"a run failed: {failed}"}
    lost, flags, anchor_flags = _lost(ours), ours.get("overflow_flags"), anchor.get("overflow_flags")
    met = (lost == 0 and flags is not None and anchor_flags is not None and flags <= anchor_flags)
    return {"label": label, "met": met,
            "measured": f"{lost:,} frames lost, {flags} overflow flags; jack_capture: {_lost(anchor):,} lost, "
                        f"{anchor_flags} xruns, {anchor.get('overruns')} overruns"}


def _cpu_target(result: dict, recorder: str) -> dict:
    label = (f"{LABELS[recorder]}: CPU within {CPU_RATIO:g}× of jack_capture's, {TARGET_CHANNELS} ch × 192 kHz to "
             "disk")
    disk = _variant(result, "disk")
    reason = _not_judged(result, recorder, disk) or _not_judged(result, "jack_capture", disk)
    if reason:
        return {"label": label, "met": None, "measured": reason}
    ours, anchor = _run(disk, recorder, TARGET_CHANNELS), _run(disk, "jack_capture", TARGET_CHANNELS)
    if not ours or not anchor or ours.get("cpu_fraction") is None or not anchor.get("cpu_fraction"):
        return {"label": label, "met": None, "measured": "no CPU measured (a run failed)"}
    ratio = ours["cpu_fraction"] / anchor["cpu_fraction"]
    return {"label": label, "met": ratio <= CPU_RATIO,
            "measured": f"{100 * ours['cpu_fraction']:.1f}% against {100 * anchor['cpu_fraction']:.1f}% of a core "
                        f"({ratio:.2f}×)"}


def _throughput_target(result: dict) -> dict:
    label = (f"audioring's file writer alone within {100 * THROUGHPUT_SHARE:.0f}% of `dd`'s throughput on tmpfs "
             "(`conv=fdatasync`)")
    tmpfs = _variant(result, "tmpfs")
    if "record_to" in result.get("unavailable", {}):
        return {"label": label, "met": None, "measured": f"not run: {result['unavailable']['record_to']}"}
    if tmpfs is None or "refused" in tmpfs:
        return {"label": label, "met": None, "measured": f"tmpfs not run: {(tmpfs or {}).get('refused')}"}
    drain, dd = tmpfs.get("drain"), _dd(tmpfs)
    if not drain or "error" in drain or dd is None:
        return {"label": label, "met": None, "measured": f"a measurement failed: {(drain or {}).get('error')}"}
    share = drain["throughput_mb_s"] / dd["throughput_mb_s"]
    return {"label": label, "met": share >= THROUGHPUT_SHARE and drain["check"]["ramp"].get("frames_lost") == 0,
            "measured": f"{drain['throughput_mb_s']:,.0f} MB/s against {dd['throughput_mb_s']:,.0f} MB/s "
                        f"({100 * share:.0f}%; {fmt_size(drain['audio_bytes'])} from a filled ring, "
                        f"{drain['check']['ramp'].get('frames_lost')} frames lost)"}


def _hold_target(result: dict) -> dict:
    label = f"audioring `record_to` through a ≥ {TARGET_HOLD_S:g} s GIL hold with a {result['ring_s']:g} s ring " \
            "loses nothing (every width and filesystem)"
    if "record_to" in result.get("unavailable", {}):
        return {"label": label, "met": None, "measured": f"not run: {result['unavailable']['record_to']}"}
    runs = [r for v in result.get("variants", []) for r in v["runs"] if r["recorder"] == "record_to"]
    judged = [r for r in runs if _ok(r) and (r.get("held_s") or 0) >= TARGET_HOLD_S]
    if not judged:
        held = ", ".join(f"{r.get('held_s') or 0:.2f} s" for r in runs) or "none"
        return {"label": label, "met": None, "measured": f"no run held the GIL {TARGET_HOLD_S:g} s (held: {held})"}
    lost = [_lost(r) for r in judged]
    per_run = " / ".join(f"{x:,}" for x in lost)
    held = ", ".join(f"{r['held_s']:.2f}" for r in judged)
    measured = f"frames lost per run: {per_run}; GIL held {held} s"
    if len(judged) < len(runs):
        measured += f"; {len(runs) - len(judged)} run(s) not judged (failed, or a shorter hold)"
    return {"label": label, "met": all(x == 0 for x in lost), "measured": measured}


def targets(result: dict) -> list:
    return [_lossless_target(result, "record"), _lossless_target(result, "record_to"),
            _cpu_target(result, "record"), _cpu_target(result, "record_to"),
            _throughput_target(result), _hold_target(result)]


def _flags_cell(run: dict) -> str:
    if run["recorder"] == "jack_capture":
        return f"{run.get('xruns')} xruns, {run.get('overruns')} overruns"
    flags = run.get("overflow_flags")
    return "?" if flags is None else f"{flags} flag{'' if flags == 1 else 's'}"


def _notes(run: dict) -> str:
    notes = []
    if run["recorder"] == "jack_capture" and run.get("rotated"):
        notes.append(f"went on in a new file {run['rotated']}× at WAV's 4 GiB")
    if run["recorder"] == "record_to":
        notes.append(f"GIL held {run.get('held_s') or 0:.2f} s")
        notes.append(f"writer's gaps {len(run.get('gaps') or [])}, lag ≤ {run.get('lag_max_frames', 0):,} frames")
        if run.get("writer_error"):
            notes.append(f"writer error: {run['writer_error']}")
    if run["recorder"] == "record":
        notes.append(f"exit {run.get('returncode')}; said {run.get('reported_lost')} lost")
    if run["recorder"] == "sd_recipe":
        notes.append(f"queue ≤ {run.get('largest_queue_blocks')} blocks")
    check = run.get("check", {})
    glitches = check.get("ramp", {}).get("source_glitches")
    if glitches:
        notes.append(f"the ramp's source missed {glitches} JACK cycle(s) "
                     f"({check['ramp']['source_glitch_frames']:,} frames repeated by JACK, not counted)")
    formats = sorted({f"{f['format']} {f['subtype']}" for f in check.get("files", [])})
    if formats:
        notes.append(f"{len(check['files'])} file{'' if len(check['files']) == 1 else 's'} ({', '.join(formats)})")
    if check.get("last_channel_mismatches"):
        notes.append(f"**last channel differs from channel 0 in {check['last_channel_mismatches']:,} frames**")
    return "; ".join(notes)


def _row(run: dict, rate: int) -> str:
    head = f"| {run['channels']} | {LABELS[run['recorder']]} | "
    if not _ok(run):
        return head + f"failed: {str(run.get('error'))[:300]} | | | | | |"
    ramp = run["check"]["ramp"]
    lost = ramp.get("frames_lost")
    lost_text = "?" if lost is None else f"**{lost:,}**" + (f" ({lost / rate:.3g} s)" if lost else "")
    marked = f"{ramp['silence_inside_frames']:,} silent, {ramp['dropped_frames']:,} dropped"
    if ramp.get("repeated_frames"):
        marked += f", {ramp['repeated_frames']:,} twice"
    jack = run["jack"]
    return (head + f"{lost_text} | {marked} | {_flags_cell(run)} | {jack['process_errors']} ({jack['driver_late']}) | "
            f"{100 * run['cpu_fraction']:.1f}% | {run.get('throughput_mb_s', 0):,.0f} | {_notes(run)} |")


def _limits(variant: dict) -> str:
    parts = [f"`dd {d['flag']}` {d['throughput_mb_s']:,.0f} MB/s ({fmt_size(d['bytes'])})" if "error" not in d
             else f"`dd {d['flag']}` failed: {d['error'][:200]}" for d in variant.get("dd", [])]
    drain = variant.get("drain")
    if drain:
        if "error" in drain:
            parts.append(f"audioring's writer alone failed: {drain['error'][:300]}")
        else:
            parts.append(f"audioring's writer alone {drain['throughput_mb_s']:,.0f} MB/s ({drain['channels']} ch, "
                         f"{fmt_size(drain['audio_bytes'])} from a filled ring; "
                         f"{drain['check']['ramp'].get('frames_lost')} frames lost, "
                         f"{drain['frames_written']:,} of {drain['frames_in_ring']:,} frames written)")
    return "; ".join(parts)


def markdown(result: dict) -> list:
    rate = result["rate"]
    lines = [
        f"{result['server']}, dummy driver at {rate // 1000} kHz, period {result['period']}; every recorder records "
        f"{result['dtype']} for {result['seconds']:g} s, in its own process, one after another; a separate JACK "
        "client feeds a frame-clock ramp into each recorder's first and last input. **Frames lost** are read from "
        "the files (channel 0's ramp; the last channel checked against it): the same way for every recorder. In "
        "the file: lost frames written as silence of their length (\"silent\": the timeline stays true) and "
        "frames simply missing (\"dropped\": everything after comes early); both count as lost. Flags: the "
        "paInputOverflow flags the recorder counted; for jack_capture, the JACK xruns and its own overruns "
        "(buffer full: silence written) it printed. JACK missed: cycles jackd "
        "logged as missed during the run (in parentheses: those where jackd's own dummy driver woke late, which "
        "every client misses alike). CPU: the process's user + system time, all threads, per second of audio, "
        "from when its files held 1 MiB to its exit (start-up left out, closing the file counted); 100% = one "
        "core. MB/s: bytes written from then to when the files last grew, over that time (keeping up means the "
        f"data rate: {64 * 4 * rate / 1e6:.0f} MB/s at 64 ch, {256 * 4 * rate / 1e6:.0f} MB/s at 256 ch).",
        "",
    ]
    unavailable = result.get("unavailable", {})
    for recorder, reason in unavailable.items():
        lines.append(f"- {LABELS[recorder]}: **not run**: {reason}.")
    if result.get("realtime_refused"):
        lines.append(f"- Realtime scheduling was refused here ({result['realtime_refused'][:300]}): jackd -r.")
    if "record_to" not in unavailable:
        lines.append(f"- `record_to`: a {result['ring_s']:g} s ring; the main thread holds the GIL in one C call "
                     f"(`usleep` through `ctypes.PyDLL`) for {result['hold_s']:g} s from {100 * result['hold_at']:.0f}%"
                     " of the recording on.")
    if unavailable or result.get("realtime_refused") or "record_to" not in unavailable:
        lines.append("")
    for variant in result.get("variants", []):
        where = f"{variant['name']}: `{variant['directory']}`"
        if variant.get("fstype"):
            where += f" ({variant['fstype']} on {variant.get('source')})"
        lines.append(f"**{where}**")
        lines.append("")
        if "refused" in variant:
            lines += [f"Not run: {variant['refused']}.", ""]
            continue
        lines += [f"Limits: {_limits(variant)}.", "",
                  "| ch | recorder | frames lost | in the file | flags | JACK missed | CPU | MB/s | notes |",
                  "|---:|---|---:|---|---|---:|---:|---:|---|"]
        lines += [_row(run, rate) for run in variant["runs"]]
        lines.append("")
    lines.append(f"Ramp client restarts: {result.get('ramp_restarts', 0)}.")
    lines.append("")
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    groups, keys = [], []
    for variant in result.get("variants", []):
        if "refused" in variant:
            continue
        for width in result["widths"]:
            groups.append(f"{variant['name']}\n{width} ch")
            keys.append((variant, width))
    recorders = [r for r in result["recorders"] if r not in result.get("unavailable", {})]

    def heights(recorder: str, value) -> list:
        found = []
        for variant, width in keys:
            run = _run(variant, recorder, width)
            found.append(value(run) if run and _ok(run) else math.nan)
        return found

    cpu = [(LABELS[r].replace("`", ""), heights(r, lambda run: 100 * run["cpu_fraction"])) for r in recorders]
    lost = [(LABELS[r].replace("`", ""), heights(r, lambda run: _lost(run) / result["rate"])) for r in recorders]
    with charts.figure(path, stamp, nrows=2, figsize=(9, 8), bottom=0.05) as (fig, (top, bottom)):
        charts.grouped_bars(top, groups, cpu, annotate=lambda h: f" {h:.1f}%")
        top.set_ylabel("CPU, % of one core")
        top.set_ylim(0, max(1.0, top.get_ylim()[1] * 1.2))
        top.set_title(f"Recording {result['dtype']} at {result['rate'] // 1000} kHz for {result['seconds']:g} s "
                      "(JACK dummy): CPU", fontsize=11)
        top.grid(True, axis="y", alpha=0.3)
        charts.grouped_bars(bottom, groups, lost, annotate=lambda h: f" {h * result['rate']:,.0f}")
        bottom.set_ylabel("audio lost (s; label: frames)")
        bottom.set_ylim(0, max(0.01, bottom.get_ylim()[1] * 1.2))
        bottom.set_title("Frames lost, read from the files", fontsize=10)
        bottom.grid(True, axis="y", alpha=0.3)
        bottom.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
