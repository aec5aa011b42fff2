"""The public test-server module, audioring.testing: servers, signals, environment, plugin, CLI.

The capture tests play known tones through a real server, capture them
through PortAudio (sounddevice only, not audioring), and check per channel
that the right tone arrived (and the other tones did not, which would mean
remixed or misrouted channels).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sounddevice as sd

import audioring.testing
from audioring.testing import (
    AudioServerError,
    AudioServerUnavailable,
    JackServer,
    PulseServer,
    _packages,
    alsa_channel_map,
    dominant_frequency,
    tone,
)
from audioring.testing.pytest_plugin import _unavailable
from recording import require_realtime_scheduling

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(audioring.testing.__file__).parent


def _device(name: str, hostapi: str) -> int:
    """Index of the PortAudio device called `name` in host API `hostapi`."""
    apis = sd.query_hostapis()
    for i, dev in enumerate(sd.query_devices()):
        if dev["name"] == name and hostapi in apis[dev["hostapi"]]["name"]:
            return i
    pytest.fail(f"no {hostapi} device {name!r} in:\n{sd.query_devices()}")


def _capture(stream_args: dict, seconds: float, settle: float = 0.1,
             ready=None, timeout: float = 10.0) -> np.ndarray:
    """Record `seconds` with a callback InputStream, after `settle` seconds.

    `ready` is called once the stream runs (e.g. to wait for connections);
    frames before it returns and the following `settle` seconds are dropped.
    Never blocks for more than `timeout`.
    """
    rate = stream_args["samplerate"]
    blocks: list[np.ndarray] = []
    enough = threading.Event()
    want = int(round((settle + seconds) * rate))
    count = [0, False]  # frames kept, keeping?

    def callback(indata, frames, time_info, status):
        if count[1]:
            blocks.append(indata.copy())
            count[0] += frames
            if count[0] >= want:
                enough.set()

    with sd.InputStream(dtype="float32", callback=callback, **stream_args):
        if ready is not None:
            ready()
        count[1] = True
        t0 = time.monotonic()
        if not enough.wait(timeout):
            pytest.fail(f"captured {count[0]} of {want} frames in {timeout} s")
        elapsed = time.monotonic() - t0
    x = np.concatenate(blocks)
    # Delivery may come in bursts, but not much slower than real time.
    assert elapsed < 3 * (settle + seconds) + 1.0, f"{want} frames took {elapsed:.2f} s"
    return x[-int(round(seconds * rate)):]


def _tone_levels(x: np.ndarray, rate: int, freqs) -> np.ndarray:
    """Amplitude of each of `freqs` in each channel: shape (channels, len(freqs))."""
    t = np.arange(len(x)) / rate
    basis = np.exp(-2j * np.pi * np.outer(t, freqs))  # (frames, freqs)
    return 2 * np.abs(x.astype(np.float64).T @ basis) / len(x)


def _assert_tones_in_order(x: np.ndarray, rate: int, freqs, segments: int = 5) -> None:
    """Channel i carries freqs[i] (dominant, at full level) and no other tone.

    Levels are the median over `segments` pieces, so that one glitch (a
    period lost when the Python callback is late on a loaded machine) does
    not fail the check; each piece must hold whole cycles of every tone.
    """
    found = dominant_frequency(x, rate)
    # Tones are >= 500 Hz apart; a glitch may move the peak by a bin or two.
    assert np.allclose(found, freqs, atol=20), f"dominant {found}, want {freqs}"
    pieces = np.array_split(x, segments)
    levels = np.median([_tone_levels(p, rate, freqs) for p in pieces], axis=0)
    own = np.diag(levels)
    assert np.all(own > 0.3), f"tone levels {own.round(3)} (played at 0.5)"
    crosstalk = levels - np.diag(own)
    assert crosstalk.max() < 0.02 * own.min(), f"other tones leak in:\n{levels.round(3)}"


@pytest.mark.audio_server
def test_pulse_default_device_captures_1khz_on_both_channels(pulse_server):
    rate = 48000
    with pulse_server.play(tone([1000, 1000], rate)):
        x = _capture({"device": _device("pulse", "ALSA"), "channels": 2,
                      "samplerate": rate}, seconds=0.3)
    assert np.allclose(dominant_frequency(x, rate), 1000, atol=20)
    assert np.all(np.abs(x).max(axis=0) > 0.3)


@pytest.mark.audio_server
def test_pulse_8_channels_96khz_arrive_per_channel_in_order(pulse_server_factory):
    rate, channels = 96000, 8
    server = pulse_server_factory(rate, channels)
    freqs = [1000 * (k + 1) for k in range(channels)]
    with server.play(tone(freqs, rate)):
        x = _capture({"device": _device("pulse", "ALSA"), "channels": channels,
                      "samplerate": rate}, seconds=0.5)
    _assert_tones_in_order(x, rate, freqs)


@pytest.mark.audio_server
def test_jack_192khz_32_channels_injected_tones_arrive_in_order(jack_server_factory):
    rate, channels = 192000, 32
    # A period of 1024 frames (5.3 ms) leaves the Python callbacks of this
    # test and of the tone generator time enough on 2 cores.
    server = jack_server_factory(rate, 1024, channels)
    freqs = [1000 + 500 * k for k in range(channels)]
    with server.inject_tones(freqs) as injector:
        x = _capture({"device": _device("system", "JACK"), "channels": channels,
                      "samplerate": rate}, seconds=0.5,
                     ready=lambda: injector.wait_connected(channels, timeout=10))
    _assert_tones_in_order(x, rate, freqs)


# ---- realtime JACK -------------------------------------------------------------------------------


def _realtime_threads(pid: int) -> list[int]:
    """Threads of `pid` scheduled SCHED_FIFO or SCHED_RR."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if os.sched_getscheduler(int(task.name)) in (os.SCHED_FIFO, os.SCHED_RR):
                found.append(int(task.name))
        except OSError:
            continue
    return found


