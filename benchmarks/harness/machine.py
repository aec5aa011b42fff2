"""Where a benchmark ran: CPU, caches, memory, OS, Python, numpy, PortAudio, packages; and how busy it was.

Absolute numbers only mean something next to this stamp, and on a shared
machine only next to how much CPU other processes took meanwhile.
"""

from __future__ import annotations

import datetime as _datetime
import importlib.metadata
import os
import platform
import resource
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

#: Distributions whose versions every report names (the anchors, and what the harness itself uses).
PACKAGES = ("audioring", "tflite-support", "sounddevice", "rtmixer", "pa-ringbuffer", "cffi", "JACK-Client", "soxr",
            "scipy", "matplotlib", "numpy")


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
    info = {"model": fields.get("model name", platform.processor() or platform.machine())}
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


def package_versions(names: Iterable[str]) -> dict:
    """Installed distribution versions (None if not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _dpkg_version(package: str) -> Optional[str]:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def system_versions() -> dict:
    """PortAudio as sounddevice loaded it, and the distribution packages of PortAudio and jackd."""
    versions: dict = {}
    try:
        import sounddevice

        versions["portaudio"] = sounddevice.get_portaudio_version()[1]
    except Exception as error:  # noqa: BLE001 - a stamp, not a requirement
        versions["portaudio"] = f"unavailable: {error}"
    for package in ("libportaudio2", "jackd2"):
        versions[package] = _dpkg_version(package)
    return versions


def machine_stamp(command: str) -> dict:
    """CPU, memory, OS, versions, date and command of this run."""
    import numpy as np

    try:
        memory_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        memory_kb = 0
    return {
        "cpu": _cpuinfo(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "caches": _caches(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version() + " (" + platform.python_implementation() + ")",
        "numpy": np.__version__,
        "system": system_versions(),
        "packages": package_versions(PACKAGES),
        "date": _datetime.datetime.now(_datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


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


def _machine_cpu_seconds() -> tuple:
    """(busy, steal) CPU-seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return (0.0, 0.0)
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return ((user + nice + system + irq + softirq) / hz, steal / hz)


def _own_cpu_seconds() -> float:
    """CPU of this process and of the children it has waited for (the worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Quietness:
    """How busy everything else was while a stretch of the benchmark ran.

    Counts this process and the children it has reaped (the workers, and
    jackd and the ramp client once stopped) as "own"; the rest of the
    machine's busy CPU is "other": on a quiet machine, close to nothing.
    """

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.own = _own_cpu_seconds()
        self.busy, self.steal = _machine_cpu_seconds()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        own = _own_cpu_seconds() - self.own
        busy, steal = (now - before for now, before in zip(_machine_cpu_seconds(), (self.busy, self.steal)))
        return {
            "wall_s": round(wall, 2),
            "own_cpu_s": round(own, 2),
            "other_cpu_s": round(max(0.0, busy - own), 2),
            "steal_s": round(steal, 2),
        }


def quietness_text(name: str, q: Optional[dict]) -> str:
    if not q:
        return ""
    return (f"{name}: {q['wall_s']:g} s, this benchmark {q['own_cpu_s']:g} CPU-s, other processes "
            f"{q['other_cpu_s']:g} CPU-s, steal {q['steal_s']:g} s")
