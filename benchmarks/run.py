#!/usr/bin/env python3
"""audioring against its anchors, side by side in one run on one machine.

The anchors are their own code as installed from PyPI, never re-implemented:
tflite-support's ``AudioRecord`` (the class audioring replaces), a
``sounddevice.InputStream`` whose Python callback puts copies on a
``queue.Queue``, and ``rtmixer.Recorder`` recording into its ``RingBuffer``.
The cases are the modules of ``cases/`` (see ``cases/__init__.py`` and each
module's docstring); the harness they share is ``harness/``.

Usage::

    python benchmarks/run.py                  # full run: about 17 minutes, plus 27 for disk and 32 for drift
    python benchmarks/run.py --quick          # under 3 minutes: fewer and shorter runs
    python benchmarks/run.py --cases read,stall
    python benchmarks/run.py --from-json benchmarks/results/bench.json   # re-render Markdown and charts

Writes ``bench.json`` (every number, the machine, the provenance),
``bench.md`` (the tables and the targets, judged from the numbers) and
``bench-<case>.png`` into ``benchmarks/results/`` (``--results-dir``);
``--quick`` writes ``bench-quick.*`` and a subset of cases
``bench[-quick]-partial.*``, so neither replaces full results.

It refuses to run from a checkout that differs from HEAD, or with an
installed audioring not built from HEAD, unless ``--allow-dirty`` (which
stamps the results dirty): see ``harness/provenance.py``. The exit status is
non-zero if a case failed to run; targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

import cases
from harness import report as reporting
from harness.context import RunContext, log
from harness.machine import Quietness, machine_stamp
from harness.native import BUILD_DIR
from harness.provenance import REPO, provenance

RESULTS_DIR = REPO / "benchmarks" / "results"


def _parse(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (under 3 minutes): fewer, shorter runs")
    parser.add_argument("--cases", default=",".join(cases.CASE_NAMES),
                        help=f"comma-separated cases, from {', '.join(cases.CASE_NAMES)} (default: all)")
    parser.add_argument("--no-realtime", action="store_true",
                        help="leave out the realtime jackd (-R) variant of the stall and capacity cases")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run even if the checkout or the installed build differs from HEAD; results are "
                        "stamped dirty")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="output directory (default: %(default)s)")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR,
                        help="CMake build directory of the C++ helpers (default: %(default)s)")
    parser.add_argument("--from-json", type=Path, metavar="JSON",
                        help="measure nothing: write the Markdown and charts again from a results JSON, next to it")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(chosen) - set(cases.CASE_NAMES)
    if unknown:
        parser.error(f"--cases: unknown {sorted(unknown)}; choose from {', '.join(cases.CASE_NAMES)}")
    args.chosen = [c for c in cases.CASE_NAMES if c in chosen]
    return args


def render(report: dict, directory: Path, stem: str) -> str:
    """Write the Markdown and charts of a stored report; return the Markdown."""
    modules = cases.load([name for name in cases.CASE_NAMES if name in report["cases"]])
    text = reporting.markdown(report, modules)
    reporting.charts(report, modules, directory, stem)
    reporting.write_text(directory / f"{stem}.md", text)
    return text


def measure(args: argparse.Namespace, command: str) -> dict:
    record = provenance(args.allow_dirty)  # before anything slow: a refused run fails at once
    if record["dirty"]:
        log("run.py: DIRTY run (--allow-dirty): " + "; ".join(record["dirty_reasons"]))
    mode = "quick" if args.quick else "full"
    ctx = RunContext(mode, args.build_dir.resolve(), realtime=not args.no_realtime)
    report: dict = {"mode": mode, "provenance": record, "machine": machine_stamp(command), "cases": {}}
    started = time.perf_counter()
    modules = cases.load(args.chosen)
    for name, module in modules.items():
        log(f"run.py ({mode}): {name}: {module.TITLE}")
        quietness = Quietness()
        case_started = time.perf_counter()
        try:
            result = module.run(ctx)
        except Exception as error:  # noqa: BLE001 - one failing case must not lose the others
            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
        result["quietness"] = quietness.stop()
        result["elapsed_s"] = round(time.perf_counter() - case_started, 1)
        report["cases"][name] = result
    report["native"] = ctx.native
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["targets"] = reporting.judged_targets(report, modules)
    return report


def main(argv: list | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        if "provenance" not in report or "cases" not in report:
            raise SystemExit(f"{args.from_json} was not written by this harness (no provenance or cases): run the "
                             "benchmarks again")
        render(report, args.from_json.parent, args.from_json.stem)
        log(f"run.py: wrote {args.from_json.stem}.md and its charts from {args.from_json}")
        return 0
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    report = measure(args, command)
    stem = "bench" + ("-quick" if args.quick else "") + ("" if args.chosen == list(cases.CASE_NAMES) else "-partial")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.results_dir / f"{stem}.json"
    reporting.write_text(json_path, reporting.to_json(report))
    # Rendered from the JSON as written, exactly as --from-json renders it: the two agree byte for byte.
    text = render(json.loads(json_path.read_text()), args.results_dir, stem)
    log(f"run.py: done in {report['elapsed_s']} s; wrote {json_path}, {stem}.md and charts")
    print(text)
    return 1 if any("error" in result for result in report["cases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
