"""The C++ helpers in ``benchmarks/``: building them with CMake, and the ctypes front of callback_timer.

``callback_timer.cpp`` (a shared library) calls PortAudio-shaped callbacks
exactly as PortAudio's audio thread does, and times ``std::memcpy`` as a
yardstick; ``ring_write.cpp`` (a program) times the native ring writer. Both
are built Release, with the module itself off, into ``build/bench``.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

import numpy as np

from harness.provenance import REPO

BUILD_DIR = REPO / "build" / "bench"


def run_checked(command: list, what: str) -> subprocess.CompletedProcess:
    """Run a command, capturing output; if it fails, raise with its output."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what}: command failed ({result.returncode}): {shlex.join(command)}\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def build_targets(build_dir: Path, targets: list) -> dict:
    """Configure (Release, benchmarks on, no Python module) and build `targets`.

    Returns the commands, compiler and flags, for the report.
    """
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake not found on PATH; it builds the C++ helpers in benchmarks/")
    configure = [cmake, "-S", str(REPO), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 "-DAUDIORING_BUILD_PYTHON=OFF", "-DAUDIORING_BUILD_TESTS=OFF", "-DAUDIORING_BUILD_BENCHMARKS=ON",
                 "-DAUDIORING_SANITIZE="]
    build = [cmake, "--build", str(build_dir), "--parallel", str(os.cpu_count() or 1)]
    for target in targets:
        build += ["--target", target]
    started = time.perf_counter()
    run_checked(configure, "configuring the benchmark helpers")
    run_checked(build, "building the benchmark helpers")
    cache = cmake_cache(build_dir, ("CMAKE_CXX_COMPILER", "CMAKE_CXX_FLAGS", "CMAKE_CXX_FLAGS_RELEASE"))
    return {"commands": [shlex.join(configure), shlex.join(build)], "compiler": cache.get("CMAKE_CXX_COMPILER"),
            "flags": (cache.get("CMAKE_CXX_FLAGS", "") + " " + cache.get("CMAKE_CXX_FLAGS_RELEASE", "")).strip(),
            "seconds": round(time.perf_counter() - started, 1)}


def cmake_cache(build_dir: Path, keys: tuple) -> dict:
    found = {}
    try:
        for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
            name, _, value = line.partition("=")
            if name.split(":")[0] in keys:
                found[name.split(":")[0]] = value
    except OSError:
        pass
    return found


def helper_path(build_dir: Path, name: str) -> Path:
    return build_dir / "benchmarks" / name


class CallbackTimer:
    """ctypes front of callback_timer.cpp: calls a stream callback `calls` times, as PortAudio would."""

    def __init__(self, library: Path, rate: float) -> None:
        self.lib = ctypes.CDLL(str(library))  # CDLL: the GIL is released during calls, as on PortAudio's thread
        self.lib.ar_time_callback.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_double,
            ctypes.POINTER(ctypes.c_double), ctypes.c_longlong, ctypes.c_longlong, ctypes.POINTER(ctypes.c_longlong),
        ]
        self.lib.ar_time_callback.restype = ctypes.c_int
        self.lib.ar_memcpy_ns.argtypes = [
            ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int, ctypes.POINTER(ctypes.c_longlong),
        ]
        self.lib.ar_memcpy_ns.restype = ctypes.c_int
        longs = ctypes.POINTER(ctypes.c_longlong)
        self.lib.ar_paced_callback.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_double,
            ctypes.POINTER(ctypes.c_double), ctypes.c_longlong, ctypes.c_longlong, longs, longs, longs,
        ]
        self.lib.ar_paced_callback.restype = ctypes.c_int
        self.rate = float(rate)
        self.clock = ctypes.c_double(1.0)

    def batch(self, callback: int, user_data: Optional[int], block: np.ndarray, calls: int) -> int:
        """Nanoseconds of `calls` calls of `callback` with `block` as input."""
        out = (ctypes.c_longlong * 1)()
        result = self.lib.ar_time_callback(callback, user_data, block.ctypes.data, len(block), self.rate,
                                           ctypes.byref(self.clock), calls, 1, out)
        if result != 0:
            raise RuntimeError(f"callback returned {result} (not paContinue)")
        return int(out[0])

    def single_calls(self, callback: int, user_data: Optional[int], block: np.ndarray, calls: int) -> np.ndarray:
        """Nanoseconds of each of `calls` calls of `callback` (int64), each timed alone: a clock read before and
        after it, so tails show, at the price of the clock's own cost in every sample."""
        out = np.empty(calls, dtype=np.int64)
        result = self.lib.ar_time_callback(callback, user_data, block.ctypes.data, len(block), self.rate,
                                           ctypes.byref(self.clock), 1, calls,
                                           out.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong)))
        if result != 0:
            raise RuntimeError(f"callback returned {result} (not paContinue)")
        return out

    def paced_calls(self, callback: int, user_data: Optional[int], frames: int, count: int,
                    period_ns: int) -> dict:
        """Call `callback` `count` times, one block of `frames` stamped frames every `period_ns`, as a device does.

        Each frame of a block holds (as two int32 channels) the int64
        ``time.monotonic_ns()`` at which the block was handed over. Returns
        ``stamps`` and ``publish_ns`` (from the stamp to the callback's return),
        one per block, and ``late``: blocks handed over after their due time.
        """
        block = np.zeros((frames, 2), dtype=np.int32)
        stamps, publish = np.empty(count, dtype=np.int64), np.empty(count, dtype=np.int64)
        late = ctypes.c_longlong(0)
        pointer = ctypes.POINTER(ctypes.c_longlong)
        result = self.lib.ar_paced_callback(callback, user_data, block.ctypes.data, frames, self.rate,
                                            ctypes.byref(self.clock), count, period_ns,
                                            stamps.ctypes.data_as(pointer), publish.ctypes.data_as(pointer),
                                            ctypes.byref(late))
        if result != 0:
            raise RuntimeError(f"callback returned {result} (not paContinue)")
        return {"stamps": stamps.tolist(), "publish_ns": publish.tolist(), "late": int(late.value)}

    def memcpy_ns(self, block_bytes: int, ring_bytes: int, total_bytes: int, reps: int) -> list:
        """std::memcpy of blocks into a buffer of `ring_bytes`, wrapping around as a ring does; ns per rep."""
        out = (ctypes.c_longlong * reps)()
        if self.lib.ar_memcpy_ns(block_bytes, ring_bytes, total_bytes, reps, out) != 0:
            raise ValueError("bad memcpy sizes")
        return list(out)
