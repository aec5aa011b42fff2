"""The benchmark harness's layout: its modules import without cycles and without editing sys.path."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _modules() -> dict:
    """Module name (as imported with benchmarks/ on sys.path) -> source file."""
    found = {}
    for path in sorted(BENCHMARKS.rglob("*.py")):
        parts = list(path.relative_to(BENCHMARKS).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _local_imports(path: Path, modules: dict) -> set:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        imported |= {name for name in names if name in modules}
    return imported


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _local_imports(path, modules) for name, path in modules.items()}
    # A package's __init__ importing its own submodules is not a cycle of the code.
    graph = {name: {m for m in deps if not m.startswith(name + ".")} for name, deps in graph.items()}
    visiting, done = [], set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, f"import cycle: {' -> '.join(visiting[visiting.index(name):] + [name])}"
        visiting.append(name)
        for dependency in sorted(graph[name]):
            visit(dependency)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_no_sys_path_edits():
    for path in _modules().values():
        text = path.read_text()
        assert "sys.path.insert" not in text and "sys.path.append" not in text, f"{path} edits sys.path"


def test_every_module_imports():
    # The modules import matplotlib at the top (the test extra has it); the
    # anchors themselves (rtmixer, tflite-support, JACK-Client) are imported by
    # the recorders that need them, when a case runs.
    names = sorted(name for name in _modules() if name not in ("run", "worker"))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS)}
    result = subprocess.run([sys.executable, "-c", code, *names, "run", "worker"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
