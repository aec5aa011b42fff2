"""The Python tests of the native code, run against an AddressSanitizer + UBSan build of _core.

The extension is built with -fsanitize=address,undefined into build/asan-site
(incrementally, through build/asan-build) and a child pytest imports it from
there with the ASan runtime preloaded (the interpreter itself is not
instrumented, so the runtime must be loaded first). Leak detection is off:
CPython keeps memory on purpose at exit. Any ASan or UBSan report fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.native

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "build" / "asan-site"
# The tests that drive the native ring, capture path, virtual input thread and frame watcher.
SUITES = ["tests/test_ring.py", "tests/test_record_virtual.py", "tests/test_readme.py::test_readme_block_runs",
          "tests/test_doctests.py", "tests/test_astream.py",
          # Shared rings: a forged or truncated file must give an error, never an out-of-bounds read.
          "tests/test_shared.py::test_forged_headers_give_a_clear_error_never_a_crash",
          "tests/test_shared.py::test_truncated_files_give_a_clear_error",
          "tests/test_shared.py::test_a_reader_cannot_write_and_a_readers_close_ends_its_waiting_streams",
          # Lifecycle seams: restarts under streams, planted and half-made files in /dev/shm, asyncio waits.
          "tests/test_restart_seams.py", "tests/test_shared_seams.py", "tests/test_async_waits.py",
          # The file writer's thread, libsndfile's buffers, gaps, splits and a full disk (not the 4 GiB file: slow).
          "tests/test_file_writer.py", "--deselect",
          "tests/test_file_writer.py::test_past_4_gib_a_wav_becomes_rf64_and_reads_back_whole",
          # ASan handles SIGBUS itself: the documented death of a reader whose file is truncated is not its to judge.
          "--deselect",
          "tests/test_shared_seams.py::test_a_same_user_truncating_the_file_kills_its_readers_with_sigbus_as_documented"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _preload() -> str:
    """The ASan runtime, and libstdc++ after it: ASan intercepts __cxa_throw only if
    libstdc++ is loaded when it starts, which a C interpreter does not do by itself."""
    compiler = shutil.which(os.environ.get("CXX", "g++") or "g++")
    libraries = []
    for name in ("libasan.so", "libstdc++.so"):
        found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip() \
            if compiler else ""
        if os.path.isabs(found) and os.path.exists(found):
            libraries.append(os.path.realpath(found))
    if len(libraries) != 2:
        reason = f"no ASan runtime and libstdc++ found for the C++ compiler ({compiler})"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return " ".join(libraries)


def test_python_suite_under_address_and_undefined_sanitizers():
    preload = _preload()
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--upgrade",
         "--target", str(SITE), "-C", "cmake.define.AUDIORING_SANITIZE=address,undefined",
         "-C", "cmake.build-type=RelWithDebInfo", "-C", f"build-dir={ROOT / 'build' / 'asan-build'}", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-5000:]
    env = dict(
        os.environ,
        PYTHONPATH=str(SITE),
        LD_PRELOAD=preload,
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
    )
    check = "import audioring, sys; print(audioring.__file__)"
    where = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(SITE)), f"the sanitized build was not the one imported: {where}"
    run = subprocess.run(
        # -s: a sanitizer report ends the process at once; uncaptured, it reaches the output.
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *SUITES],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    output = run.stdout[-8000:] + run.stderr[-8000:]
    assert run.returncode == 0, output
    assert "AddressSanitizer" not in output and "runtime error:" not in output, output
