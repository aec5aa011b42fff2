"""The tests pass against the oldest numpy and sounddevice that pyproject.toml declares.

The newest releases are what the main test environment installs; this test
builds a virtual environment with each declared lower bound (numpy: the last
patch release of the lower bound's minor series, the oldest with wheels for
current Pythons; sounddevice: exactly the bound), installs audioring's wheel
into it, and runs the ring, recorder and a real-server test there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.native

ROOT = Path(__file__).resolve().parent.parent
SUITES = [
    "tests/test_ring.py",
    "tests/test_record_virtual.py",
    "tests/test_record_servers.py::test_pulse_default_device_captures_a_1khz_tone",
    "tests/test_record_servers.py::test_jack_converts_a_foreign_rate_and_refuses_too_many_channels",
]


def declared_lower_bound(package: str) -> str:
    """The version in ``package>=X`` of pyproject.toml's dependencies."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(rf'"{package}>=([0-9.]+)"', text)
    assert match, f"pyproject.toml declares no lower bound for {package}"
    return match.group(1)


def oldest_requirements() -> list[str]:
    numpy = declared_lower_bound("numpy")
    major, minor = numpy.split(".")[:2]
    return [f"numpy=={major}.{minor}.*", f"sounddevice=={declared_lower_bound('sounddevice')}"]


def _run(command: list[str], **kwargs: object) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result.stdout


def test_suite_passes_with_the_oldest_declared_dependencies(tmp_path):
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)])
    (wheel,) = wheels.glob("audioring-*.whl")
    env_dir = tmp_path / "oldest"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    requirements = oldest_requirements()
    _run([python, "-m", "pip", "install", "--quiet", str(wheel), *requirements,
          "pytest", "hypothesis", "JACK-Client"])
    versions = _run([python, "-c", "import numpy, sounddevice; print(numpy.__version__, sounddevice.__version__)"])
    numpy_version, sounddevice_version = versions.split()
    assert numpy_version.startswith(requirements[0][len("numpy=="):-1])
    assert sounddevice_version == declared_lower_bound("sounddevice")
    # Run from the checkout (the tests) but import audioring from the venv.
    out = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES], cwd=ROOT,
               env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert " passed" in out and " failed" not in out, out[-3000:]
