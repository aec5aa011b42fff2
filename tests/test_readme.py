"""Every Python code block and every `audioring` command in the README runs as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


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
    result = subprocess.run(argv, cwd=tmp_path, env={**os.environ, **pulse_server.env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
