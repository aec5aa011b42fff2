"""CI: a skip fails the run under CI (tests/conftest.py), and .ci/run runs the README's test command.

The skip cases run pytest in a subprocess on a temporary directory holding a
copy of this suite's conftest.py and tests that skip in every way pytest offers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

SKIPPING = textwrap.dedent("""
    import pytest

    @pytest.fixture
    def skipping_fixture():
        pytest.skip("reason-of-the-fixture")

    def test_calls_skip():
        pytest.skip("reason-of-the-call")

    def test_imports_a_missing_module():
        pytest.importorskip("audioring_no_such_module")

    @pytest.mark.skipif(True, reason="reason-of-the-mark")
    def test_marked_skipif():
        pass

    def test_uses_a_skipping_fixture(skipping_fixture):
        pass

    @pytest.mark.xfail(reason="an expected failure is not a skip", strict=True)
    def test_expected_failure():
        raise AssertionError

    def test_passes():
        pass
""")

SKIPPING_MODULE = textwrap.dedent("""
    import pytest

    pytest.importorskip("audioring_no_such_module_either")

    def test_never_collected():
        pass
""")

SKIPPED_TESTS = {
    "test_skipping.py::test_calls_skip": "reason-of-the-call",
    "test_skipping.py::test_imports_a_missing_module": "could not import 'audioring_no_such_module'",
    "test_skipping.py::test_marked_skipif": "reason-of-the-mark",
    "test_skipping.py::test_uses_a_skipping_fixture": "reason-of-the-fixture",
    "test_skipping_module.py": "could not import 'audioring_no_such_module_either'",
}


def _run_pytest(tmp_path: Path, args: list[str], env_update: dict[str, str]) -> subprocess.CompletedProcess:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    (tmp_path / "test_skipping_module.py").write_text(SKIPPING_MODULE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env.update(env_update)
    # --continue-on-collection-errors: the module skipped at collection must not hide the other tests.
    return subprocess.run([sys.executable, "-m", "pytest", "-rA", "--continue-on-collection-errors", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def _counts(stdout: str) -> dict[str, int]:
    """The final summary line's counts, e.g. {"failed": 2, "errors": 3, "passed": 1}."""
    summary = stdout.strip().splitlines()[-1]
    return {word if word != "error" else "errors": int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}


@pytest.mark.parametrize(("args", "env"), [
    ([], {"CI": "true"}),
    (["--audio-servers=require"], {}),
    (["--audio-servers=skip-unavailable"], {"CI": "yes"}),  # the plugin's server policy cannot excuse a skip
])
def test_every_kind_of_skip_fails_under_ci(tmp_path, args, env):
    r = _run_pytest(tmp_path, args, env)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    counts = _counts(r.stdout)
    # The call's and importorskip's skips fail the test; the mark's, the fixture's (at set-up) and the module's (at
    # collection) are errors. Nothing is skipped; the expected failure stays one.
    assert counts == {"failed": 2, "errors": 3, "passed": 1, "xfailed": 1}, out
    assert "skipped" not in r.stdout.strip().splitlines()[-1], out
    for test, reason in SKIPPED_TESTS.items():
        # The failure's report (the short summary's copy of it may be cut to the terminal's width).
        reported = [line for line in r.stdout.splitlines() if line.startswith(f"{test} was skipped, and skips fail")]
        assert any(reason in line for line in reported), f"{test} not reported as a failing skip ({reason}):\n{out}"


def test_skips_stay_skips_outside_ci(tmp_path):
    r = _run_pytest(tmp_path, [], {"CI": "false"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert _counts(r.stdout) == {"passed": 1, "skipped": 5, "xfailed": 1}, out
    for reason in SKIPPED_TESTS.values():
        assert reason in r.stdout, out


def _test_commands(text: str) -> list[str]:
    """The lines of `text` that run the tests (comments left out)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if "python -m pytest" in line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    set_up = readme.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    blocks = "\n".join(block.split("```", 1)[0] for block in set_up.split("```sh\n")[1:])
    readme_commands = _test_commands(blocks)
    assert len(readme_commands) == 1, readme_commands  # one test command
    ci = (ROOT / ".ci" / "run").read_text()
    assert _test_commands(ci) == readme_commands
    assert "\nexport CI=true\n" in ci  # so that a skip fails the run
