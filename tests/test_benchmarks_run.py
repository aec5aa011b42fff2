"""``benchmarks/run.py`` runs: its quick mode completes every case, and its provenance guard refuses a dirty tree.

The quick run measures nothing that is published (its numbers go to a
temporary directory, never over ``benchmarks/results/``); it keeps the
harness, every case and the anchors they import runnable. It needs the
``bench`` extra and the C++ helpers' toolchain, as ``benchmarks/README.md`` says.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
CASES = sorted(path.stem for path in (BENCHMARKS / "cases").glob("*.py") if path.stem != "__init__")


def _errors(value: object, where: str = "") -> list[str]:
    """Every ``error`` recorded anywhere in a report (a worker or a case that failed), with where."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "error":
                found.append(f"{where}: {str(item)[:300]}")
            found += _errors(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _errors(item, f"{where}[{index}]")
    return found


def _results_files() -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (BENCHMARKS / "results").iterdir()}


def test_quick_run_completes_every_case(tmp_path):
    published = _results_files()
    out = tmp_path / "results"
    # --allow-dirty: a test run's tree or installed build may differ from HEAD (the results are stamped so).
    command = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--allow-dirty", "--results-dir", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-6000:]
    report = json.loads((out / "bench-quick.json").read_text())
    assert report["mode"] == "quick"
    assert sorted(report["cases"]) == CASES, "run.py's cases are not the modules of benchmarks/cases/"
    assert not _errors(report), "\n".join(_errors(report)) + "\n" + result.stderr[-4000:]
    markdown = (out / "bench-quick.md").read_text()
    assert result.stdout.strip() == markdown.strip()  # the Markdown goes to stdout too
    assert ("DIRTY" in markdown) == report["provenance"]["dirty"]
    # A case's chart is in its report module (tests/test_benchmarks_layout.py: one per case).
    charted = [case for case in CASES if "\ndef chart(" in (BENCHMARKS / "reports" / f"{case}.py").read_text()]
    assert charted and all((out / f"bench-quick-{case}.png").stat().st_size > 0 for case in charted)
    assert _results_files() == published, "the quick run touched benchmarks/results/"
    seconds = ", ".join(f"{name} {case['elapsed_s']:g} s" for name, case in report["cases"].items())
    print(f"\nrun.py --quick: {report['elapsed_s']:g} s ({seconds})")


def _git(checkout: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(checkout), "-c", "user.name=audioring tests", "-c", "user.email=tests@invalid",
                    *args], check=True, capture_output=True, text=True, timeout=60)


def test_provenance_guard_refuses_a_dirty_checkout(tmp_path):
    # A checkout of its own (the benchmarks alone), so that its state is the test's to choose.
    checkout = tmp_path / "checkout"
    shutil.copytree(BENCHMARKS, checkout / "benchmarks", ignore=shutil.ignore_patterns("results", "__pycache__"))
    _git(checkout, "init", "--quiet")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "--quiet", "-m", "benchmarks")
    (checkout / "stray.txt").write_text("not committed\n")
    out = tmp_path / "results"

    def run() -> subprocess.CompletedProcess:
        command = [sys.executable, str(checkout / "benchmarks" / "run.py"), "--quick", "--results-dir", str(out)]
        return subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=120, check=False)

    dirty = run()
    assert dirty.returncode != 0 and "refusing to benchmark" in dirty.stderr, dirty.stderr
    assert "the checkout differs from HEAD" in dirty.stderr and "?? stray.txt" in dirty.stderr, dirty.stderr
    # Clean, it is still refused, for the other reason only: the installed audioring was not built from its HEAD.
    (checkout / "stray.txt").unlink()
    clean = run()
    assert clean.returncode != 0 and "refusing to benchmark" in clean.stderr, clean.stderr
    assert "the checkout differs from HEAD" not in clean.stderr and "not from HEAD" in clean.stderr, clean.stderr
    assert not out.exists()  # refused before measuring or writing anything
