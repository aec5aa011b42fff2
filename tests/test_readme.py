"""Every Python code block and every `audioring` command in the README runs as written."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code, tmp_path):
    if 'if __name__ == "__main__":' not in code:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        return
    # A script (multiprocessing workers import its functions): run it as one.
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def _commands(prefix: str) -> list[str]:
    """The README's shell lines that start with ``prefix``, comments stripped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            for part in command.split(" && "):
                if part.startswith(prefix):
                    lines.append(part)
    return lines


COMMANDS = _commands("audioring ")


def test_readme_shows_the_command_line():
    assert any(c.startswith("audioring record") for c in COMMANDS) and "audioring doctor" in COMMANDS


@pytest.mark.audio_server
@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, pulse_server, tmp_path):
    # The set-up's `pip install` and `python -m pytest` are what CI runs; the
    # `audioring` lines run here, against the test PulseAudio server.
    argv = [sys.executable, "-m", "audioring", *shlex.split(command)[1:]]
    env = {**os.environ, **pulse_server.env}
    with _serving_for(argv, env):
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


@contextlib.contextmanager
def _serving_for(argv: list[str], env: dict[str, str]) -> Iterator[None]:
    """For a command that reads ``--from NAME``: another process shares NAME meanwhile."""
    if "--from" not in argv:
        yield
        return
    from audioring import shared

    name = argv[argv.index("--from") + 1]
    serve = subprocess.Popen([sys.executable, "-m", "audioring", "serve", name], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while name not in [s.name for s in shared()]:
            assert serve.poll() is None and time.monotonic() < deadline, serve.communicate()[1]
            time.sleep(0.05)
        yield
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=30)
