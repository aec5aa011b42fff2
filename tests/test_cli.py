"""The ``audioring`` command line, run for real: ``python -m audioring ...`` in a subprocess.

Recordings come from the PulseAudio test server (the pulse_server fixture of audioring.testing), from the
built-in virtual input, and from the virtual input the CLI falls back to in
an environment where PortAudio sees no input device at all.
"""

from __future__ import annotations

import io
import os
import pty
import re
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

from audioring.testing import dominant_frequency, tone

CLI = [sys.executable, "-W", "error", "-m", "audioring"]


def run_cli(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def summary(stdout: str) -> dict:
    """The ``key: value`` lines the CLI prints at the end."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def usage_error(result: subprocess.CompletedProcess, command: str) -> str:
    """The message of an argument error, after checking its form: exit status 2 and two lines on stderr,
    ``audioring COMMAND: error: MESSAGE`` and ``see `audioring COMMAND -h```, no usage block."""
    prog = f"audioring {command}".rstrip()
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{prog}: error: "), result.stderr
    assert lines[1] == f"see `{prog} -h`", result.stderr
    return lines[0][len(f"{prog}: error: "):]


def no_device_environment(tmp_path: Path) -> dict:
    """An environment in which PortAudio finds no input device, on any machine: no sound card, no
    PulseAudio, no JACK, whatever the machine has (its files are made in ``tmp_path``)."""
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")  # the ALSA pulse plugin must not start a daemon
    # ALSA reads this file instead of its own configuration: no card (hw:N needs alsa.conf's
    # definitions), no plugin device (pulse, jack, pipewire, default). It defines one device that
    # never opens because PortAudio 19.6 aborts (an assertion in pa_linux_alsa.c) when ALSA
    # defines no device at all.
    alsa = tmp_path / "asound.conf"
    alsa.write_text("pcm.audioring_no_device { type hw card 99 }\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PULSE_", "JACK_", "PIPEWIRE_", "ALSA_", "AUDIORING_"))}
    env.update(
        ALSA_CONFIG_PATH=str(alsa),
        PULSE_SERVER=f"unix:{tmp_path}/no-such-socket",
        PULSE_CLIENTCONFIG=str(conf),
        JACK_DEFAULT_SERVER="audioring-no-such-server",
        JACK_NO_START_SERVER="1",
        PIPEWIRE_REMOTE=f"{tmp_path}/no-such-socket",  # for PipeWire's libjack, which may stand in for JACK's
    )
    return env


@pytest.fixture
def no_device_env(tmp_path) -> dict:
    return no_device_environment(tmp_path)


@pytest.fixture
def pulse_env(pulse_server) -> dict:
    return {**os.environ, **pulse_server.env}


def check_file(path: Path, frames: int, channels: int, rate: int, subtype: str) -> np.ndarray:
    info = sf.info(str(path))
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (frames, channels, rate, subtype)
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return data


# ---- help and arguments -----------------------------------------------------------------


def test_help_lists_the_commands_without_importing_rich_soundfile_or_portaudio():
    code = (
        "import contextlib, io, sys\n"
        "from audioring.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    status = main(['--help'])\n"
        "print(status, out.getvalue().split()[:2],\n"
        "      sorted(m for m in ('rich', 'soundfile', 'sounddevice') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "0 ['usage:', 'audioring'] []", result.stderr
    result = run_cli("--help", env=dict(os.environ))
    assert result.returncode == 0
    for command in ("devices", "record", "meter", "doctor"):
        assert command in result.stdout


def test_no_command_is_a_usage_error():
    result = run_cli(env=dict(os.environ))
    assert "required: COMMAND" in usage_error(result, "")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dtype", "float64"], "argument --dtype/-t: invalid choice: 'float64' (choose from"),
        (["--rate", "0"], "argument --rate/-r: must be an integer in 1..768000, got '0'"),
        (["--rate", "4.5k"], "argument --rate/-r: must be an integer in 1..768000, got '4.5k'"),
        (["--seconds", "-1"], "argument --seconds/-s: must be a number of seconds > 0, got '-1'"),
        (["--seconds", "nan"], "argument --seconds/-s: must be a number of seconds > 0, got 'nan'"),
        (["--channels", "0"], "argument --channels/-c: must be an integer in 1..65536, got '0'"),
        (["--channels", "1024", "--buffer-seconds", "1e6"],
         "argument --buffer-seconds: 48000000000 frames x 1024 channels (float32) do not fit in memory; give fewer "
         "--channels or a shorter --buffer-seconds (buffer_size=48000000000"),
        (["--buffer-seconds", "0"], "argument --buffer-seconds: must be a number of seconds > 0, got '0'"),
        (["--latency", "soon"], "argument --latency: must be low, high or a number of seconds in 0..10, got 'soon'"),
        (["--latency", "11"], "argument --latency: must be low, high or a number of seconds in 0..10, got '11'"),
        (["--latency", "nan"], "argument --latency: must be low, high or a number of seconds in 0..10, got 'nan'"),
        (["--blocksize", "-1"],
         "argument --blocksize: must be an integer in 0..16777216 (0: the host API chooses), got '-1'"),
        (["--format", "mp3"], "argument --format/-f: invalid choice: 'mp3' (choose from"),
        (["--dtype", "int32", "--format", "flac"], "argument --dtype: FLAC holds at most 24 bits"),
        (["--format", "flac", "--channels", "9"], "argument --channels: FLAC holds at most 8 channels, got 9"),
        (["--device", "virtual:square"], "argument --device: invalid virtual input 'virtual:square'"),
        (["--device", "virtual:ramp:440"], "argument --device: invalid virtual input 'virtual:ramp:440'"),
        (["--device", "virtual:sine:abc"], "argument --device: invalid frequency in 'virtual:sine:abc'"),
        (["--device", "virtual:sine:30000"], "frequency 30000 Hz must be below half the sampling rate"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(tmp_path, no_device_env, args, message):
    out = tmp_path / "out.wav"
    result = run_cli("record", str(out), "--seconds", "1", *(["--device", "virtual"] if "--device" not in args else []),
                     *args, env=no_device_env)
    assert message in usage_error(result, "record")
    assert not out.exists()


def test_version_is_one_line_with_the_native_revision():
    import audioring

    result = run_cli("--version", env=dict(os.environ))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    revision = audioring._core.__git_revision__
    assert revision, "the build always sets a revision (or 'unknown')"
    known = "" if revision == "unknown" else f" (native module built from git {revision})"
    assert result.stdout == f"audioring {audioring.__version__}{known}\n"


@pytest.mark.parametrize("command", ["record", "meter", "serve"])
def test_blocksize_reaches_the_device(tmp_path, no_device_env, command):
    # The virtual input delivers --blocksize frames per block and reports one block as its latency.
    args = {"record": [str(tmp_path / "b.wav")], "meter": [], "serve": [f"cli{os.getpid()}-blocksize"]}[command]
    for blocksize, latency in (("480", "10.0"), ("96", "2.0")):
        result = run_cli(command, *args, "-d", "virtual", "-r", "48000", "--blocksize", blocksize, "--latency", "0.1",
                         "--seconds", "0.3", env=no_device_env)
        assert result.returncode == 0, result.stderr
        assert f"; input latency {latency} ms" in result.stderr


@pytest.mark.parametrize("command", ["meter", "serve"])
def test_buffer_seconds_sizes_the_ring_of_meter_and_serve(no_device_env, command):
    # A ring past the memory is refused before anything starts: --buffer-seconds reaches the ring.
    args = [] if command == "meter" else [f"cli{os.getpid()}-buffer"]
    result = run_cli(command, *args, "-d", "virtual", "-c", "1024", "--buffer-seconds", "1e6", "--seconds", "0.2",
                     env=no_device_env)
    message = usage_error(result, command)
    assert message.startswith("argument --buffer-seconds: 48000000000 frames x 1024 channels (float32) do not fit "
                              "in memory"), message
    small = run_cli(command, *args, "-d", "virtual", "-c", "1024", "--buffer-seconds", "0.1", "--seconds", "0.2",
                    env=no_device_env)
    assert small.returncode == 0, small.stderr


@pytest.mark.audio_server
def test_latency_reaches_the_device(pulse_env):
    said = {}
    for latency in ("0.02", "0.5"):
        result = run_cli("meter", "-d", "pulse", "--latency", latency, "--seconds", "0.3", env=pulse_env)
        assert result.returncode == 0, result.stderr
        found = re.search(r"; input latency ([0-9.]+) ms", result.stderr)
        assert found, result.stderr
        said[latency] = float(found.group(1))
    # PortAudio rounds to the device's periods: what it reports follows what was asked, not equals it.
    assert said["0.02"] < 100 < said["0.5"], said


def test_out_without_a_known_suffix_needs_format(tmp_path, no_device_env):
    result = run_cli("record", str(tmp_path / "out.mp3"), "--device", "virtual", env=no_device_env)
    assert result.returncode == 2
    assert "argument --format: cannot tell the format from" in result.stderr
    assert "--format {wav,rf64,w64,caf,flac,au,raw}" in result.stderr


@pytest.mark.parametrize(
    "where, reason",
    [
        ("no-such-dir/out.wav", "No such file or directory"),
        ("a-file/out.wav", "Not a directory"),
        ("a-dir.wav", "Is a directory"),
    ],
)
def test_an_unwritable_out_fails_before_recording_starts(tmp_path, no_device_env, where, reason):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir.wav").mkdir()
    before = sorted(tmp_path.rglob("*"))
    result = run_cli("record", str(tmp_path / where), "--device", "virtual", "--seconds", "5", env=no_device_env)
    assert result.returncode == 1
    assert f"audioring record: error: cannot write {str(tmp_path / where)!r}: {reason}" in result.stderr
    assert "recording from" not in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


# ---- the virtual input ---------------------------------------------------------------------


# The ramp carries each frame's number (modulo 2**bits), so any missing or
# repeated frame shows. float32 goes to FLAC as clipped 24-bit PCM, where a
# ramp cannot survive; every other pairing must be lossless.
@pytest.mark.parametrize(
    "fmt, dtype, subtype, bits",
    [
        ("wav", "int32", "PCM_32", 32),
        ("wav", "float32", "FLOAT", 24),
        ("wav", "int16", "PCM_16", 16),
        ("wav", "int8", "PCM_U8", 8),
        ("wav", "uint8", "PCM_U8", 8),
        ("flac", "int16", "PCM_16", 16),
        ("flac", "int8", "PCM_S8", 8),
        ("flac", "uint8", "PCM_S8", 8),
        ("au", "int32", "PCM_32", 32),
        ("au", "float32", "FLOAT", 24),
        ("au", "uint8", "PCM_S8", 8),
    ],
)
def test_virtual_ramp_arrives_as_consecutive_frame_counters(tmp_path, no_device_env, fmt, dtype, subtype, bits):
    out = tmp_path / f"ramp.{fmt}"
    seconds, rate = (1.25, 48000) if dtype == "int32" else (0.5, 16000)
    result = run_cli("record", str(out), "--device", "virtual:ramp", "--dtype", dtype, "--channels", "3",
                     "--rate", str(rate), "--seconds", str(seconds), env=no_device_env)
    assert result.returncode == 0, result.stderr
    frames = round(seconds * rate)
    assert summary(result.stdout)["frames written"] == str(frames)
    assert summary(result.stdout)["frames lost"] == "0"
    info = sf.info(str(out))
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (frames, 3, rate, subtype)
    if subtype == "FLOAT":
        counters = sf.read(str(out), dtype="float32")[0].astype(np.int64)
    else:  # libsndfile hands every PCM width out as the top bits of an int32
        counters = sf.read(str(out), dtype="int32")[0].astype(np.int64) >> (32 - bits)
    if dtype == "uint8":  # stored as signed 8-bit: 128 less
        counters += 128
    assert (counters == counters[:, :1]).all()
    assert counters[0, 0] % 2**bits == 0
    steps = np.diff(counters[:, 0]) % 2**bits
    assert (steps == 1).all(), f"frames missing or repeated at {np.flatnonzero(steps != 1)[:10]}"


# A stall in writing the file longer than the ring holds (here a pipe whose reader pauses for 3 s,
# as a slow disk would): the recording must go on, write the lost frames as silence of exactly
# their length, list the gap, keep every other frame at its true position, and exit with 3.
SHORT_RING = """
import runpy
import audioring.cli.capture
audioring.cli.capture.RING_SECONDS = 0.5  # with the default 1 s headroom: the ring holds 1.5 s
runpy.run_module("audioring", run_name="__main__", alter_sys=True)
"""


def test_frames_lost_to_a_stalled_writer_are_written_as_silence_listed_and_exit_3(no_device_env):
    cmd = [sys.executable, "-W", "error", "-c", SHORT_RING, "record", "-", "--format", "au", "--device",
           "virtual:ramp", "--dtype", "int32", "--rate", "48000", "--seconds", "4"]
    proc = subprocess.Popen(cmd, env=no_device_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        head = proc.stdout.read(65536)
        time.sleep(3.0)  # the reader stalls; the writer blocks in write(); the device goes on
        data = head + proc.stdout.read()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=30) == 3, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    lost = int(summary(stderr)["frames lost"])
    assert lost > 48000  # more than a second of the 3 s stall
    assert summary(stderr)["frames written"] == "192000"
    counters = sf.read(io.BytesIO(data), dtype="int32")[0][:, 0].astype(np.int64)
    assert len(counters) == 192000
    silent = np.flatnonzero(counters == 0)[1:]  # frame 0 holds the ramp's 0
    gap_line = summary(stderr)["gaps"]
    length, first, at = re.fullmatch(r"1: (\d+) frames at frame (\d+) \(([0-9.]+) s\)", gap_line).groups()
    length, first = int(length), int(first)
    assert float(at) == pytest.approx(first / 48000, abs=0.001)
    assert length == lost and silent.tolist() == list(range(first, first + lost))
    kept = np.ones(len(counters), dtype=bool)
    kept[first:first + lost] = False
    assert np.array_equal(counters[kept], np.flatnonzero(kept)), "a frame away from its true position"


@pytest.mark.parametrize("channels", [256, 1024])
def test_the_virtual_input_records_hundreds_of_channels(tmp_path, no_device_env, channels):
    # Past 64 channels: as many as memory holds (WAV itself holds up to 1024 through libsndfile).
    out = tmp_path / "wide.wav"
    rate, seconds = 8000, 0.5
    result = run_cli("record", str(out), "-d", "virtual:ramp", "-t", "int32", "-c", str(channels), "-r", str(rate),
                     "-s", str(seconds), env=no_device_env)
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["frames lost"] == "0"
    info = sf.info(str(out))
    assert (info.frames, info.channels, info.samplerate) == (round(seconds * rate), channels, rate)
    counters = sf.read(str(out), dtype="int32")[0].astype(np.int64)
    assert (counters == counters[:, :1]).all(), "a channel differs from the first"
    assert counters[0, 0] == 0 and (np.diff(counters[:, 0]) == 1).all()


def test_virtual_sine_per_channel(tmp_path, no_device_env):
    out = tmp_path / "sine.flac"
    result = run_cli("record", str(out), "-d", "virtual:sine:440,2000", "-s", "1", env=no_device_env)
    assert result.returncode == 0, result.stderr
    data = check_file(out, 48000, 2, 48000, "PCM_24")
    assert dominant_frequency(data, 48000) == pytest.approx([440, 2000], abs=2)


def test_meter_runs_for_the_given_seconds(no_device_env):
    result = run_cli("meter", "--seconds", "1", "--device", "virtual", env=no_device_env)
    assert result.returncode == 0, result.stderr
    assert "metering virtual:sine:1000 with the virtual driver: 2 ch, 48000 Hz" in result.stderr
    assert summary(result.stdout)["frames"] == "48000"
    assert summary(result.stdout)["peak dBFS"] == "-6.0, -6.0"  # amplitude 0.5


# ---- Ctrl-C ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "device, fmt",
    [("virtual", "wav"), pytest.param("pulse", "flac", marks=pytest.mark.audio_server)],
)
def test_ctrl_c_ends_the_recording_with_a_complete_file(request, tmp_path, no_device_env, device, fmt):
    env = request.getfixturevalue("pulse_env") if device == "pulse" else no_device_env
    out = tmp_path / f"interrupted.{fmt}"
    proc = subprocess.Popen([*CLI, "record", str(out), "--device", device], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        # The plain display prints its first line after one second of audio.
        while not any(f"REC {out}: " in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    stdout = proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()
    assert "Traceback" not in "".join(lines)
    info = sf.info(str(out))
    assert info.frames >= info.samplerate  # at least the second that was shown
    assert summary(stdout)["frames written"] == str(info.frames)
    assert len(sf.read(str(out))[0]) == info.frames


# ---- no input device: the fallback to the virtual input -------------------------------------


def test_without_any_input_device_record_and_meter_fall_back_to_the_virtual_input(tmp_path, no_device_env):
    listing = run_cli("devices", env=no_device_env)
    assert listing.returncode == 0, listing.stderr
    assert "no input devices" in listing.stdout, f"no_device_env left PortAudio an input device:\n{listing.stdout}"
    out = tmp_path / "fallback.wav"
    result = run_cli("record", str(out), "--seconds", "2", env=no_device_env)
    assert result.returncode == 0, result.stderr
    assert "audioring: no usable input device: no default input device" in result.stderr
    assert "Using the built-in virtual input virtual:sine:1000" in result.stderr
    assert summary(result.stdout)["input"] == "virtual:sine:1000 (no input device: fallback)"
    data = check_file(out, 96000, 2, 48000, "FLOAT")
    assert dominant_frequency(data, 48000) == pytest.approx([1000, 1000], abs=1)

    meter = run_cli("meter", "--seconds", "0.5", env=no_device_env)
    assert meter.returncode == 0, meter.stderr
    assert "Using the built-in virtual input" in meter.stderr
    assert summary(meter.stdout)["input"] == "virtual:sine:1000 (no input device: fallback)"

    doctor = run_cli("doctor", env=no_device_env)
    assert doctor.returncode == 1
    assert "default input device: none" in doctor.stdout
    assert "- no input device: start a sound server" in doctor.stdout


@pytest.mark.parametrize("command", ["record", "meter", "serve"])
def test_no_fallback_makes_a_missing_input_device_an_error(tmp_path, no_device_env, command):
    out = tmp_path / "x.wav"
    args = {"record": [str(out)], "meter": [], "serve": [f"cli{os.getpid()}-nofallback"]}[command]
    result = run_cli(command, *args, "--seconds", "0.5", "--no-fallback", env=no_device_env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"audioring {command}: error: no usable input device: no default input device. Available input devices: "
        "none (no input device found: is a sound server such as PulseAudio or JACK running?); --no-fallback "
        "refuses the virtual input in its place. Name a device with --device (see `audioring devices`); `audioring "
        "doctor` says what is missing"]
    assert result.stdout == "" and not out.exists()
    # A device named, the virtual input included, is no fallback: --no-fallback changes nothing.
    named = run_cli(command, *args, "--seconds", "0.5", "--no-fallback", "-d", "virtual", env=no_device_env)
    assert named.returncode == 0, named.stderr
    assert summary(named.stdout)["input"] == "virtual:sine:1000"
    assert "no usable input device" not in named.stderr


def test_a_named_device_that_does_not_exist_is_an_error_even_without_devices(tmp_path, no_device_env):
    result = run_cli("record", str(tmp_path / "x.wav"), "--device", "3", env=no_device_env)
    assert result.returncode == 2
    assert "argument --device: device 3" in result.stderr
    assert "Available input devices: none" in result.stderr
    assert not (tmp_path / "x.wav").exists()


@pytest.fixture
def no_portaudio_env(tmp_path, no_device_env) -> dict:
    """sounddevice fails to import as it does when libportaudio is not installed."""
    fake = tmp_path / "fake-sounddevice"
    fake.mkdir()
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    return {**no_device_env, "PYTHONPATH": str(fake)}


def test_without_portaudio_record_falls_back_and_doctor_says_what_to_install(tmp_path, no_portaudio_env):
    out = tmp_path / "x.flac"
    result = run_cli("record", str(out), "--seconds", "0.5", env=no_portaudio_env)
    assert result.returncode == 0, result.stderr
    assert "no usable input device: PortAudio could not be loaded (PortAudio library not found)" in result.stderr
    assert "sudo apt install libportaudio2" in result.stderr
    assert sf.info(str(out)).frames == 24000

    doctor = run_cli("doctor", env=no_portaudio_env)
    assert doctor.returncode == 1
    assert "PortAudio: missing" in doctor.stdout
    assert "sudo apt install libportaudio2" in doctor.stdout

    devices = run_cli("devices", env=no_portaudio_env)
    assert devices.returncode == 1
    assert "audioring devices: error: PortAudio could not be loaded" in devices.stderr

    named = run_cli("record", str(out), "--device", "pulse", env=no_portaudio_env)
    assert named.returncode == 1
    assert "sudo apt install libportaudio2" in named.stderr


# ---- the PulseAudio test server ---------------------------------------------------------------


@pytest.mark.audio_server
def test_record_wav_from_pulseaudio(tmp_path, pulse_server, pulse_env):
    out = tmp_path / "tone.wav"
    with pulse_server.play(tone([1000, 1000], 48000)):
        result = run_cli("record", str(out), "--seconds", "2", "--rate", "48000", env=pulse_env)
    assert result.returncode == 0, result.stderr
    assert "recording from 'default' (ALSA) with the native driver: 2 ch, 48000 Hz, float32" in result.stderr
    assert summary(result.stdout)["frames written"] == "96000"
    assert summary(result.stdout)["frames lost"] == "0"
    data = check_file(out, 96000, 2, 48000, "FLOAT")
    assert dominant_frequency(data, 48000) == pytest.approx([1000, 1000], abs=2)


@pytest.mark.audio_server
def test_record_flac_from_pulseaudio_at_the_device_defaults(tmp_path, pulse_server, pulse_env):
    listing = run_cli("devices", env=pulse_env)
    default = next(line for line in listing.stdout.splitlines() if line.startswith("*") and "ALSA" in line)
    rate = int(float(default.split()[-1]))
    out = tmp_path / "tone.flac"
    with pulse_server.play(tone([1000, 1000], 48000)):
        result = run_cli("record", str(out), "--seconds", "2", "--device", "pulse", env=pulse_env)
    assert result.returncode == 0, result.stderr
    data = check_file(out, 2 * rate, 2, rate, "PCM_24")
    assert sf.info(str(out)).format == "FLAC"
    assert dominant_frequency(data, rate) == pytest.approx([1000, 1000], abs=2)


@pytest.mark.audio_server
def test_devices_lists_the_pulseaudio_devices_and_marks_the_default(pulse_env):
    result = run_cli("devices", env=pulse_env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[2 if line.startswith("*") else 1]: line for line in result.stdout.splitlines()[1:]
            if re.match(r"[* ] +\d+ ", line)}
    assert set(rows) >= {"pulse", "default"}
    assert rows["default"].startswith("*") and not rows["pulse"].startswith("*")
    assert re.search(r"default +ALSA +32 +\d+", rows["default"])
    assert "index" in result.stdout and "default rate" in result.stdout
    assert "--device virtual" in result.stdout


@pytest.mark.audio_server
def test_doctor_with_pulseaudio_is_all_good(pulse_env):
    result = run_cli("doctor", env=pulse_env)
    assert result.returncode == 0, result.stdout
    for expected in ("PortAudio: PortAudio V19", "host APIs: ALSA (2 devices)", "input devices: 2",
                     "default input device: 1 'default' (ALSA, 32 ch", "opens",
                     "native callback driver: available", "soundfile: ", "rich: ", "all good"):
        assert expected in result.stdout


@pytest.mark.audio_server
@pytest.mark.parametrize("device", ["99", "no-such-device"])
def test_an_unknown_device_exits_2_listing_the_devices(tmp_path, pulse_env, device):
    result = run_cli("record", str(tmp_path / "x.wav"), "--device", device, env=pulse_env)
    message = usage_error(result, "record")  # as a --from name nothing is shared under
    assert message.startswith(f"argument --device: device {int(device) if device.isdigit() else device!r}")
    assert "Available input devices: 0: 'pulse' (ALSA, 32 ch); 1: 'default' (ALSA, 32 ch)" in message
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.audio_server
def test_too_many_channels_for_the_device(tmp_path, pulse_env):
    result = run_cli("record", str(tmp_path / "x.wav"), "--channels", "33", env=pulse_env)
    assert result.returncode == 2
    assert "argument --channels: must be in 1..32 for input device 'default' (ALSA), got 33" in result.stderr


# Devices are listed when PortAudio starts; a server gone by the time the
# stream opens makes the open fail. That race is forced here by making every
# stream open fail inside an otherwise real `python -m audioring`.
FAILING_OPEN = """
import runpy, sys
import sounddevice as sd
def refuse(*args, **kwargs):
    raise sd.PortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]", -9985)
