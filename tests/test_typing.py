"""The package's type annotations and the compiled module's stubs (_core.pyi) check with mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_passes():
    try:
        import mypy  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("mypy is part of the test extra and must be installed under CI")
        pytest.skip("mypy not installed (pip install '.[test]')")
    # Settings (strict, files) live in pyproject.toml's [tool.mypy].
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_and_marker_are_installed():
    import audioring

    package = Path(audioring.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_core.pyi").is_file()
