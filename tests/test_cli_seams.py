"""The command line's seams, run for real: a shared recording's producer that stops or dies under a reader,
and outputs other than a plain file (stdout, a FIFO, a closed pipe, a device, an unwritable place).

Audio comes from the virtual ramp (each frame holds its number since the recording's first frame), so a
missing or repeated frame shows.
"""

from __future__ import annotations

import io
import itertools
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioring import Ring, attach, shared
from audioring.cli.output import MAX_DATA_BYTES
from test_cli import CLI, no_device_environment, run_cli, summary

RATE = 48000
RAMP = ["-d", "virtual:ramp", "-t", "int32", "-r", str(RATE)]
_names = itertools.count()


@pytest.fixture
def no_device_env(tmp_path) -> dict:
    return no_device_environment(tmp_path)


def unique(label: str) -> str:
    """A shared name no other test (or test run) uses."""
    return f"seams{os.getpid()}-{next(_names)}-{label}"


def counters(data: np.ndarray) -> np.ndarray:
    """The ramp's frame numbers in an int32 recording (every channel holds the same)."""
    assert (data == data[:, :1]).all()
    return data[:, 0].astype(np.int64)


def assert_consecutive(values: np.ndarray) -> None:
    steps = np.diff(values)
    assert (steps == 1).all(), f"frames missing or repeated at {np.flatnonzero(steps != 1)[:10]}"


class Running:
    """A CLI process whose stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict) -> None:
        self.proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.stderr
            time.sleep(0.02)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for the exit: (status, stdout)."""
        try:
            status = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        stdout = self.proc.stdout.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return status, stdout

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def serve(name: str, env: dict, *extra: str) -> Running:
    producer = Running("serve", name, *RAMP, "-c", "2", *extra, env=env)
    deadline = time.monotonic() + 30
    while name not in [s.name for s in shared()]:
        assert producer.proc.poll() is None and time.monotonic() < deadline, producer.stderr
        time.sleep(0.02)
    return producer


@pytest.mark.parametrize("option", ["--buffer-seconds", "--ring-seconds"])
def test_serve_buffer_seconds_sizes_the_shared_ring(no_device_env, option):
    # --buffer-seconds is the ring's one name in every command; --ring-seconds, serve's name before it, still works.
    name = unique("ring")
    producer = serve(name, no_device_env, option, "2", "--seconds", "3")  # ends by itself: no signal races its start
    try:
        mic = attach(name)
        capacity, rate = mic.capacity, mic.sampling_rate
        mic.close()
    finally:
        status, _ = producer.finish()
    assert status == 0, producer.stderr
    # 2 s and AudioRecord's default headroom of 1 s (the ring rounds up to whole pages); the default 3 s is 4 s.
    assert 3 * rate <= capacity < 4 * rate, capacity


def test_ring_seconds_is_not_listed(no_device_env):
    result = run_cli("serve", "--help", env=no_device_env)
    assert result.returncode == 0
    assert "--buffer-seconds S" in result.stdout and "--ring-seconds" not in result.stdout


# ---- the producer stops or dies under a reader ---------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_readers_end_with_the_producer_keeping_every_frame_it_served(tmp_path, no_device_env, signum):
    name, out = unique("stop"), tmp_path / "from.wav"
    producer = serve(name, no_device_env)
    try:
        recorder = Running("record", str(out), "--from", name, env=no_device_env)
        meter = Running("meter", "--from", name, env=no_device_env)
        recorder.wait_for(f"REC {out}: ")  # a second of audio recorded: it reads blocks, not only the tail
        meter.wait_for(f"METER {name}: ")
    finally:
        producer.proc.send_signal(signum)
        served_status, served = producer.finish()
    assert served_status == 0, producer.stderr
    recorded_status, recorded = recorder.finish()
    metered_status, metered = meter.finish()
    assert recorded_status == 0, recorder.stderr
    assert metered_status == 0, meter.stderr
    for reader in (recorder, meter):
        assert f"the producer of {name!r} stopped recording" in reader.stderr
        assert "error" not in reader.stderr and "Traceback" not in reader.stderr
    values = counters(sf.read(str(out), dtype="int32")[0])
    assert_consecutive(values)
    # Every frame up to the producer's last one: the file ends exactly where the producer stopped.
    assert values[-1] == int(summary(served)["frames"]) - 1
    assert summary(recorded)["frames written"] == str(len(values))
    assert summary(recorded)["frames lost"] == "0"
    assert int(summary(metered)["frames"]) > RATE  # the meter's summary too, after its second of audio


