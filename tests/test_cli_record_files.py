"""``audioring record`` onto disk: every format, split parts, signals, a full disk, the ring as a disk buffer.

The recordings are the virtual ramp (each frame holds its number), so the
files tell exactly which frames they hold.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from test_cli import CLI, no_device_environment, run_cli, summary
from test_cli_seams import RAMP, RATE, Running, assert_consecutive, counters, serve, unique


@pytest.fixture
def no_device_env(tmp_path) -> dict:
    return no_device_environment(tmp_path)


@pytest.mark.parametrize("fmt", ["wav", "rf64", "w64", "caf"])
def test_every_seekable_format_holds_the_ramp(tmp_path, no_device_env, fmt):
    out = tmp_path / f"take.{fmt}"
    result = run_cli("record", str(out), *RAMP, "-c", "3", "--seconds", "0.5", env=no_device_env)
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["file"] == f"{out} ({fmt.upper()} PCM_32, 3 ch, {RATE} Hz)"
    values = counters(sf.read(str(out), dtype="int32")[0])
    assert len(values) == RATE // 2 and values[0] == 0
    assert_consecutive(values)


def test_split_parts_join_into_exactly_the_recording(tmp_path, no_device_env):
    out = tmp_path / "take.wav"
    result = run_cli("record", str(out), *RAMP, "-c", "2", "--seconds", "1", "--split", "0.3s", env=no_device_env)
    assert result.returncode == 0, result.stderr
    parts = sorted(tmp_path.glob("take-*.wav"))
    assert [p.name for p in parts] == ["take-0001.wav", "take-0002.wav", "take-0003.wav", "take-0004.wav"]
    assert summary(result.stdout)["file"] == f"{parts[0]} .. {parts[-1]} (4 files) (WAV PCM_32, 2 ch, {RATE} Hz)"
    assert [sf.info(str(p)).frames for p in parts] == [14400, 14400, 14400, 4800]
    values = counters(np.concatenate([sf.read(str(p), dtype="int32")[0] for p in parts]))
    assert values[0] == 0 and len(values) == RATE
    assert_consecutive(values)
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--split", "1 fortnight"], "argument --split must be a duration (s, min, h) or a size"),
    (["--split", "0.1B"], "argument --split must be at least one frame"),
    (["--subtype", "PCM_S8"], "argument --subtype for WAV must be one of PCM_U8, PCM_16, PCM_24, PCM_32, FLOAT, "
                              "DOUBLE"),
    (["--format", "flac", "--subtype", "PCM_24", "-c", "9"], "argument --channels: FLAC holds at most 8 channels"),
])
def test_bad_file_options_exit_2_naming_the_option(tmp_path, no_device_env, args, message):
    (tmp_path / "out").mkdir()
    result = run_cli("record", str(tmp_path / "out" / "take.wav"), *RAMP, "--seconds", "1", *args, env=no_device_env)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert not list((tmp_path / "out").iterdir())


def test_split_to_a_pipe_is_refused(no_device_env):
    result = run_cli("record", "-", "--format", "au", *RAMP, "--split", "1s", "--seconds", "1", env=no_device_env)
    assert result.returncode == 2
    assert "argument --split: a pipe cannot be split into files" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_write_leaves_complete_split_files(tmp_path, no_device_env, signum):
    out = tmp_path / "take.w64"
    recorder = Running("record", str(out), *RAMP, "-c", "4", "--split", "0.25s", env=no_device_env)
    recorder.wait_for(f"REC {out}: ")
    recorder.proc.send_signal(signum)
    status, recorded = recorder.finish()
    assert status == 0, recorder.stderr
    parts = sorted(tmp_path.glob("take-*.w64"))
    values = counters(np.concatenate([sf.read(str(p), dtype="int32")[0] for p in parts]))
    assert len(values) == int(summary(recorded)["frames written"]) >= RATE
    assert values[0] == 0
    assert_consecutive(values)
    assert "Traceback" not in recorder.stderr


def test_a_full_disk_ends_in_one_line_naming_the_os_error_and_the_frames_saved(tmp_path, no_device_env):
    (tmp_path / "small").mkdir()
    out = "small/take.wav"
    command = " ".join([*CLI, "record", out, *RAMP, "-c", "8"])
    result = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs small && {command}"],
                            cwd=tmp_path, env=no_device_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    saved = int(summary(result.stdout)["frames written"])
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"audioring record: error: cannot write {out}: No space left on device; {saved} frames saved"]
    assert 0 < saved * 32 <= 2**20  # 8 channels of int32 in a 1 MiB filesystem
    assert "Traceback" not in result.stderr


# The reader of the pipe pauses for 3 s, as a slow disk would: a ring of 5 s rides it out.
SHORT_RING = """
import runpy
import audioring.cli.capture
audioring.cli.capture.RING_SECONDS = 0.5
runpy.run_module("audioring", run_name="__main__", alter_sys=True)
"""


def test_buffer_seconds_is_how_long_the_disk_may_stall(no_device_env):
    def stalled(*extra: str) -> tuple[int, str, np.ndarray]:
        proc = subprocess.Popen([sys.executable, "-W", "error", "-c", SHORT_RING, "record", "-", "--format", "au",
                                 *RAMP, "--seconds", "4", *extra], env=no_device_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = proc.stdout.read(65536)
        time.sleep(3.0)
        data = head + proc.stdout.read()
        stderr = proc.stderr.read().decode()
        status = proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
        return status, stderr, sf.read(io.BytesIO(data), dtype="int32")[0]

    short_status, short_stderr, _ = stalled()
    long_status, long_stderr, frames = stalled("--buffer-seconds", "5")
    assert short_status == 3 and int(summary(short_stderr)["frames lost"]) > 0, short_stderr
    assert long_status == 0, long_stderr
    assert summary(long_stderr)["frames lost"] == "0"
    values = counters(frames)
    assert len(values) == 4 * RATE and values[0] == 0
    assert_consecutive(values)


@pytest.mark.parametrize("command", ["record", "meter"])
def test_buffer_seconds_with_from_names_the_producers_option(tmp_path, no_device_env, command):
    name = unique("buffer")
    producer = serve(name, no_device_env)
    try:
        result = run_cli(command, *([str(tmp_path / "x.wav")] if command == "record" else []), "--from", name,
                         "--buffer-seconds", "5", env=no_device_env)
    finally:
        producer.proc.send_signal(signal.SIGINT)
        producer.finish()
    assert result.returncode == 2
    assert "argument --buffer-seconds: with --from the shared recording's ring is the buffer; its producer sets " \
           "it (`audioring serve NAME --buffer-seconds S`)" in result.stderr
    assert not (tmp_path / "x.wav").exists()
