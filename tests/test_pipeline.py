"""How a recorder is put together: its package imports without cycles, and its device is looked up once.

The stages themselves (rings, conversion, sources) are tested through what
they record: test_record_virtual.py, test_conversion.py, test_record_servers.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import sounddevice as sd

from audioring import AudioRecord, VirtualInput
from audioring._sources import as_device

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "audioring"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    """Whether ``audioring.x.y`` names a module: a package, a .py file, or the compiled _core (its .pyi stub)."""
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    path = PACKAGE / relative
    return (path / "__init__.py").is_file() or any(path.with_suffix(suffix).is_file() for suffix in (".py", ".pyi"))


def _imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, at any depth (function-level imports included)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "audioring")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            elif node.module and node.module.split(".")[0] == "audioring":
                source = node.module
            else:
                continue
            # `from pkg import name` imports the module pkg.name if there is one, else pkg itself.
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if _is_module(f"{source}.{alias.name}") else source)
    found.discard(module)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as the modules along it, or [] if there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_package_imports_without_cycles_even_through_deferred_imports():
    graph = {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}
    assert graph["audioring._record"], "the scan found the recorder's imports"  # the premise: it reads them
    assert _cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    # The control: the check above could not pass by a finder that finds nothing.
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("device_rate", [None, 44100], ids=["device-rate", "converting"])
def test_a_portaudio_device_is_looked_up_once_per_recorder(pulse_server, monkeypatch, device_rate):
    # Looked up twice (once to plan the rate, once to open it), a name could
    # match another device the second time: the stream would be opened on a
    # device other than the one its rate was planned for.
    lookups: list[object] = []
    query_devices = sd.query_devices

    def counting(device: object = None, kind: object = None) -> object:
        if kind == "input":
            lookups.append(device)
        return query_devices(device, kind)

    monkeypatch.setattr(sd, "query_devices", counting)
    with AudioRecord(1, 16000, 1600, device="pulse", device_rate=device_rate) as rec:
        assert rec.converting == (device_rate is not None)
    assert lookups == ["pulse"]


@pytest.mark.parametrize(
    ("device", "portaudio"),
    [(None, True), (0, True), (np.int64(0), True), ("pulse", True), (VirtualInput("sine"), False)],
    ids=["default", "index", "numpy-index", "name", "virtual"],
)
def test_a_resolved_device_says_whether_it_opens_through_portaudio(device, portaudio):
    # What the CLI asks before falling back from a failing device: the device
    # resolved as AudioRecord resolves it answers, not a second isinstance.
    # Nothing is looked up to answer (no sound server is running here).
    assert as_device(device).portaudio is portaudio
