"""The sdist holds what a build needs, and a wheel built from it holds the package.

Builds without isolation (the build requirements are those of the test
environment), so it needs no network; CI's `pip install ".[test]"` builds with
isolation, which covers the declared build requirements.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"


def test_sdist_builds_a_complete_wheel(tmp_path):
    try:
        import build  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the 'build' package is part of the test extra and must be installed under CI")
        pytest.skip("the 'build' package is not installed")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path)], ROOT)
    (sdist,) = tmp_path.glob("audioring-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("pyproject.toml", "CMakeLists.txt", "README.md", "csrc/audioring/frame_ring.hpp",
                   "csrc/bindings/module.cpp", "python/audioring/__init__.py", "python/audioring/_core.pyi"):
        assert needed in names, f"{needed} missing from the sdist"
    assert not any(name.startswith("build/") for name in names), "build outputs leaked into the sdist"

    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(sdist)],
         tmp_path)
    (wheel,) = wheels.glob("audioring-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert any(n.startswith("audioring/_core.") and n.endswith((".so", ".pyd")) for n in names)
    for needed in ("audioring/py.typed", "audioring/_core.pyi", "audioring/__main__.py",
                   # audioring.testing: its package data and its pytest plugin.
                   "audioring/testing/__init__.py", "audioring/testing/debian-packages.txt",
                   "audioring/testing/pytest_plugin.py"):
        assert needed in names
    assert "audioring = audioring._cli:main" in entry_points
    assert "[pytest11]\naudioring = audioring.testing.pytest_plugin" in entry_points, entry_points
