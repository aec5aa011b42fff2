#!/usr/bin/env python3
"""audioring against its anchors, side by side in one run on one machine.

The anchors are their own code as installed from PyPI, never re-implemented:
``tflite_support.task.audio.AudioRecord`` (the class audioring replaces), a
``sounddevice.InputStream`` whose Python callback puts copies on a
``queue.Queue`` (sounddevice's usual recipe), and ``rtmixer.Recorder``
recording into its ``RingBuffer``. Where an anchor cannot do a case, the
report says so.

Cases (one module each; see their docstrings):

1. ``bench_callback.py``: capture callback cost against buffer size (1, 10,
   100 s at 16 kHz; 1, 2, 8, 32 channels), each recorder's installed callback
   called as PortAudio calls it (``callback_timer.cpp``).
2. ``bench_read.py``: reading the latest n frames, n = 10**3 ... 10**7.
3. ``bench_stall.py``: frames lost while the main thread holds the GIL for
   0.1, 0.5, 2 s, on a JACK dummy server at 48 kHz (a frame-clock ramp shows
   every lost frame).
4. ``bench_capacity.py``: 2..32 channels at 48..192 kHz on JACK dummy for
   30 s each: process CPU per second of audio, overflows, frames lost; and
   the free-running VirtualInput ingest rate next to memcpy.
5. ``bench_e2e.py``: CPU seconds per minute of 48 kHz stereo with a consumer
   reading 1 s windows twice a second.

Writes ``benchmarks/results/bench.json`` (everything), ``bench.md`` (the
tables) and ``bench-case<N>.png`` (charts), each stamped with the machine and
the versions of Python, numpy, PortAudio and the packages; ``--quick`` writes
``bench-quick.*`` instead, so a smoke run never replaces full results.

Usage::

    python benchmarks/run.py            # full run, about 20 minutes
    python benchmarks/run.py --quick    # under 2 minutes
    python benchmarks/run.py --cases 1,2
    python benchmarks/run.py --from-json benchmarks/results/bench.json   # re-render only

Needs: audioring installed, CMake and a C++17 compiler (for the timer
library), tflite-support, rtmixer, sounddevice, JACK-Client, matplotlib,
libportaudio2 and jackd2 (the JACK cases start private jackd dummy servers
through ``tests/audio_servers.py``). Absolute numbers vary between machines
and between runs on a shared machine: compare the columns of one run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import (
    BUILD_DIR,
    RESULTS_DIR,
    Quietness,
    build_targets,
    cmake_cache,
    cpu_text,
    fmt_ns,
    machine_stamp,
    quietness_text,
    write_atomically,
    write_json,
)

PACKAGES = ("tflite-support", "sounddevice", "rtmixer", "pa-ringbuffer", "cffi", "JACK-Client", "matplotlib")
CASES = (1, 2, 3, 4, 5)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _system_versions() -> dict:
    versions = {}
    try:
        import sounddevice

        versions["portaudio"] = sounddevice.get_portaudio_version()[1]
    except Exception as error:  # noqa: BLE001 - a stamp, not a requirement
        versions["portaudio"] = f"unavailable: {error}"
    for package in ("libportaudio2", "jackd2"):
        try:
            versions[package] = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10
            ).stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            versions[package] = None
    return versions


def stamp_line(report: dict) -> str:
    """One line for the foot of every chart."""
    m = report["machine"]
    p = m.get("packages", {})
    return (
        f"{m['cpu']['model']}, {m['logical_cpus']} CPUs | Python {m['python'].split()[0]}, numpy {m['numpy']}, "
        f"{m['system']['portaudio'].split(',')[0]} | {m['date']} | {report['mode']} run\n"
        f"audioring {m['audioring']} ({m['git_commit']}), tflite-support {p.get('tflite-support')}, "
        f"sounddevice {p.get('sounddevice')}, rtmixer {p.get('rtmixer')}"
    )


def _run_cases_1_2(cases: list, mode: str, report: dict, timer) -> None:
    """Cases 1 and 2 need recorders built on a device: a JACK server at 16 kHz with 32 channels, never started."""
    import sounddevice as sd
    from audio_servers import refresh_portaudio

    import bench_anchors
    import bench_callback
    import bench_read

    with bench_anchors.jack_server(16000, 512, 32):
        refresh_portaudio()
        device = bench_anchors.jack_device(sd)
        if 1 in cases:
            log("case 1: callback cost against buffer size")
            _case(report, "case1", lambda: bench_callback.run(mode, device, timer, log=log))
        if 2 in cases:
            log("case 2: read(n) cost")
            _case(report, "case2", lambda: bench_read.run(mode, device, log=log))
    refresh_portaudio()


def _case(report: dict, key: str, run, children: bool = False) -> None:
    quietness = Quietness(children=children)
    started = time.perf_counter()
    try:
        report[key] = run()
    except Exception as error:  # noqa: BLE001 - one failing case must not lose the others
        traceback.print_exc()
        report[key] = {"error": f"{type(error).__name__}: {error}"}
    report[key]["quietness"] = quietness.stop()
    report[key]["elapsed_s"] = round(time.perf_counter() - started, 1)


def _targets(report: dict) -> list:
    rows = []
    c1, c2, c3, c4 = (report.get(f"case{k}", {}) for k in (1, 2, 3, 4))
    t = c1.get("target")
    if t:
        rows.append(("Native callback median < 1 µs, 512-frame stereo float32 block, every buffer size (case 1)",
                     t["met"], f"worst median {fmt_ns(t['worst_median_ns'])}"))
    t = c2.get("target")
    if t:
        rows.append(("`read(n)` zero-copy median < 2 µs for every n up to 10^7 (case 2)", t["met"],
                     f"worst median {fmt_ns(t['worst_median_ns'])}; n = 10^7 / n = 10^3: "
                     f"{t['ratio_largest_to_smallest']:.2f}"))
    t = c3.get("target")
    if t:
        def each(key: str) -> str:
            return ", ".join(f"{x:,}" if isinstance(x, int) else str(x) for x in t.get(key, []))

        figure = f"frames lost per run: {each('frames_lost_each_run')}"
        if t.get("rtmixer_frames_lost_each_run"):
            figure += f" (rtmixer's C callback, same runs: {each('rtmixer_frames_lost_each_run')})"
        if t.get("jack_driver_late_each_run"):
            figure += f"; jackd's own driver thread late {each('jack_driver_late_each_run')} times"
        rows.append(("0 frames lost under a 2 s GIL stall (case 3): GIL held by CPU-bound Python (`sum(range(n))`), "
                     "one of the 2 cores busy", t["met"], figure))
        if "met_control" in t:
            figure = (f"frames lost per run: {each('frames_lost_control_each_run')}; baseline without a stall: "
                      f"{each('frames_lost_baseline_each_run')}")
            rows.append(("0 frames lost under a 2 s GIL stall (case 3): GIL held by a sleeping C call (control)",
                         t["met_control"], figure))
    t = c4.get("target")
    if t:
        if t.get("cpu_per_audio_s_each_run"):
            figure = ("overflow flags per run: " + ", ".join(str(x) for x in t["overflow_flags_each_run"])
                      + "; frames lost: " + ", ".join(f"{x:,}" for x in t["frames_lost_each_run"])
                      + "; CPU: " + ", ".join(f"{100 * x:.2f}%" for x in t["cpu_per_audio_s_each_run"])
                      + f" of one core ({t['seconds']:g} s runs)")
            if "jack_missed_blamed_on_portaudio_each_run" in t:
                figure += ("; JACK cycles jackd blamed on the recorder's client: "
                           + ", ".join(str(x) for x in t["jack_missed_blamed_on_portaudio_each_run"])
                           + "; jackd's driver thread late: "
                           + ", ".join(str(x) for x in t["jack_driver_late_each_run"]))
        else:
            figure = f"not measured: {t.get('errors')}"
        label = "32 ch × 192 kHz for 30 s on JACK dummy: 0 overflows, < 5% of one core (case 4)"
        if t["seconds"] != 30:
            label += f" — this run: {t['seconds']:g} s"
        rows.append((label, t["met"], figure))
    return rows


def markdown(report: dict) -> str:
    import bench_callback
    import bench_capacity
    import bench_e2e
    import bench_read
    import bench_stall

    m = report["machine"]
    p = m.get("packages", {})
    s = m["system"]
    lines = [
        "# audioring against its anchors" + (" (quick run)" if report["mode"] == "quick" else ""),
        "",
        f"- Machine: {cpu_text(m)}; caches {', '.join(m['caches']) or 'unknown'}; {m['memory_gib']} GiB RAM",
        f"- OS: {m['os']}",
        f"- Python {m['python']}, numpy {m['numpy']}, {s['portaudio']} (libportaudio2 {s.get('libportaudio2')}), "
        f"jackd2 {s.get('jackd2')}",
        f"- audioring {m['audioring']} (git {m['git_commit']}); "
        + ", ".join(f"{name} {version}" for name, version in p.items()),
        f"- Date: {m['date']}; load average at start {', '.join(map(str, m['load_average_at_start']))}, "
        f"at end {', '.join(map(str, m.get('load_average_at_end', [])))}",
        f"- Command: `{m['command']}` (mode: {report['mode']}; {report.get('elapsed_s', '?')} s)",
        f"- Timer library: `benchmarks/callback_timer.cpp`, {report.get('timer', {}).get('compiler', '?')} "
        f"`{report.get('timer', {}).get('flags', '?')}`",
        "",
        "Absolute numbers vary between machines and between runs on a shared machine; compare the columns of one "
        "run. The anchors are their own code as installed from PyPI.",
        "",
    ]
    noisy = [quietness_text(f"case {k}", report.get(f"case{k}", {}).get("quietness")) for k in CASES]
    noisy = [n for n in noisy if n]
    if noisy:
        lines += ["Quietness of the run (other processes' CPU while each case ran; the machine has "
                  f"{m['logical_cpus']} CPUs): " + "; ".join(noisy) + ".", ""]
    targets = _targets(report)
    if targets:
        lines += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
        lines += [f"| {label} | {'yes' if met else '**no**'} | {figure} |" for label, met, figure in targets]
        lines.append("")
    modules = {1: bench_callback, 2: bench_read, 3: bench_stall, 4: bench_capacity, 5: bench_e2e}
    for k in CASES:
        result = report.get(f"case{k}")
        if result is None:
            continue
        if "error" in result:
            lines += [f"## {k}. (failed)", "", f"Error: {result['error']}", ""]
            continue
        lines += modules[k].markdown(result)
    return "\n".join(lines) + "\n"


def charts(report: dict, stem: str, results_dir: Path) -> list:
    import bench_callback
    import bench_capacity
    import bench_read
    import bench_stall

    stamp = stamp_line(report)
    written = []
    for k, module in ((1, bench_callback), (2, bench_read), (3, bench_stall), (4, bench_capacity)):
        result = report.get(f"case{k}")
        if not result or "error" in result or not hasattr(module, "chart"):
            continue
        path = results_dir / f"{stem}-case{k}.png"
        module.chart(result, path, stamp)
        written.append(path.name)
    return written


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (< 2 minutes), fewer configurations")
    parser.add_argument("--cases", default=",".join(map(str, CASES)), help="comma-separated cases (default: all)")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR,
                        help="CMake build directory (default: %(default)s)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="output directory (default: %(default)s)")
    parser.add_argument("--from-json", type=Path, metavar="JSON",
                        help="measure nothing: judge the targets and write the Markdown and charts again from a "
                        "results JSON")
    args = parser.parse_args(argv)
    if args.from_json:
        import bench_capacity
        import bench_stall

        report = json.loads(args.from_json.read_text())
        # Targets are judged again by this code, on the stored runs.
        for key, module in (("case3", bench_stall), ("case4", bench_capacity)):
            if key in report and "error" not in report[key]:
                report[key]["target"] = module.target_of(report[key])
        stem = args.from_json.stem
        report["charts"] = charts(report, stem, args.from_json.parent)
        write_json(args.from_json, report)
        write_atomically(args.from_json.parent / f"{stem}.md", markdown(report))
        log(f"run.py: wrote {stem}.md and {', '.join(report['charts'])} from {args.from_json}")
        return 0
    mode = "quick" if args.quick else "full"
    cases = sorted({int(c) for c in args.cases.split(",") if c.strip()})
    if not set(cases) <= set(CASES):
        parser.error(f"--cases: choose from {CASES}")
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])

    started = time.perf_counter()
    report: dict = {"mode": mode, "cases": cases, "machine": machine_stamp(command, PACKAGES)}
    report["machine"]["system"] = _system_versions()
    log(f"run.py ({mode}): building benchmarks/callback_timer.cpp")
    build_dir = args.build_dir.resolve()
    commands = build_targets(build_dir, ["callback_timer"], "run.py")
    flags = cmake_cache(build_dir, ("CMAKE_CXX_COMPILER", "CMAKE_CXX_FLAGS_RELEASE"))
    report["timer"] = {"commands": commands, "compiler": flags.get("CMAKE_CXX_COMPILER"),
                       "flags": flags.get("CMAKE_CXX_FLAGS_RELEASE")}

    import bench_callback

    timer = bench_callback.CallbackTimer(build_dir / "benchmarks" / "libcallback_timer.so")
    if 1 in cases or 2 in cases:
        _run_cases_1_2(cases, mode, report, timer)
    if 3 in cases:
        import bench_stall

        log("case 3: frames lost during a GIL stall (JACK dummy)")
        _case(report, "case3", lambda: bench_stall.run(mode, log=log), children=True)
    if 4 in cases:
        import bench_capacity

        log("case 4: capacity (JACK dummy) and free-running ingest")
        _case(report, "case4", lambda: bench_capacity.run(mode, timer, log=log), children=True)
    if 5 in cases:
        import bench_e2e

        log("case 5: end-to-end CPU (JACK dummy)")
        _case(report, "case5", lambda: bench_e2e.run(mode, log=log), children=True)

    import os

    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    stem = "bench" if mode == "full" else "bench-quick"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    report["charts"] = charts(report, stem, args.results_dir)
    write_json(args.results_dir / f"{stem}.json", report)
    text = markdown(report)
    write_atomically(args.results_dir / f"{stem}.md", text)
    log(f"run.py: done in {report['elapsed_s']} s; wrote {args.results_dir / stem}.json, {stem}.md, "
        f"{', '.join(report['charts'])}")
    print(text)
    failed = [k for k in cases if "error" in report.get(f"case{k}", {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