# The producer had counted overflows before this reader attached: the reader's
# copy of its counter starts at 5 (on top of what the producer really counts).
EARLIER_OVERFLOWS = """
import runpy
import audioring
counted = audioring.SharedRecording.overflows
audioring.SharedRecording.overflows = property(lambda self: 5 + counted.fget(self))
runpy.run_module("audioring", run_name="__main__", alter_sys=True)
"""


def test_record_from_reports_the_overflows_of_the_span_it_recorded(tmp_path, no_device_env):
    name, out = unique("overflows"), tmp_path / "span.wav"
    producer = serve(name, no_device_env)
    try:
        result = subprocess.run([sys.executable, "-W", "error", "-c", EARLIER_OVERFLOWS, "record", str(out),
                                 "--from", name, "--seconds", "0.5"],
                                env=no_device_env, capture_output=True, text=True, timeout=60)
    finally:
        producer.proc.send_signal(signal.SIGINT)
        producer.finish()
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["frames written"] == str(RATE // 2)
    assert summary(result.stdout)["overflows"] == "0"
    assert "overflows 5" not in result.stderr  # nor on the live display


def test_a_killed_producer_ends_the_reader_with_one_line_and_a_complete_file_then_serves_again(
        tmp_path, no_device_env):
    name, out = unique("killed"), tmp_path / "killed.wav"
    producer = serve(name, no_device_env)
    recorder = Running("record", str(out), "--from", name, env=no_device_env)
    try:
        recorder.wait_for(f"REC {out}: ")
    finally:
        producer.proc.kill()
        producer.finish()
    status, recorded = recorder.finish()
    assert status == 1
    errors = [line for line in recorder.lines if "error" in line]
    assert errors == [f"audioring record: error: the process sharing {name!r} (pid {producer.proc.pid}) died; "
                      "the frames read so far stay valid\n"], recorder.stderr
    assert "Traceback" not in recorder.stderr
    values = counters(sf.read(str(out), dtype="int32")[0])
    assert_consecutive(values)
    assert summary(recorded)["frames written"] == str(len(values)) and len(values) >= RATE

    # The name the killed producer left behind is taken again by a new one.
    again = run_cli("serve", name, *RAMP, "--seconds", "0.2", env=no_device_env)
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout)["served"] == name


def test_an_entry_shared_by_another_user_is_one_line_not_a_warning(no_device_env):
    # What list_shared() cannot open (here a symbolic link, as another user's or a forged entry
    # would be) is skipped with a warning; -W error (as CLI runs here) must not turn it into a traceback.
    stray = Path("/dev/shm") / f"audioring-{os.geteuid()}-{unique('stray')}"
    stray.symlink_to("/dev/null")
    try:
        absent = run_cli("meter", "--from", unique("absent"), env=no_device_env)
        listing = run_cli("devices", env=no_device_env)
    finally:
        stray.unlink()
    name = stray.name.split("-", 2)[2]
    skipped = f"audioring: list_shared() skipped shared name {name!r}: {stray} is a symbolic link"
    assert absent.returncode == 2 and listing.returncode == 0, absent.stderr + listing.stderr
    for result in (absent, listing):
        assert "Traceback" not in result.stderr
        assert any(line.startswith(skipped) for line in result.stderr.splitlines()), result.stderr
    assert "audioring meter: error: argument --from: nothing is shared under" in absent.stderr
    assert absent.stderr.splitlines()[-1] == "see `audioring meter -h`", absent.stderr