sd._StreamBase.__init__ = refuse
runpy.run_module("audioring", run_name="__main__", alter_sys=True)
"""


@pytest.mark.audio_server
def test_a_listed_default_device_that_fails_to_open_falls_back(tmp_path, pulse_env):
    out = tmp_path / "fallback.wav"
    cmd = [sys.executable, "-W", "error", "-c", FAILING_OPEN, "record", str(out), "--seconds", "1"]
    result = subprocess.run(cmd, env=pulse_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no usable input device: the default input device 'default' (ALSA) failed to open" in result.stderr
    assert "Using the built-in virtual input virtual:sine:1000" in result.stderr
    assert summary(result.stdout)["input"] == "virtual:sine:1000 (the default input device failed to open: fallback)"
    # Rate and channels were settled from the device before it failed.
    rate = sf.info(str(out)).samplerate
    data = check_file(out, rate, 2, rate, "FLOAT")
    assert dominant_frequency(data, rate) == pytest.approx([1000, 1000], abs=2)

    # With --no-fallback it is an error naming the device and why, and the existing file is left alone.
    strict = subprocess.run([*cmd, "--no-fallback"], env=pulse_env, capture_output=True, text=True, timeout=60)
    assert strict.returncode == 1, strict.stderr
    assert strict.stderr.startswith("audioring record: error: no usable input device: the default input device "
                                    "'default' (ALSA) failed to open: "), strict.stderr
    assert "--no-fallback refuses the virtual input" in strict.stderr
    assert sf.info(str(out)).frames == rate

    # A named device that fails is an error, and the existing file is left alone.
    named = subprocess.run([*cmd, "--device", "pulse"], env=pulse_env, capture_output=True, text=True, timeout=60)
    assert named.returncode == 1
    assert "audioring record: error: input device 'pulse' (ALSA) failed: " in named.stderr
    assert sf.info(str(out)).frames == rate


# ---- the terminal display ----------------------------------------------------------------------


def test_on_a_terminal_a_live_meter_is_drawn(tmp_path, no_device_env):
    out = tmp_path / "tty.wav"
    main, child = pty.openpty()
    proc = subprocess.Popen([*CLI, "record", str(out), "-d", "virtual:sine:440,880", "-s", "1.5"],
                            env={**no_device_env, "TERM": "xterm-256color", "COLUMNS": "100"},
                            stdout=subprocess.PIPE, stderr=child, text=True)
    os.close(child)
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.1)[0]:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the child side is closed
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 0
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout = proc.stdout.read()
    proc.stdout.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    assert "● REC" in text and "1.5 s / 1.5 s" in text
    assert re.search(r"ch  1 .*█.* -6\.0 dBFS +max +-6\.0", text)
    assert re.search(r"ch  2 .*█.* -6\.0 dBFS +max +-6\.0", text)
    assert "overflows 0   frames lost 0" in text
    assert "Traceback" not in text
    assert summary(stdout)["frames written"] == "72000"
