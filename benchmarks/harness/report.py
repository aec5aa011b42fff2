"""The report of a run: its Markdown (head, targets, each case's tables), its charts, its JSON.

Rendering reads only the report dict as stored in JSON, so a run and a later
``run.py --from-json`` write the same Markdown and charts byte for byte.
Targets are judged here, at rendering, from the measured numbers, by the
cases' own ``targets()``: nothing in a report is a hard-coded result.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from harness.formatting import yes_no
from harness.machine import cpu_text, quietness_text
from harness.provenance import provenance_line


def stamp_line(report: dict) -> str:
    """Two lines for the foot of every chart: machine, versions, provenance."""
    m = report["machine"]
    p = m["packages"]
    return (
        f"{m['cpu']['model']}, {m['logical_cpus']} CPUs | Python {m['python'].split()[0]}, numpy {m['numpy']}, "
        f"{m['system']['portaudio'].split(',')[0]} | {m['date']} | {report['mode']} run\n"
        f"audioring {report['provenance']['build']['version']} ({provenance_line(report['provenance'])}), "
        f"tflite-support {p.get('tflite-support')}, sounddevice {p.get('sounddevice')}, rtmixer {p.get('rtmixer')}"
    )


def _head(report: dict) -> list:
    m = report["machine"]
    s = m["system"]
    prov = report["provenance"]
    build = prov["build"]
    lines = [
        "# audioring against its anchors" + (" (quick run)" if report["mode"] == "quick" else ""),
        "",
    ]
    if prov["dirty"]:
        lines += ["**DIRTY RUN (`--allow-dirty`): these numbers are not those of a commit.** "
                  + " ".join(f"{reason[0].upper()}{reason[1:]}." for reason in prov["dirty_reasons"]), ""]
    lines += [
        f"- Checkout: `{prov['checkout']['head']}`" + (" with changes" if prov["checkout"]["changes"] else ", clean")
        + f"; build of audioring timed: `{build['build_revision']}`",
        f"- audioring {build['version']} imported from `{build['package_init']}`",
        f"- Machine: {cpu_text(m)}; caches {', '.join(m['caches']) or 'unknown'}; {m['memory_gib']} GiB RAM",
        f"- OS: {m['os']}",
        f"- Python {m['python']}, numpy {m['numpy']}, {s['portaudio']} (libportaudio2 {s.get('libportaudio2')}), "
        f"jackd2 {s.get('jackd2')}",
        "- Packages: " + ", ".join(f"{name} {version or '**not installed** (its columns are n/a)'}"
                                   for name, version in m["packages"].items()),
        f"- Date: {m['date']}; load average at start {', '.join(map(str, m['load_average_at_start']))}, "
        f"at end {', '.join(map(str, m.get('load_average_at_end', [])))}",
        f"- Command: `{m['command']}` (mode: {report['mode']}; {report.get('elapsed_s', '?')} s)",
    ]
    native = report.get("native")
    if native:
        lines.append(f"- C++ helpers (`benchmarks/*.cpp`): {native.get('compiler')} `{native.get('flags')}`")
    lines += [
        "",
        "Absolute numbers vary between machines and between runs on a shared machine; compare the columns of one "
        "run. The anchors are their own code as installed from PyPI.",
        "",
    ]
    return lines


def markdown(report: dict, cases: dict[str, ModuleType]) -> str:
    """The whole Markdown report."""
    lines = _head(report)
    ran = [name for name in cases if name in report["cases"]]
    noisy = [quietness_text(name, report["cases"][name].get("quietness")) for name in ran]
    noisy = [text for text in noisy if text]
    if noisy:
        lines += [f"Quietness (CPU of other processes while each case ran; {report['machine']['logical_cpus']} "
                  "CPUs): " + "; ".join(noisy) + ".", ""]
    targets = [(name, t) for name in ran if "error" not in report["cases"][name]
               for t in cases[name].targets(report["cases"][name])]
    if targets:
        lines += ["## Targets", "", "Judged from this run's measurements (\"n/a\": nothing in this run qualified).",
                  "", "| case | target | met | measured |", "|---|---|---|---|"]
        lines += [f"| {name} | {t['label']} | {yes_no(t['met'])} | {t['measured']} |" for name, t in targets]
        lines.append("")
    for number, name in enumerate(ran, 1):
        result = report["cases"][name]
        lines.append(f"## {number}. {cases[name].TITLE} (`{name}`)")
        lines.append("")
        if "error" in result:
            lines += [f"Failed: {result['error']}", ""]
            continue
        lines += cases[name].markdown(result)
        lines.append(f"_Case `{name}`: {result.get('elapsed_s', '?')} s._")
        lines.append("")
    return "\n".join(lines) + "\n"


def charts(report: dict, cases: dict[str, ModuleType], directory: Path, stem: str) -> list:
    """Draw every case's chart next to the report; return the file names."""
    stamp = stamp_line(report)
    written = []
    for name, module in cases.items():
        result = report["cases"].get(name)
        if not result or "error" in result or not hasattr(module, "chart"):
            continue
        path = directory / f"{stem}-{name}.png"
        module.chart(result, path, stamp)
        written.append(path.name)
    return written


def judged_targets(report: dict, cases: dict[str, ModuleType]) -> dict:
    """Every case's targets, as judged now (stored in the JSON for readers; rendering judges again)."""
    return {name: cases[name].targets(result) for name, result in report["cases"].items()
            if name in cases and "error" not in result}


def write_text(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a report."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def to_json(data: dict) -> str:
    return json.dumps(data, indent=2, default=_json_default) + "\n"


def _json_default(value: object) -> object:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