# ---- outputs other than a file -------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _refused(out: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    """``record OUT`` that must be refused before any device opens (a hang fails through the timeout)."""
    result = run_cli("record", out, *RAMP, "--seconds", "1", *args, env=env, timeout=30)
    assert "recording from" not in result.stderr, "refused only after the device was opened"
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize(
    "where, args, message",
    [
        ("fifo", ["--format", "au"], "cannot write '{out}': a FIFO with no reader; start the reader first"),
        ("fifo", ["--format", "wav"], "cannot write WAV to '{out}', a pipe: WAV needs a file it can seek in to "
                                      "complete its header; use --format au, or name a file"),
        ("fifo", ["--format", "flac", "-t", "int16"], "cannot write FLAC to '{out}', a pipe:"),
        ("/dev/null", ["--format", "wav"], "cannot write '{out}': not a regular file (a device or socket); "
                                           "name a file, or `-` for stdout"),
        ("/sys/audioring-seams.wav", [], "cannot write '{out}': "),
    ],
    ids=["fifo-without-reader", "fifo-wav", "fifo-flac", "device", "unwritable-directory"],
)
def test_an_output_that_cannot_take_the_audio_is_refused_at_once_in_one_line(fifo, no_device_env, where, args,
                                                                               message):
    out = str(fifo) if where == "fifo" else where
    result = _refused(out, *args, env=no_device_env)
    assert result.returncode == 1
    assert result.stderr.startswith("audioring record: error: " + message.format(out=out)), result.stderr
    assert len(result.stderr.splitlines()) == 1
    if where.startswith("/sys"):  # root may not write there either: sysfs refuses new files
        assert not os.path.exists(where)


def test_stdout_needs_a_format_that_streams(no_device_env):
    missing = _refused("-", env=no_device_env)
    assert missing.returncode == 2
    assert "argument --format: give the format to write to stdout ('-'): --format au streams through a pipe" \
        in missing.stderr
    wav = _refused("-", "--format", "wav", env=no_device_env)  # stdout is a pipe here
    assert wav.returncode == 1
    assert wav.stderr == ("audioring record: error: cannot write WAV to stdout, a pipe: WAV needs a file it can "
                          "seek in to complete its header; use --format au, or name a file\n")