@pytest.mark.audio_server
def test_jack_runs_without_realtime_scheduling_by_default(jack_server_factory):
    server = jack_server_factory(48000, 256, 2)
    assert not server.realtime
    assert _realtime_threads(server.pid) == []


@pytest.mark.audio_server
def test_jack_realtime_server_runs_realtime_and_portaudio_records_from_it(request, jack_server_factory):
    require_realtime_scheduling(request.config)
    rate, channels = 48000, 2
    server = jack_server_factory(rate, 256, channels, realtime=True)
    assert server.realtime and b"-R" in Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert _realtime_threads(server.pid), "jackd -R runs no SCHED_FIFO thread"
    freqs = [1000, 2500]
    with server.inject_tones(freqs) as injector:
        x = _capture({"device": _device("system", "JACK"), "channels": channels,
                      "samplerate": rate}, seconds=0.5,
                     ready=lambda: injector.wait_connected(channels, timeout=10))
    _assert_tones_in_order(x, rate, freqs)


@pytest.mark.audio_server
def test_jack_names_the_client_that_made_it_miss_a_cycle(jack_server_factory):
    import jack  # JACK-Client

    server = jack_server_factory(48000, 256, 2)
    assert server.late_clients() == []
    period_s = 256 / 48000
    client = jack.Client("audioring-sluggard", servername=server.name, no_start_server=True)
    client.set_process_callback(lambda frames: time.sleep(4 * period_s))
    with client:  # activates; closes on leaving
        deadline = time.monotonic() + 10
        while "audioring-sluggard" not in server.late_clients() and time.monotonic() < deadline:
            time.sleep(0.05)
    late = server.late_clients()
    assert "audioring-sluggard" in late and set(late) <= {"audioring-sluggard"}, late


# ---- servers: start, stop, environment -----------------------------------------------------------


def _started(request: pytest.FixtureRequest, server: JackServer) -> JackServer:
    """`server`, started; else skipped or failed by the plugin's policy (fails under CI=true)."""
    try:
        return server.start()
    except AudioServerError as e:
        error = e
    _unavailable(request.config, repr(server), error)


