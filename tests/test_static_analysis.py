"""Static analysis finds nothing: cppcheck in csrc/, ruff in the Python code (each suppression is justified
where it stands; ruff's rules are in pyproject.toml's [tool.ruff]).

A missing tool skips on a developer's machine but fails under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _missing(reason: str) -> None:
    """Skip (developer machine) or fail (CI=true): a tool the test needs is not installed."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def test_cppcheck_is_clean():
    cppcheck = shutil.which("cppcheck")
    if cppcheck is None:
        _missing("cppcheck is not installed (Debian: apt install cppcheck)")
    result = subprocess.run(
        [cppcheck, "--enable=warning,style,performance,portability", "--std=c++17", "--language=c++",
         "--inline-suppr", "--error-exitcode=1", "--quiet", "-D__linux__", "-D__unix__", "-I", "csrc", "csrc"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _ruff() -> list[str]:
    """The command that runs ruff: the test extra's, else one on PATH."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    if found is None:
        _missing("ruff is not installed (pip install '.[test]')")
    return [found]


def test_ruff_is_clean():
    # The whole repository (package, tests, benchmarks); what ruff skips (build/, .gitignore'd files)
    # is ruff's default. No cache: the test must not write into the checkout.
    result = subprocess.run(
        [*_ruff(), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"ruff check found problems:\n{result.stdout}{result.stderr}"
    assert "All checks passed" in result.stdout, result.stdout + result.stderr  # it really checked


def test_no_file_holds_a_merge_conflict_marker():
    # A conflict resolved by hand once left its markers in the README, where no test ran into them.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    marked = []
    for name in filter(None, tracked.decode().split("\0")):
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".json"):
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        marked += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1)
                   if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "<<<<<<<"]
    assert not marked, marked