def test_stdout_takes_the_exact_frames_as_au_with_the_summary_on_stderr(no_device_env):
    result = subprocess.run([*CLI, "record", "-", "--format", "au", *RAMP, "-c", "2", "--seconds", "0.5"],
                            env=no_device_env, capture_output=True, timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    data, rate = sf.read(io.BytesIO(result.stdout), dtype="int32")
    assert rate == RATE and data.shape == (RATE // 2, 2)
    values = counters(data)
    assert values[0] == 0
    assert_consecutive(values)
    assert summary(stderr)["file"] == f"stdout (AU PCM_32, 2 ch, {RATE} Hz)"
    assert summary(stderr)["frames written"] == str(RATE // 2)


def test_stdout_on_a_file_takes_wav(tmp_path, no_device_env):
    out = tmp_path / "redirected.wav"
    with open(out, "wb") as stdout:
        result = subprocess.run([*CLI, "record", "-", "--format", "wav", *RAMP, "--seconds", "0.5"],
                                env=no_device_env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert_consecutive(counters(sf.read(str(out), dtype="int32")[0]))
    assert sf.info(str(out)).frames == RATE // 2


def test_a_fifo_with_a_reader_is_written_like_stdout(fifo, no_device_env):
    # The reader opens first (without waiting for a writer), as a reader started before `record` would.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(reader, True)
    chunks: list[bytes] = []

    def drain() -> None:
        # Until the writer has come and gone: before it opens the FIFO, a read finds no writer either.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([reader], [], [], 0.05)[0]:
                chunk = os.read(reader, 65536)
                if not chunk and chunks:
                    return
                chunks.append(chunk)

    draining = threading.Thread(target=drain)
    draining.start()
    try:
        result = run_cli("record", str(fifo), "--format", "au", *RAMP, "--seconds", "0.5", env=no_device_env)
    finally:
        draining.join(30)
        os.close(reader)
    assert result.returncode == 0, result.stderr
    data, _ = sf.read(io.BytesIO(b"".join(chunks)), dtype="int32")
    values = counters(data.reshape(len(data), -1))
    assert len(values) == RATE // 2 and values[0] == 0
    assert_consecutive(values)


def test_a_pipe_closed_by_its_reader_ends_the_recording_in_one_line(no_device_env):
    proc = subprocess.Popen([*CLI, "record", "-", "--format", "au", *RAMP, "--seconds", "30"], env=no_device_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert len(proc.stdout.read(4096)) == 4096
        proc.stdout.close()  # the reader goes away
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if "error" in line] == [
        "audioring record: error: cannot write stdout: its reader closed the pipe"]
    assert int(summary(stderr)["frames written"]) < 30 * RATE


def test_stdout_on_a_terminal_is_refused(no_device_env):
    main, child = pty.openpty()
    try:
        result = subprocess.run([*CLI, "record", "-", "--format", "au", *RAMP, "--seconds", "1"], env=no_device_env,
                                stdout=child, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(child)
        os.close(main)
    assert result.returncode == 1
    assert result.stderr == ("audioring record: error: stdout is a terminal: redirect it (`> take.au`, "
                             "`| sox -t au - ...`) or name a file\n")


def test_a_ring_shared_without_a_rate_is_refused_in_one_line(tmp_path, no_device_env):
    name, out = unique("no-rate"), tmp_path / "x.wav"
    with Ring(1, 4096, "int16", share=name):
        metered = run_cli("meter", "--from", name, "--seconds", "1", env=no_device_env)
        recorded = run_cli("record", str(out), "--from", name, "--seconds", "1", env=no_device_env)
    for command, result in (("meter", metered), ("record", recorded)):
        assert result.returncode == 1
        assert result.stderr == (f"audioring {command}: error: {name!r} is a Ring shared without a sampling rate, "
                                 "which the command line needs: share it with Ring(..., sampling_rate=R)\n")
    assert not out.exists()


def test_a_ring_closed_by_its_producer_ends_record_from_with_every_frame(tmp_path, no_device_env):
    name, out = unique("ring"), tmp_path / "ring.wav"
    block = 1000  # not a multiple of the reader's blocks (a tenth of a second): the last one is partial
    with Ring(1, RATE, "int32", share=name, sampling_rate=RATE) as ring:
        recorder = Running("record", str(out), "--from", name, env=no_device_env)
        try:
            recorder.wait_for("recording from the shared recording")
            for i in range(25):
                ring.write(np.arange(i * block, (i + 1) * block, dtype=np.int32).reshape(block, 1))
        except BaseException:
            recorder.proc.kill()
            raise
    status, recorded = recorder.finish()
    assert status == 0, recorder.stderr
    values = counters(sf.read(str(out), dtype="int32", always_2d=True)[0])
    assert values.tolist() == list(range(25 * block))
    assert summary(recorded)["frames written"] == str(25 * block)


def test_an_au_file_refuses_more_than_4_gib_before_recording_and_names_a_format_that_fits(tmp_path, no_device_env):
    out = tmp_path / "long.au"
    seconds = 2**32 // (RATE * 2 * 4) + 1  # 2 channels of int32: just over 4 GiB
    limit = MAX_DATA_BYTES // (2 * 4) / RATE
    holds = f"a AU file holds at most {limit:.0f} s of this audio (4 GiB)"
    result = run_cli("record", str(out), *RAMP, "-c", "2", "--seconds", str(seconds), env=no_device_env)
    endless = run_cli("record", str(out), *RAMP, "-c", "2", env=no_device_env)
    assert result.returncode == endless.returncode == 2
    assert f"argument --seconds: {holds}; record less, split, or use --format wav (RF64 past 4 GiB)" \
        in result.stderr
    assert f"argument --format: {holds} and the recording has no end: give --seconds or a split within that, " \
           "or use --format wav" in endless.stderr
    assert "recording from" not in result.stderr + endless.stderr and not out.exists()


def test_a_wav_file_takes_more_than_4_gib(tmp_path, no_device_env):
    # Not recorded through here (the API's test writes a real file past 4 GiB): refused no longer.
    out = tmp_path / "long.wav"
    recorder = Running("record", str(out), *RAMP, "-c", "2", "--seconds", str(2**32 // (RATE * 2 * 4) + 1),
                       env=no_device_env)
    recorder.wait_for(f"REC {out}: ")
    recorder.proc.send_signal(signal.SIGINT)
    status, recorded = recorder.finish()
    assert status == 0, recorder.stderr
    assert sf.info(str(out)).frames == int(summary(recorded)["frames written"]) >= RATE


def test_stdout_closed_is_refused_in_one_line(no_device_env):
    # `>&-`: Python then has no sys.stdout at all.
    result = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *CLI, "record", "-", "--format", "au", *RAMP,
                             "--seconds", "1"], env=no_device_env, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "audioring record: error: cannot write stdout: Bad file descriptor (was it closed?)\n"