@pytest.fixture
def clean_jack_env(monkeypatch):
    """No JACK variables in os.environ, restored afterwards."""
    for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER", "AUDIORING_JACK_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "before")


@pytest.mark.audio_server
def test_jack_server_exports_env_and_restores_it(clean_jack_env, request):
    server = _started(request, JackServer(48000, 256, 2))
    try:
        assert server.running and server.directory is not None
        assert os.environ["JACK_DEFAULT_SERVER"] == server.name != "before"
        assert os.environ["JACK_NO_START_SERVER"] == "1"
        assert os.environ["AUDIORING_JACK_DIR"] == str(server.directory)
        assert "system:capture_2" in server.ports() and "system:capture_3" not in server.ports()
        assert (server.directory / "jackd.log").is_file()
        directory, pid = server.directory, server.pid
    finally:
        server.stop()
    assert not server.running and server.pid is None and server.directory is None
    assert not directory.exists()
    assert not Path(f"/proc/{pid}").exists() or b"jackd" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert os.environ["JACK_DEFAULT_SERVER"] == "before"
    assert "JACK_NO_START_SERVER" not in os.environ and "AUDIORING_JACK_DIR" not in os.environ


@pytest.mark.audio_server
def test_a_server_activated_later_keeps_the_variables(clean_jack_env, request):
    with _started(request, JackServer(48000, 256, 1)) as first:
        with _started(request, JackServer(48000, 256, 1)) as second:
            assert first.name != second.name  # private names from the pool never clash
            assert os.environ["JACK_DEFAULT_SERVER"] == second.name
            first.stop()  # not the active one: leaves the variables alone
            assert os.environ["JACK_DEFAULT_SERVER"] == second.name
            assert second.running
        # Each server restores what it found when it was activated.
        assert os.environ["JACK_DEFAULT_SERVER"] == first.name


@pytest.mark.audio_server
def test_pulse_server_exports_env_and_records_what_it_plays(pulse_server):
    assert os.environ["PULSE_SERVER"] == pulse_server.env["PULSE_SERVER"] == f"unix:{pulse_server.socket}"
    assert Path(pulse_server.env["PULSE_CLIENTCONFIG"]).read_text() == "autospawn = no\n"
    with pulse_server.play(tone([440, 1320], 48000)) as player:
        assert player.running
        x = pulse_server.record(0.5)
    assert not player.running and not player.path.exists()
    assert x.shape == (24000, 2) and x.dtype == np.float32
    assert np.allclose(dominant_frequency(x, 48000), [440, 1320], atol=5)


@pytest.mark.audio_server
def test_pulse_play_checks_the_shape(pulse_server):
    with pytest.raises(ValueError, match="shape"):
        pulse_server.play(tone([440], 48000))
    with pytest.raises(ValueError, match="shape"):
        pulse_server.play(np.zeros((0, 2), np.float32))


def test_stopped_servers_refuse_to_play_or_inject():
    with pytest.raises(AudioServerError, match="not running"):
        PulseServer().play(tone([440, 440], 48000))
    with pytest.raises(AudioServerError, match="not running"):
        JackServer().inject_tones([440])
    PulseServer().stop()  # stopping a server that never started is harmless
    JackServer().stop()


