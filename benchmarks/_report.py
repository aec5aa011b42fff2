"""Shared helpers of the benchmark scripts: machine stamp, quietness, timing, building, formatting.

Used by ``bench_ring.py`` and ``run.py`` (with its ``bench_*.py`` cases). Not
a public module: the benchmarks import it from their own directory.
"""

from __future__ import annotations

import datetime as _datetime
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO / "build" / "bench"
RESULTS_DIR = REPO / "benchmarks" / "results"


# ---- machine and version stamp ------------------------------------------------


def _cpuinfo() -> dict:
    fields: dict = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine()}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    model = fields.get("model name", platform.processor() or platform.machine())
    info = {"model": model}
    for key, name in (("cpu family", "family"), ("model", "model_number"), ("stepping", "stepping")):
        if key in fields:
            info[name] = fields[key]
    info["virtualized"] = "hypervisor" in fields.get("flags", "").split()
    return info


def _caches() -> list:
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction":
            caches.append(f"L{level} {size}")
    return caches


def git_commit() -> str:
    """Short commit of the repository, with ``+dirty`` if tracked files changed."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def package_versions(names: Iterable[str]) -> dict:
    """Installed distribution versions (``None`` if not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_stamp(command: str, packages: Iterable[str] = ()) -> dict:
    """Where and with what a benchmark ran: CPU, memory, OS, versions, git commit, date, command.

    ``packages`` adds the installed versions of those distributions under ``"packages"``.
    """
    import audioring  # the installed package being measured

    cpu = _cpuinfo()
    try:
        memory_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        memory_kb = 0
    stamp = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "caches": _caches(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version() + " (" + platform.python_implementation() + ")",
        "numpy": np.__version__,
        "audioring": audioring.__version__,
        "audioring_path": str(Path(audioring.__file__).parent),
        "git_commit": git_commit(),
        "date": _datetime.datetime.now(_datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    packages = list(packages)
    if packages:
        stamp["packages"] = package_versions(packages)
    return stamp


def cpu_text(machine: dict) -> str:
    """One line describing the CPU of a machine stamp."""
    cpu = machine["cpu"]
    text = cpu["model"]
    if "family" in cpu:
        text += f" (family {cpu['family']}, model {cpu.get('model_number', '?')}, stepping {cpu.get('stepping', '?')})"
    text += f", {machine['logical_cpus']} logical CPUs"
    if cpu.get("virtualized"):
        text += ", virtual machine"
    return text


class Quietness:
    """How much of a measured stretch this process got the CPU, and how busy everything else was.

    ``children=True`` counts the CPU time of waited-for child processes
    instead of this process's own.
    """

    def __init__(self, children: bool = False) -> None:
        self.children = children
        self.wall = time.perf_counter()
        self.own = self._own()
        self.machine = self._machine()

    def _own(self) -> float:
        if self.children:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return usage.ru_utime + usage.ru_stime
        return time.process_time()

    @staticmethod
    def _machine() -> tuple:
        """(busy, steal) CPU-seconds of the whole machine, from /proc/stat."""
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return (0.0, 0.0)
        hz = os.sysconf("SC_CLK_TCK")
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return ((user + nice + system + irq + softirq) / hz, steal / hz)

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        own = self._own() - self.own
        busy, steal = (now - before for now, before in zip(self._machine(), self.machine))
        return {
            "wall_s": round(wall, 2),
            "own_cpu_share": round(own / wall, 3) if wall > 0 else None,
            "other_cpu_s": round(max(0.0, busy - own), 2),
            "steal_s": round(steal, 2),
        }


class MachineLoad:
    """CPU-seconds the whole machine spent busy over a stretch, from /proc/stat (for runs in child processes)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.busy, self.steal = Quietness._machine()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        busy, steal = Quietness._machine()
        return {"wall_s": round(wall, 2), "machine_busy_cpu_s": round(busy - self.busy, 2),
                "steal_s": round(steal - self.steal, 2)}


def quietness_text(name: str, q: Optional[dict]) -> str:
    if not q:
        return ""
    if "own_cpu_share" in q:
        return (
            f"{name}: {q['wall_s']:g} s, this benchmark on CPU {100 * (q['own_cpu_share'] or 0):.0f}% of it, "
            f"other processes {q['other_cpu_s']:g} CPU-s, steal {q['steal_s']:g} s"
        )
    return f"{name}: {q['wall_s']:g} s, whole machine busy {q['machine_busy_cpu_s']:g} CPU-s, steal {q['steal_s']:g} s"


# ---- timing ------------------------------------------------------------------------


def percentile(sorted_values: list, fraction: float) -> float:
    """The value at `fraction` (0..1) of already sorted values (nearest rank)."""
    return sorted_values[min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))]


def summarize(per_call_ns: list) -> dict:
    """Median, 10th/90th percentile, min and count of per-call nanoseconds."""
    values = sorted(per_call_ns)
    return {
        "median_ns": statistics.median(values),
        "p10_ns": percentile(values, 0.1),
        "p90_ns": percentile(values, 0.9),
        "min_ns": values[0],
        "samples": len(values),
    }


def time_batches(
    call: Callable[[], object],
    seconds: float,
    least: int,
    most: int,
    min_batch_ns: int,
    max_calls: int = 1 << 20,
) -> tuple:
    """Per-call ns of `call()`, timed in batches that grow until one takes `min_batch_ns`.

    Batches repeat until `seconds` have passed (at least `least`, at most
    `most` batches). Returns (per-call ns of each batch, calls per batch).
    A call slower than the whole budget is still timed `least` times: cap
    slow cases with `least`, not with a count of calls.
    """
    clock = time.perf_counter_ns

    def batch(calls: int) -> int:
        start = clock()
        for _ in range(calls):
            call()
        return clock() - start

    calls = 1
    elapsed = batch(calls)  # warm-up
    while elapsed < min_batch_ns and calls < max_calls:
        calls *= 2 if elapsed * 4 > min_batch_ns else 8
        calls = min(calls, max_calls)
        elapsed = batch(calls)
    per_call = []
    deadline = time.perf_counter() + seconds
    while len(per_call) < most and (len(per_call) < least or time.perf_counter() < deadline):
        per_call.append(batch(calls) / calls)
    return per_call, calls


# ---- building the C++ helpers ----------------------------------------------------------


def run_checked(command: list, what: str = "benchmark", **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing output; on failure print it and exit."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"{what}: command failed ({result.returncode}): {shlex.join(command)}")
    return result


def build_targets(build_dir: Path, targets: list, what: str = "benchmark") -> list:
    """Configure (Release, benchmarks on, no Python module) and build `targets`; return the commands."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise SystemExit(f"{what}: cmake not found on PATH; it is needed to build the programs in benchmarks/")
    configure = [
        cmake,
        "-S",
        str(REPO),
        "-B",
        str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DAUDIORING_BUILD_PYTHON=OFF",
        "-DAUDIORING_BUILD_TESTS=OFF",
        "-DAUDIORING_BUILD_BENCHMARKS=ON",
        "-DAUDIORING_SANITIZE=",
    ]
    build = [cmake, "--build", str(build_dir), "--parallel", str(os.cpu_count() or 1)]
    for target in targets:
        build += ["--target", target]
    started = time.perf_counter()
    run_checked(configure, what)
    run_checked(build, what)
    print(f"  built {', '.join(targets)} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return [shlex.join(configure), shlex.join(build)]


def cmake_cache(build_dir: Path, keys: tuple) -> dict:
    found = {}
    try:
        for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
            name, _, value = line.partition("=")
            name = name.split(":")[0]
            if name in keys:
                found[name] = value
    except OSError:
        pass
    return found


# ---- formatting and output -----------------------------------------------------------------


def fmt_ns(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    if value >= 1e9:
        return f"{value / 1e9:,.2f} s"
    if value >= 1e6:
        return f"{value / 1e6:,.2f} ms"
    if value >= 1e3:
        return f"{value / 1e3:,.2f} µs"
    return f"{value:,.0f} ns"


def fmt_size(nbytes: int, binary: bool = False) -> str:
    units = ((("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)) if binary
             else (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)))
    for unit, scale in units:
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} B"


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
