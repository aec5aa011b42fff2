"""Builds and runs the C++ tests of the ring (``tests/cpp``) with ctest.

Three modes, each in its own build directory under the repository root, reused
between runs so that a rerun only rebuilds what changed:

- ``none``: ``build/cpp-none``, no sanitizer;
- ``thread``: ``build/cpp-thread``, ThreadSanitizer;
- ``address,undefined``: ``build/cpp-address-undefined``, AddressSanitizer and
  UndefinedBehaviorSanitizer.

And builds the C++ benchmark programs of ``benchmarks/`` (``build/bench-check``)
with the project's warning flags and ``-Werror``, so that they stay compilable.

The compiler is CMake's choice (set ``CXX`` to pick one, e.g. ``CXX=clang++``;
it applies when a build directory is first configured). Without CMake, a C++
compiler or the sanitizer's runtime, the tests are skipped, which fails the run
under ``CI=true`` (tests/conftest.py): CI must never pass by skipping them.

Run only these: ``python -m pytest -m native``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

pytestmark = pytest.mark.native

ROOT = Path(__file__).resolve().parent.parent
MODES = ["none", "thread", "address,undefined"]

# Generous bounds; the three modes take well under a minute each on 2 cores.
_BUILD_TIMEOUT = 900
_CTEST_TIMEOUT = 600
_MAX_OUTPUT = 30_000  # characters of tool output quoted in a failure


def _unavailable(reason: str) -> NoReturn:
    """The toolchain cannot run these tests: skip (a failure under CI=true, tests/conftest.py)."""
    pytest.skip(reason)


def _compiler() -> str | None:
    """The C++ compiler CMake will pick: $CXX, else the usual names."""
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        return shutil.which(cxx)
    for name in ("c++", "g++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _tail(text: str) -> str:
    return text if len(text) <= _MAX_OUTPUT else "[...]\n" + text[-_MAX_OUTPUT:]


def _run(command: list[str], cwd: Path, timeout: int, what: str) -> str:
    """Runs `command`; returns its output, or fails the test quoting it.

    The command gets its own process group, so that on a timeout the build
    or test processes it started are killed with it.
    """
    with subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            timed_out = True
    if timed_out:  # reported outside `except`: no chained traceback
        pytest.fail(f"{what} timed out after {timeout} s: {' '.join(command)}\n{_tail(output)}", pytrace=False)
    if process.returncode != 0:
        pytest.fail(
            f"{what} failed (exit status {process.returncode}) in {cwd}: {' '.join(command)}\n{_tail(output)}",
            pytrace=False,
        )
    return output


def _check_sanitizer(compiler: str, sanitize: str) -> None:
    """Compiles and runs a tiny threaded program with the sanitizer, so that a
    missing runtime (or a kernel the runtime rejects) is reported as such
    instead of as a failure of the tests."""
    source = "#include <thread>\nint main() { int x = 0; std::thread t([&] { x = 1; }); t.join(); return x - 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "probe"
        (Path(tmp) / "probe.cpp").write_text(source)
        command = [compiler, "-std=c++17", f"-fsanitize={sanitize}", "-pthread", "probe.cpp", "-o", str(program)]
        error = None
        try:
            built = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=120, check=False)
            ran = None
            if built.returncode == 0:
                ran = subprocess.run([str(program)], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            error = e
    if error is not None:  # reported outside `except`: no chained traceback
        _unavailable(f"cannot try -fsanitize={sanitize} with {compiler}: {error}")
    elif built.returncode != 0:
        _unavailable(f"{compiler} cannot build with -fsanitize={sanitize}:\n{_tail(built.stderr)}")
    elif ran is not None and ran.returncode != 0:
        _unavailable(
            f"a program built with -fsanitize={sanitize} by {compiler} does not run here "
            f"(exit status {ran.returncode}; for ThreadSanitizer on recent kernels try "
            f"`sysctl vm.mmap_rnd_bits=28`):\n{_tail(ran.stderr)}"
        )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on `path` (where the OS offers flock)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cached(build_dir: Path, key: str) -> str | None:
    """A value from build_dir's CMakeCache.txt, or None."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return None
    for line in cache.read_text(errors="replace").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.split(":", 1)[0] == key:
            return value
    return None


def _generator_arguments(build_dir: Path) -> list[str]:
    """CMake's ``-G`` arguments for `build_dir`, made ready to be (re)configured.

    A directory configured by another generator or for another source tree
    cannot be reused: it is started afresh (it is ours alone).
    """
    generator = "Ninja" if shutil.which("ninja") else None
    cached_generator = _cached(build_dir, "CMAKE_GENERATOR")
    cached_source = _cached(build_dir, "CMAKE_HOME_DIRECTORY")
    if (cached_generator is not None and generator is not None and cached_generator != generator) or (
        cached_source is not None and Path(cached_source).resolve() != ROOT
    ):
        shutil.rmtree(build_dir)
        cached_generator = None
    build_dir.mkdir(parents=True, exist_ok=True)
    return ["-G", generator] if generator is not None and cached_generator is None else []


