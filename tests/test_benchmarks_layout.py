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


def _top_level_names(tree: ast.Module) -> set:
    """The names a module defines itself: functions, classes, assignments (imports not counted)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def test_every_case_reports_in_its_own_module():
    # Issue 19: each case measures in cases/<case>.py and reports (TITLE, targets, Markdown, chart, from
    # the stored result) in reports/<case>.py, which imports no measuring code; the case offers the
    # report as its own, so run.py sees one interface per case.
    report_parts = {"TITLE", "targets", "markdown", "chart"}
    cases = sorted(path.stem for path in (BENCHMARKS / "cases").glob("*.py") if path.stem != "__init__")
    reports = sorted(path.stem for path in (BENCHMARKS / "reports").glob("*.py") if path.stem != "__init__")
    assert reports == cases, "reports/ must hold exactly one module per case"
    modules = _modules()
    for case in cases:
        case_path, report_path = BENCHMARKS / "cases" / f"{case}.py", BENCHMARKS / "reports" / f"{case}.py"
        case_tree, report_tree = ast.parse(case_path.read_text()), ast.parse(report_path.read_text())
        reported = _top_level_names(report_tree) & report_parts
        assert {"TITLE", "targets", "markdown"} <= reported, f"{report_path} lacks {report_parts - reported}"
        assert not _top_level_names(case_tree) & report_parts, \
            f"{case_path} defines {sorted(_top_level_names(case_tree) & report_parts)}: they belong in {report_path}"
        offered = {alias.asname or alias.name for node in case_tree.body
                   if isinstance(node, ast.ImportFrom) and node.module == f"reports.{case}" for alias in node.names}
        assert reported <= offered, f"{case_path} does not import {sorted(reported - offered)} from reports.{case}"
        exported = next((ast.literal_eval(node.value) for node in case_tree.body if isinstance(node, ast.Assign)
                         and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)), [])
        assert reported <= set(exported), f"{case_path}'s __all__ leaves out {sorted(reported - set(exported))}"
        measuring = {name for name in _local_imports(report_path, modules)
                     if name in ("cases", "reports", "run", "worker") or name.startswith(("cases.", "reports."))}
        assert not measuring, f"{report_path} imports {sorted(measuring)}: a report imports harness only"