# ---- what to install -----------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "packages"), [
    (PulseServer, "apt-get install pulseaudio pulseaudio-utils libasound2-plugins"),
    (JackServer, "apt-get install jackd2"),
])
def test_missing_programs_raise_unavailable_naming_the_packages(server, packages, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no program found; nothing may be installed either
    before = dict(os.environ)
    with pytest.raises(AudioServerUnavailable) as caught:
        server().start()
    assert isinstance(caught.value, AudioServerError)
    message = str(caught.value)
    assert packages in message and "Fedora" in message and "Arch" in message, message
    assert caught.value.missing in ("pulseaudio", "jackd")
    assert dict(os.environ) == before


def test_missing_jack_client_package_is_named():
    with pytest.raises(AudioServerUnavailable, match=r"pip install JACK-Client .*audioring\[testing\]"):
        _packages.require_python_module("audioring_no_such_module", "JACK-Client", "testing")


def test_debian_package_list_is_the_one_ci_installs():
    names = [p.name for p in _packages.debian_packages()]
    assert names == ["pulseaudio", "pulseaudio-utils", "libasound2-plugins", "jackd2", "faketime"]
    assert {p.server for p in _packages.debian_packages()} == {"pulse", "jack", "jack-clock"}
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python/audioring/testing/debian-packages.txt" in ci
    for name in names:  # listed once: in the data file, not again in .ci/run
        assert f" {name} " not in ci and f" {name}\n" not in ci, name


# ---- signals ---------------------------------------------------------------------------------------


def test_tone_is_float32_per_channel_and_loops_seamlessly():
    x = tone([1000, 250.5, 3], 8000, seconds=2.0, amplitude=0.25)
    assert x.shape == (16000, 3) and x.dtype == np.float32
    assert np.abs(x).max() == pytest.approx(0.25, abs=1e-3)
    assert np.allclose(dominant_frequency(x[:, :2], 8000), [1000, 250.5], atol=0.5)
    looped = np.concatenate([x, x])[:, 0]  # integer Hz x seconds: no jump at the seam
    assert np.abs(np.diff(looped)).max() <= np.abs(np.diff(x[:, 0])).max() + 1e-6


def test_dominant_frequency_of_mono_and_multichannel():
    rate = 48000
    assert dominant_frequency(tone([1000], rate)[:, 0], rate).tolist() == [1000.0]
    x = tone([700, 5000], rate) + 0.1  # a DC offset does not count
    assert dominant_frequency(x, rate).tolist() == [700.0, 5000.0]
    # Resolution rate / frames; a non-integer number of cycles still peaks right.
    assert dominant_frequency(tone([1234.5], rate, seconds=0.1), rate)[0] == pytest.approx(1234.5, abs=10)


@pytest.mark.parametrize(("channels", "expected"), [
    (1, ["mono"]),
    (2, ["front-left", "front-right"]),
    (3, ["front-left", "front-right", "aux0"]),
    (4, ["front-left", "front-right", "rear-left", "rear-right"]),
    (5, ["front-left", "front-right", "rear-left", "rear-right", "front-center"]),
    (6, ["front-left", "front-right", "rear-left", "rear-right", "front-center", "lfe"]),
    (7, ["front-left", "front-right", "rear-left", "rear-right", "front-center", "lfe", "aux0"]),
    (8, ["front-left", "front-right", "rear-left", "rear-right", "front-center", "lfe",
         "side-left", "side-right"]),
])
def test_alsa_channel_map(channels, expected):
    assert alsa_channel_map(channels) == expected


def test_alsa_channel_map_extends_with_aux_up_to_32():
    full = alsa_channel_map(32)
    assert len(full) == len(set(full)) == 32 and full[8:] == [f"aux{i}" for i in range(24)]
    for bad in (0, 33):
        with pytest.raises(ValueError, match="1..32"):
            alsa_channel_map(bad)


# ---- the pytest plugin -----------------------------------------------------------------------------


def test_importing_the_plugin_is_cheap_and_side_effect_free():
    code = textwrap.dedent("""
        import os, sys, threading, atexit
        import pytest, audioring  # already loaded in a pytest run that has audioring
        before, handlers = dict(os.environ), atexit._ncallbacks()
        import audioring.testing.pytest_plugin
        import audioring.testing
        assert "sounddevice" not in sys.modules and "jack" not in sys.modules, "imported audio libraries"
        assert dict(os.environ) == before, "changed the environment"
        assert threading.active_count() == 1, "started threads"
        assert atexit._ncallbacks() == handlers, "registered exit handlers"
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def _pytest_in(tmp_path: Path, args: list[str], env_update: dict[str, str]) -> subprocess.CompletedProcess:
    """Run pytest on a test using the fixtures, in `tmp_path` with no audio server programs on PATH."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.audio_server
        def test_pulse(pulse_server):
            pass

        def test_jack(jack_server_factory):
            jack_server_factory(48000, 256, 2)
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env.update(PATH=str(tmp_path / "no-programs"), **env_update)
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


# A fixture that fails makes pulse_server's test an error (at setup), jack's a failure.
FAILED = "1 failed, 1 error"


@pytest.mark.parametrize(("args", "env", "outcome"), [
    ([], {}, "2 skipped"),
    ([], {"CI": "true"}, FAILED),
    ([], {"CI": "false"}, "2 skipped"),
    (["--audio-servers=require"], {}, FAILED),
    (["--audio-servers=skip-unavailable"], {"CI": "true"}, "2 skipped"),
    (["-o", "audio_servers=require"], {}, FAILED),
])
def test_plugin_skips_unless_servers_are_required(tmp_path, args, env, outcome):
    r = _pytest_in(tmp_path, args, env)
    assert outcome in r.stdout, r.stdout + r.stderr
    # The reason says what to install.
    assert "apt-get install pulseaudio pulseaudio-utils libasound2-plugins" in r.stdout, r.stdout
    assert "apt-get install jackd2" in r.stdout, r.stdout


def test_plugin_registers_marker_fixtures_and_option(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for args, wanted in ((["--markers"], "@pytest.mark.audio_server:"),
                         (["--fixtures"], "pulse_server_factory"),
                         (["--help"], "--audio-servers")):
        r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)
        assert wanted in r.stdout, r.stdout + r.stderr
        if args == ["--fixtures"]:
            assert "jack_server_factory" in r.stdout and "pulse_server " in r.stdout, r.stdout


# ---- the command line ------------------------------------------------------------------------------


@pytest.mark.audio_server
def test_command_line_starts_and_stops_a_jack_server():
    script = textwrap.dedent(f"""
        set -e
        # Only the server started here: `stop` would also stop those of $AUDIORING_PULSE_DIR.
        unset JACK_DEFAULT_SERVER AUDIORING_JACK_DIR AUDIORING_PULSE_DIR
        eval "$({sys.executable} -m audioring.testing jack --channels 3 --rate 44100)"
        echo "dir=$AUDIORING_JACK_DIR"
        echo "nostart=$JACK_NO_START_SERVER"
        jack_lsp -s "$JACK_DEFAULT_SERVER"
        eval "$({sys.executable} -m audioring.testing stop)"
        echo "after=${{JACK_DEFAULT_SERVER-unset}}"
    """)
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    if r.returncode != 0 and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(f"jackd could not start: {r.stderr[-2000:]}")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    directory = next(line.split("=", 1)[1] for line in out if line.startswith("dir="))
    assert "nostart=1" in out and "system:capture_3" in out and "system:capture_4" not in out
    assert out[-1] == "after=unset" and not Path(directory).exists()
    assert "stopped jack server" in r.stderr


def start_player(*args: str) -> subprocess.Popen:
    """``python -m audioring.testing play ARGS`` (its messages on stderr, text)."""
    return subprocess.Popen([sys.executable, "-m", "audioring.testing", "play", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def recorded_frequencies(channels: int, device: str, seconds: float = 0.5) -> np.ndarray:
    """The dominant frequency per channel of ``seconds`` of ``device``, once 1.5 s have arrived."""
    from audioring import AudioRecord

    with AudioRecord(channels, 48000, 96000, device=device) as rec:
        deadline = time.monotonic() + 20
        while rec.frames_recorded < 72000:
            assert time.monotonic() < deadline, "the recorder got no frames"
            time.sleep(0.05)
        return dominant_frequency(rec.read(round(seconds * 48000)), 48000)


def finish_player(player: subprocess.Popen, timeout: float = 30) -> str:
    """Wait for the player to end by itself (its --seconds); check its exit status; return its messages."""
    out, err = player.communicate(timeout=timeout)
    assert player.returncode == 0 and out == "", (player.returncode, out, err)
    return err


@pytest.mark.audio_server
def test_command_line_plays_a_tone_per_channel_into_jack(jack_server_factory):
    server = jack_server_factory(48000, 256, 2)
    player = start_player("jack", "--dir", str(server.directory), "--freqs", "440", "660", "--seconds", "5")
    try:
        assert recorded_frequencies(2, "system") == pytest.approx([440, 660], abs=4)
    finally:
        err = finish_player(player)
    assert "playing tone 440,660 Hz into the jack server" in err and "connected audioring-play:out_2" in err


@pytest.mark.audio_server
def test_command_line_plays_into_jack_until_ctrl_c(jack_server_factory):
    server = jack_server_factory(48000, 256, 1)
    player = start_player("jack", "--dir", str(server.directory), "--freqs", "1500")
    try:
        assert recorded_frequencies(1, "system") == pytest.approx([1500], abs=4)
        assert player.poll() is None, "the player stopped without --seconds"
        player.send_signal(signal.SIGINT)
    finally:
        err = finish_player(player, timeout=10)
    assert "until Ctrl-C" in err and "Traceback" not in err, err


@pytest.mark.audio_server
def test_command_line_plays_a_tone_and_a_file_into_pulse(pulse_server, tmp_path):
    import soundfile

    player = start_player("pulse", "--dir", str(pulse_server.directory), "--freqs", "440", "--seconds", "4")
    try:
        assert recorded_frequencies(2, "pulse") == pytest.approx([440, 440], abs=4)
    finally:
        finish_player(player)
    # A mono file plays on every channel, once (ending by itself, at its end).
    path = tmp_path / "tone.wav"
    soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * 880 * np.arange(5 * 48000) / 48000), 48000)
    player = start_player("pulse", "--dir", str(pulse_server.directory), "--file", str(path))
    try:
        assert recorded_frequencies(2, "pulse") == pytest.approx([880, 880], abs=4)
    finally:
        err = finish_player(player)
    assert f"playing {path} into the pulse server" in err and "5 s" in err


@pytest.mark.audio_server
def test_command_line_play_refuses_bad_arguments_and_a_missing_server(pulse_server, tmp_path):
    import soundfile

    for args, message in (
        (["--freqs", "0"], "--freqs: each frequency must be in (0, 24000) Hz"),
        (["--freqs", "440", "550", "660"], "--freqs: give 1 or 2 frequencies"),
        (["--amplitude", "1.5"], "--amplitude must be in (0, 1], got 1.5"),
        (["--seconds", "-1"], "--seconds must be a number of seconds > 0"),
        (["--file", str(tmp_path / "missing.wav")], f"--file: cannot read {tmp_path / 'missing.wav'}"),
        (["--freqs", "440", "--file", "x.wav"], "argument --file: not allowed with argument --freqs"),
    ):
        player = start_player("pulse", "--dir", str(pulse_server.directory), *args)
        out, err = player.communicate(timeout=30)
        assert player.returncode == 2 and message in err, (args, player.returncode, err)
    soundfile.write(str(tmp_path / "44k.wav"), np.zeros(4410), 44100)
    player = start_player("pulse", "--dir", str(pulse_server.directory), "--file", str(tmp_path / "44k.wav"))
    out, err = player.communicate(timeout=30)
    assert player.returncode == 2 and "is at 44100 Hz; the pulse server runs at 48000 Hz" in err, err
    player = start_player("jack", "--dir", str(tmp_path), "--seconds", "1")
    out, err = player.communicate(timeout=30)
    assert player.returncode == 1 and f"no jack test server state in {tmp_path}" in err, err


# ---- the README's example -------------------------------------------------------------------------


@pytest.mark.audio_server
def test_readme_example_passes_under_pytest(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Testing your own capture code", 1)[1].split("\n## ", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "test_capture.py").write_text(example)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["CI"] = "true"  # a server that cannot start fails the example, never skips it
    r = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert "2 passed" in r.stdout, r.stdout + r.stderr
