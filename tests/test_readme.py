"""Every Python code block and every `audioring` command in the README runs as written."""

from __future__ import annotations

import ast
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

from audioring import VirtualInput

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
    assert result.stderr == "", result.stderr
    if "pool.starmap(loudest" in code:
        # What the sharing example prints: each worker's loudest sample of the shared sine, which
        # has VirtualInput's default amplitude.
        assert 'VirtualInput("sine", 440)' in code
        amplitude = VirtualInput("sine", 440).amplitude
        peaks = ast.literal_eval(result.stdout.strip().splitlines()[-1])
        assert len(peaks) == 2 and peaks == pytest.approx([amplitude] * 2, abs=0.01), result.stdout


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
    _check_output(shlex.split(command)[1:], result, tmp_path)


def _option(args: list[str], *names: str) -> str | None:
    """The value given to one of the options ``names`` in ``args``, if any."""
    for k, arg in enumerate(args[:-1]):
        if arg in names:
            return args[k + 1]
    return None


def _check_output(args: list[str], result: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """What the README says each command does, checked in its output (and its file, for ``record``)."""
    out, err = result.stdout, result.stderr
    seconds = _option(args, "--seconds")
    if args[0] == "record":
        # "prints the frames written, the duration, PortAudio's input overflows and the frames lost";
        # "with --seconds S the file holds exactly round(S * rate) frames".
        import soundfile

        if _option(args, "--split") is None:
            infos = [soundfile.info(str(cwd / args[1]))]
            said = re.search(r"^file: (\S+) \(\w+ \w+, (\d+) ch, (\d+) Hz\)$", out, flags=re.M)
            assert said and said.group(1) == args[1], out
        else:  # "writes take-0001.wav, take-0002.wav, ... that join into exactly the recording"
            stem, suffix = os.path.splitext(args[1])
            parts = sorted(cwd.glob(f"{stem}-*{suffix}"))
            infos = [soundfile.info(str(part)) for part in parts]
            said = re.search(r"^file: \S+ \.\. \S+ \((\d+) files\) \(\w+ \w+, (\d+) ch, (\d+) Hz\)$", out,
                             flags=re.M)
            assert said and int(said.group(1)) == len(parts) > 1, out
            assert [p.name for p in parts] == [f"{stem}-{k:04d}{suffix}" for k in range(1, len(parts) + 1)]
        info = infos[0]
        frames = sum(i.frames for i in infos)
        channels, rate = int(said.group(said.lastindex - 1)), int(said.group(said.lastindex))
        assert (info.channels, info.samplerate) == (channels, rate), (info, out)
        for option, value in (("-c", info.channels), ("-r", info.samplerate)):
            wanted = _option(args, option, {"-c": "--channels", "-r": "--rate"}[option])
            assert wanted is None or int(wanted) == value, (option, wanted, info)
        assert seconds is not None and frames == round(float(seconds) * info.samplerate), (info, out)
        assert re.search(rf"^frames written: {frames}$", out, flags=re.M), out
        assert re.search(r"^overflows: \d+$", out, flags=re.M) and re.search(r"^frames lost: 0$", out, flags=re.M), out
        if _option(args, "--device-rate") is not None:
            assert f"device runs at {_option(args, '--device-rate')} Hz; converting to {info.samplerate} Hz" in err, err
    elif args[0] == "meter":
        assert re.search(r"^peak dBFS: ", out, flags=re.M) and re.search(r"^frames lost: 0$", out, flags=re.M), out
        assert seconds is not None and f"duration: {float(seconds):.3f} s" in out, out
    elif args[0] == "serve":
        assert re.search(rf"^served: {re.escape(args[1])}$", out, flags=re.M), out
        assert f"as '{args[1]}'" in err, err
    elif args[:2] == ["devices", "--drift"]:  # a line a second, then the result
        assert re.search(r"^drift: '.+' runs [+-]\d+\.\d\d ppm against '.+' \(", out, flags=re.M), out
    elif args[0] == "devices":
        assert re.search(r"^\s*\d+\s+pulse\b", out, flags=re.M), out  # the test server's device, with its index
    elif args[0] == "doctor":
        assert out.rstrip().endswith("all good") and "native callback driver: available" in out, out
    else:
        assert out.strip(), f"{args}: printed nothing"


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