def _configure_build_test(build_dir: Path, sanitize: str, cmake: str, ctest: str) -> None:
    # A configured directory keeps its compiler; a new one gets CMake's choice.
    compiler = _cached(build_dir, "CMAKE_CXX_COMPILER") or _compiler()
    if compiler is None or shutil.which(compiler) is None:
        _unavailable(f"no C++ compiler found ({compiler or '$CXX, c++, g++ or clang++'})")
    if sanitize != "none":
        _check_sanitizer(compiler, sanitize)

    configure = [cmake, "-S", str(ROOT), "-B", str(build_dir), *_generator_arguments(build_dir)]
    configure += [
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
        "-DAUDIORING_BUILD_PYTHON=OFF",
        "-DAUDIORING_BUILD_TESTS=ON",
        "-DAUDIORING_BUILD_BENCHMARKS=OFF",
        f"-DAUDIORING_SANITIZE={'' if sanitize == 'none' else sanitize}",
    ]
    _run(configure, ROOT, _BUILD_TIMEOUT, "CMake configure")
    jobs = str(os.cpu_count() or 2)
    _run([cmake, "--build", str(build_dir), "--parallel", jobs], ROOT, _BUILD_TIMEOUT, "C++ build")
    # One test at a time: the fuzz tests are timed and use two or three threads each.
    output = _run([ctest, "--output-on-failure", "--no-tests=error"], build_dir, _CTEST_TIMEOUT, "ctest")
    assert "100% tests passed" in output, _tail(output)


@pytest.mark.parametrize("sanitize", MODES)
def test_ctest(sanitize: str) -> None:
    """Configures, builds and runs ctest for one sanitizer mode."""
    cmake = shutil.which("cmake")
    ctest = shutil.which("ctest")
    if cmake is None or ctest is None:
        _unavailable("cmake/ctest not found on PATH")
    build_dir = ROOT / "build" / ("cpp-" + sanitize.replace(",", "-"))
    build_dir.parent.mkdir(exist_ok=True)
    # Two pytest sessions (or xdist workers) must not build one directory at once.
    with _locked(build_dir.with_name(build_dir.name + ".lock")):
        _configure_build_test(build_dir, sanitize, cmake, ctest)


def _project_warnings() -> list[str]:
    """The warning flags CMakeLists.txt gives every target (``AUDIORING_WARNINGS``, GCC and Clang)."""
    found = re.search(r"set\(AUDIORING_WARNINGS (-W[^)]*)\)", (ROOT / "CMakeLists.txt").read_text())
    assert found, "no set(AUDIORING_WARNINGS -W...) in CMakeLists.txt"
    return found.group(1).split()


def test_benchmark_programs_build_without_warnings() -> None:
    """Builds every ``benchmarks/*.cpp`` (AUDIORING_BUILD_BENCHMARKS=ON) with the project's warnings and -Werror."""
    cmake = shutil.which("cmake")
    if cmake is None:
        _unavailable("cmake not found on PATH")
    compiler = _compiler()
    if compiler is None:
        _unavailable("no C++ compiler found ($CXX, c++, g++ or clang++)")
    sources = {path.resolve() for path in (ROOT / "benchmarks").glob("*.cpp")}
    if not sys.platform.startswith("linux"):  # benchmarks/CMakeLists.txt builds wake_floor on Linux only
        sources.discard((ROOT / "benchmarks" / "wake_floor.cpp").resolve())
    build_dir = ROOT / "build" / "bench-check"
    build_dir.parent.mkdir(exist_ok=True)
    with _locked(build_dir.with_name(build_dir.name + ".lock")):
        configure = [cmake, "-S", str(ROOT), "-B", str(build_dir), *_generator_arguments(build_dir),
                     "-DCMAKE_BUILD_TYPE=Release", "-DAUDIORING_BUILD_PYTHON=OFF", "-DAUDIORING_BUILD_TESTS=OFF",
                     "-DAUDIORING_BUILD_BENCHMARKS=ON", "-DAUDIORING_SANITIZE=", "-DCMAKE_CXX_FLAGS=-Werror",
                     "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
        _run(configure, ROOT, _BUILD_TIMEOUT, "CMake configure (benchmarks)")
        jobs = str(os.cpu_count() or 2)
        _run([cmake, "--build", str(build_dir), "--parallel", jobs], ROOT, _BUILD_TIMEOUT, "benchmark build")
        commands = json.loads((build_dir / "compile_commands.json").read_text())
    # The build succeeding proves nothing unless each source was compiled, with the flags that turn a warning
    # into an error.
    wanted = ["-Werror", *_project_warnings()]
    for source in sorted(sources):
        compiled = [shlex.split(c["command"]) for c in commands if Path(c["directory"], c["file"]).resolve() == source]
        assert compiled, f"benchmarks/{source.name} is not built by benchmarks/CMakeLists.txt"
        for argv in compiled:
            assert all(flag in argv for flag in wanted), f"benchmarks/{source.name} built without {wanted}: {argv}"
