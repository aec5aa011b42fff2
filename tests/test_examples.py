"""The scripts in examples/ run as their users run them (a subprocess, a real audio server) and do what they say.

- ``vad.py``: espeak-ng speech played into PulseAudio (recorded at 16 kHz through audioring's conversion from
  48 kHz): the speech segments it prints cover the spoken interval, measured by this test's own recorder on
  the same server and clock, to within 150 ms, and nothing is reported in the second of silence on each side.
- ``websocket_server.py`` / ``websocket_client.py``: two clients each receive 5 s of the VirtualInput's int16
  ramp, every frame exactly once: consecutive, and each frame holding the number the server's header names.
- ``preroll.py``: its onset detector fires once per sound (not at a steady tone's every cycle, not at a sound
  going on from the start, again only after the hold's silence); a cosine burst played into JACK after
  silence (a JACK client of this test's, connected to the recorder's port): the take starts exactly 2 s before
  the burst's first sample, holds the burst sample for sample, and is exactly 5 s long; a steady tone that
  starts 0.3 s into the recording: one take, starting at the recording's first frame, never another.
- ``--device virtual:sine:HZ`` (``examples/_device.py``, shared by the four that record): the frequency asked for
  arrives, measured with ``dominant_frequency`` in what model_frames.py and the websocket client saved.
- ``model_frames.py``: 512-sample float32 and 1280-sample int16 frames, every recorded frame once in each, the
  two the same samples; from the ramp, and from JACK (48 kHz, converted to 16 kHz) with a tone injected.

A missing Python package or program skips a test on a developer's machine and fails it under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audioring import AudioRecord
from audioring.testing import dominant_frequency
from recording import wait_for_frames

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TESTED = ["model_frames.py", "preroll.py", "vad.py", "websocket_client.py", "websocket_server.py"]
RECORDING = ["model_frames.py", "preroll.py", "vad.py", "websocket_server.py"]  # the ones that take --device


def example_module(name: str):
    """examples/<name>.py imported (as the scripts import _device: from beside them)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def _missing(reason: str) -> None:
    """Skip (developer machine) or fail (CI=true)."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_modules(*names: str) -> None:
    for name in names:
        if importlib.util.find_spec(name) is None:
            _missing(f"{name} is not installed (pip install '.[examples]')")


def start(name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Run examples/<name> with this Python, as a user would; text pipes for its output."""
    return subprocess.Popen([sys.executable, str(EXAMPLES / name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def read_line(process: subprocess.Popen, timeout: float = 30) -> str:
    """The example's next line of output (it flushes each), failing after ``timeout`` seconds instead of hanging."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        process.kill()
        pytest.fail(f"{process.args[1]} printed nothing in {timeout} s: {process.communicate()}")
    return process.stdout.readline()


def finish(process: subprocess.Popen, timeout: float = 60, interrupt: bool = False) -> str:
    """Wait for an example (after a Ctrl-C if ``interrupt``); check it exited cleanly; return its output."""
    if interrupt:
        process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"{process.args[1]} did not finish in {timeout} s:\n{out}\n{err}")
    assert process.returncode == 0, f"{process.args[1]} exited with {process.returncode}:\n{out}\n{err}"
    assert err == "", err  # nothing went wrong quietly
    return out


def test_every_example_is_tested_and_in_the_readme():
    assert sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")) == TESTED
    readme = (ROOT / "README.md").read_text()
    for name in TESTED:
        assert f"examples/{name}" in readme, f"README's Examples section does not list {name}"


@pytest.mark.parametrize("name", TESTED)
def test_example_help(name):
    require_modules("webrtcvad", "websockets", "soundfile")
    out = finish(start(name, "--help"))
    assert out.startswith("usage:") and "--seconds" in out


# ---- --device (examples/_device.py) ----------------------------------------------------------------------

def test_device_names_parse_as_the_command_line_spells_them():
    device = example_module("_device").device
    assert device("3") == 3 and device("pulse") == "pulse"
    assert [device(n).name for n in ("virtual", "virtual:sine:440", "virtual:sine:440,880", "virtual:ramp",
                                     "virtual:noise")] == ["virtual:sine:1000", "virtual:sine:440",
                                                           "virtual:sine:440,880", "virtual:ramp", "virtual:noise"]
    assert device("virtual:sine:440,880").frequencies == [440.0, 880.0]


@pytest.mark.parametrize("name", RECORDING)
@pytest.mark.parametrize("spec", ["virtual:sine:abc", "virtual:sine:-5", "virtual:ramp:440", "virtual:square"])
def test_a_bad_virtual_device_is_a_usage_error_naming_the_syntax(name, spec):
    require_modules("webrtcvad", "websockets", "soundfile")
    process = start(name, "--device", spec)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == "", (out, err)
    assert f"argument --device: invalid virtual input {spec!r}" in err
    assert "virtual:sine:HZ[,HZ...]" in err


@pytest.mark.parametrize("name", ["preroll.py", "vad.py"])
def test_examples_listen_to_the_virtual_frequency_asked_for(name):
    require_modules("webrtcvad")
    out = finish(start(name, "--device", "virtual:sine:440", "--seconds", "1"))
    assert out.startswith("listening to virtual:sine:440"), out


def test_model_frames_get_the_virtual_frequency_asked_for(tmp_path):
    path = tmp_path / "frames.npz"
    out = finish(start("model_frames.py", "--device", "virtual:sine:440", "--seconds", "2", "--save", str(path)))
    silero, wakeword = model_frames(path, out)
    for samples in (silero, wakeword):
        assert dominant_frequency(samples[-16000:].astype(np.float64), 16000) == pytest.approx([440], abs=2)


def test_websocket_clients_get_the_virtual_frequency_asked_for(tmp_path):
    require_modules("websockets", "soundfile")
    import soundfile

    server = start("websocket_server.py", "--device", "virtual:sine:440", "--port", "0")
    url = re.search(r"ws://\S+", read_line(server))
    assert url, "the server did not say where it serves"
    finish(start("websocket_client.py", url.group(0), str(tmp_path / "c.wav"), "--seconds", "1"), timeout=60)
    finish(server, interrupt=True)
    frames = soundfile.read(str(tmp_path / "c.wav"), dtype="int16")[0]
    assert dominant_frequency(frames.astype(np.float64), 16000) == pytest.approx([440], abs=2)


# ---- vad.py ------------------------------------------------------------------------------------------

@pytest.mark.audio_server
def test_vad_reports_the_spoken_interval_and_nothing_in_the_silence(pulse_server, tmp_path):
    require_modules("webrtcvad", "soundfile", "soxr")
    import soundfile
    import soxr

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        _missing("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run([espeak, "-w", str(tmp_path / "speech.wav"), "The quick brown fox jumps over the lazy dog."],
                   check=True, capture_output=True, timeout=60)
    speech, speech_rate = soundfile.read(tmp_path / "speech.wav", dtype="float32")
    rate = pulse_server.rate
    silence = np.zeros(rate, np.float32)  # a second on each side
    played = np.concatenate([silence, soxr.resample(speech, speech_rate, rate).astype(np.float32), silence])

    # Through audioring's conversion: the device opened at 48 kHz, recorded at 16 kHz.
    vad = start("vad.py", "--device", "pulse", "--device-rate", "48000", "--seconds", "60", env=pulse_server.env)
    assert read_line(vad).startswith("listening to pulse at 48000 Hz")
    # This test's own ears, on the same server and clock (PortAudio's ALSA stream time is the system's).
    with AudioRecord(1, 16000, 16000 * 30, dtype="int16", device="pulse") as rec:
        wait_for_frames(rec, 16000)
        with pulse_server.play(np.column_stack([played] * pulse_server.channels), loop=False, wait=False):
            time.sleep(len(played) / rate + 1.0)
        heard = rec.read(rec.frames_recorded, copy=True)[:, 0].astype(np.int64)
        first = rec.frames_written - len(heard)
        loud = np.flatnonzero(np.abs(heard) > 33)  # above -60 dBFS: the speech (the silence is digital zeros)
        assert loud.size, "the speech did not arrive"
        spoken = (rec.time_at(first + loud[0]), rec.time_at(first + loud[-1] + 1))
        # Each 30 ms of clear speech (RMS above -40 dBFS), by its middle's time: what the segments must cover.
        chunks = heard[: len(heard) // 480 * 480].reshape(-1, 480)
        voiced = [rec.time_at(first + 480 * i + 240) for i in np.flatnonzero(np.sqrt(np.mean(chunks ** 2, 1)) > 328)]
    time.sleep(1.0)  # the example's last frames are a block or two behind
    out = finish(vad, interrupt=True)
    segments = [tuple(map(float, m)) for m in re.findall(r"^speech ([\d.]+) ([\d.]+) \(", out, flags=re.M)]
    print(f"\nspoken {spoken[0]:.3f}-{spoken[1]:.3f}; segments " +
          ", ".join(f"{s - spoken[0]:+.3f}..{e - spoken[1]:+.3f}" for s, e in segments))
    assert segments, out
    tolerance = 0.150
    assert abs(segments[0][0] - spoken[0]) <= tolerance, (segments, spoken)
    assert abs(segments[-1][1] - spoken[1]) <= tolerance, (segments, spoken)
    for begin, end in segments:  # nothing in the silence around the speech
        assert spoken[0] - tolerance <= begin < end <= spoken[1] + tolerance, (segments, spoken)
    uncovered = [t for t in voiced if not any(b - tolerance <= t <= e + tolerance for b, e in segments)]
    assert len(voiced) > 20 and not uncovered, (uncovered, segments)


# ---- websocket_server.py and websocket_client.py ---------------------------------------------------------

def test_two_websocket_clients_each_receive_every_frame_exactly_once(tmp_path):
    require_modules("websockets", "soundfile")
    import soundfile

    server = start("websocket_server.py", "--device", "virtual:ramp", "--port", "0")
    url = re.search(r"ws://\S+", read_line(server))
    assert url, "the server did not say where it serves"
    paths = [tmp_path / f"client{i}.wav" for i in range(2)]
    clients = [start("websocket_client.py", url.group(0), str(path), "--seconds", "5") for path in paths]
    outputs = [finish(client, timeout=60) for client in clients]
    finish(server, interrupt=True)
    for path, out in zip(paths, outputs):
        header_line, saved_line = out.splitlines()
        header = json.loads(header_line)
        assert (header["rate"], header["channels"], header["dtype"]) == (16000, 1, "int16")
        assert saved_line == f"saved 80000 frames to {path}"
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 80000, "PCM_16")
        frames = soundfile.read(str(path), dtype="int16")[0]
        # The ramp: frame n of the recording holds n modulo 2**16 (as int16's bit pattern).
        expected = (header["first_frame"] + np.arange(80000)) % 2**16
        np.testing.assert_array_equal(frames.view(np.uint16), expected)


# ---- preroll.py ----------------------------------------------------------------------------------------

class BurstPlayer:
    """A JACK client of this test that plays silence, then (on ``play()``) ``burst`` once, into the recorder."""

    def __init__(self, server, burst: np.ndarray) -> None:
        import jack  # JACK-Client

        self.burst = burst
        self.position: int | None = None  # where the burst is; None: not started
        self.client = jack.Client("audioring-burst", servername=server.name, no_start_server=True)
        self.port = self.client.outports.register("out")
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        out = self.port.get_array()
        out[:] = 0
        if self.position is not None:
            chunk = self.burst[self.position:self.position + frames]
            out[:len(chunk)] = chunk
            self.position += frames

    def connect_to(self, prefix: str, timeout: float = 10) -> None:
        """Connect to the input ports of the clients named ``prefix...`` (PortAudio's), once they exist."""
        deadline = time.monotonic() + timeout
        while not (ports := [p for p in self.client.get_ports(is_input=True, is_audio=True)
                             if p.name.startswith(prefix)]):
            assert time.monotonic() < deadline, "the recorder's JACK ports did not appear"
            time.sleep(0.05)
        for port in ports:
            self.client.connect(self.port, port)

    def play(self) -> None:
        self.position = 0

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def onsets(signal: np.ndarray, rate: int = 48000, threshold: float = 0.1, hold: float = 0.5) -> list[int]:
    """The onsets preroll.py's detector finds in ``signal`` (mono), fed in its 20 ms windows."""
    preroll = example_module("preroll")
    detector = preroll.OnsetDetector(threshold, round(hold * rate))
    window = round(preroll.WINDOW * rate)
    found = (detector.feed(signal[i:i + window, None], i) for i in range(0, len(signal), window))
    return [onset for onset in found if onset is not None]


def test_preroll_onsets_are_sounds_starting_not_a_tone_going_on():
    rate = 48000
    t = np.arange(3 * rate) / rate
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    silence = np.zeros(rate, np.float32)
    lead = int(np.argmax(np.abs(sine) >= 0.1))  # the sine's first sample that reaches the threshold
    assert lead == 4
    assert onsets(sine) == []  # going on from the start: no onset, and none at its zero crossings
    assert onsets(np.concatenate([silence, sine])) == [rate + lead]
    assert onsets(np.concatenate([silence[:12345], -sine])) == [12345 + lead]  # to the frame, anywhere in a window
    # A gap shorter than the hold is the same sound; a longer one ends it.
    short, long = silence[: rate // 4], silence[: rate * 3 // 4]
    assert onsets(np.concatenate([silence, sine, short, sine])) == [rate + lead]
    assert onsets(np.concatenate([silence, sine, long, sine])) == [rate + lead, 4 * rate + len(long) + lead]
    # Hysteresis: a level that hovers between half the threshold and the threshold re-arms nothing.
    hover = np.concatenate([silence, sine, 0.12 * sine / 0.5, sine])
    assert onsets(hover) == [rate + lead]
    # A decaying note is one onset, however it wobbles around the threshold.
    decay = sine * np.exp(-t)[:, None].ravel() * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    assert onsets(np.concatenate([silence, decay.astype(np.float32)])) == [rate + lead]


def test_preroll_takes_nothing_from_a_tone_going_on_from_the_start(tmp_path):
    out = finish(start("preroll.py", "--device", "virtual:sine:440", "--seconds", "3", "--out", str(tmp_path / "t")))
    assert out == "listening to virtual:sine:440\n", out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.audio_server
def test_preroll_take_starts_two_seconds_before_the_burst_to_the_frame(jack_server_factory, tmp_path):
    require_modules("soundfile", "jack")
    import soundfile

    rate = 48000
    # A long period gives this test's Python JACK client slack on a busy 2-core machine.
    server = jack_server_factory(rate, 1024, 1)
    # Starts at its peak, so that its first sample is its onset: the burst's frame is known to the frame.
    burst = (0.5 * np.cos(2 * np.pi * 1000 * np.arange(rate // 2) / rate)).astype(np.float32)
    player = BurstPlayer(server, burst)
    try:
        preroll = start("preroll.py", "--device", "system", "--rate", str(rate), "--seconds", "60",
                        "--out", str(tmp_path / "take"), env=server.env)
        assert read_line(preroll).startswith("listening to system")
        player.connect_to("PortAudio")
        time.sleep(2.5)  # more than the 2 s of pre-roll recorded
        player.play()
        wrote = read_line(preroll, timeout=30)  # once the 3 s after the burst's onset are in the file
        assert wrote.endswith(f"wrote {tmp_path / 'take'}-1.wav\n"), wrote
        out = finish(preroll, interrupt=True)
    finally:
        player.close()
    late = server.late_clients()
    info = soundfile.info(str(tmp_path / "take-1.wav"))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (rate, 1, 5 * rate, "FLOAT"), info
    take = soundfile.read(str(tmp_path / "take-1.wav"), dtype="float32")[0]
    assert not (tmp_path / "take-2.wav").exists(), out
    assert not take[: 2 * rate].any(), f"sound before the burst; JACK clients late: {late}"
    assert take[2 * rate] == burst[0], f"the take does not start 2 s before the burst; JACK clients late: {late}"
    np.testing.assert_array_equal(take[2 * rate:2 * rate + len(burst)], burst, err_msg=f"JACK clients late: {late}")
    assert not take[2 * rate + len(burst):].any()


@pytest.mark.audio_server
def test_preroll_take_of_a_tone_starting_early_starts_at_the_first_frame_and_is_not_repeated(jack_server_factory,
                                                                                              tmp_path):
    require_modules("soundfile", "jack")
    import soundfile

    rate = 48000
    server = jack_server_factory(rate, 1024, 1)
    tone = (0.5 * np.cos(2 * np.pi * 440 * np.arange(8 * rate) / rate)).astype(np.float32)  # onset: its first sample
    player = BurstPlayer(server, tone)
    try:
        preroll = start("preroll.py", "--device", "system", "--rate", str(rate), "--seconds", "60",
                        "--out", str(tmp_path / "take"), env=server.env)
        assert read_line(preroll).startswith("listening to system")
        player.connect_to("PortAudio")
        time.sleep(0.3)  # well inside the 2 s of pre-roll: the recording holds less
        player.play()
        wrote = read_line(preroll, timeout=30)
        time.sleep(4.0)  # the tone goes on: no second take
        out = finish(preroll, interrupt=True)
    finally:
        player.close()
    late = server.late_clients()
    assert wrote.endswith(f"wrote {tmp_path / 'take'}-1.wav\n"), wrote
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take-1.wav"], out
    take = soundfile.read(str(tmp_path / "take-1.wav"), dtype="float32")[0]
    onset = len(take) - 3 * rate  # the take is what was recorded before the onset, and 3 s after it
    assert 0 < onset < 2 * rate, len(take)
    assert re.search(rf": {len(take)} frames from frame \d+: wrote", wrote), wrote
    assert not take[:onset].any(), f"sound before the tone; JACK clients late: {late}"
    np.testing.assert_array_equal(take[onset:], tone[:3 * rate], err_msg=f"JACK clients late: {late}")


# ---- model_frames.py -------------------------------------------------------------------------------------

def model_frames(path: Path, out: str) -> tuple[np.ndarray, np.ndarray]:
    """The frames model_frames.py saved, checked for size and dtype, with its summary; each model's concatenated."""
    saved = np.load(path)
    silero, wakeword = saved["silero"], saved["openwakeword"]
    assert silero.dtype == np.float32 and silero.shape[1:] == (512,)
    assert wakeword.dtype == np.int16 and wakeword.shape[1:] == (1280,)
    assert f"silero: {len(silero)} frames of 512 float32" in out
    assert f"openwakeword: {len(wakeword)} frames of 1280 int16" in out
    silero_samples = silero.reshape(-1) * 32768  # back to the recording's int16 values
    assert np.all(silero_samples == np.round(silero_samples))
    silero_int = silero_samples.astype(np.int16)
    wakeword_int = wakeword.reshape(-1)
    # Both streams start at the recording's first frame and, once the recorder stops, end with the last
    # complete frame: so both are the first R frames of one recording, rounded down to their frame size.
    recorded = max(len(silero_int), len(wakeword_int))
    assert recorded < min(len(silero_int) + 512, len(wakeword_int) + 1280), (len(silero_int), len(wakeword_int))
    common = min(len(silero_int), len(wakeword_int))
    np.testing.assert_array_equal(silero_int[:common], wakeword_int[:common])
    return silero_int, wakeword_int


def test_model_frames_from_the_ramp_are_every_frame_once(tmp_path):
    path = tmp_path / "frames.npz"
    out = finish(start("model_frames.py", "--device", "virtual:ramp", "--seconds", "2", "--save", str(path)))
    silero, wakeword = model_frames(path, out)
    for samples in (silero, wakeword):
        assert len(samples) >= 2 * 16000 - 1280
        np.testing.assert_array_equal(samples.view(np.uint16), np.arange(len(samples)) % 2**16)


@pytest.mark.audio_server
def test_model_frames_from_jack_at_48khz(jack_server_factory, tmp_path):
    require_modules("jack")
    server = jack_server_factory(48000, 256, 1)
    path = tmp_path / "frames.npz"
    with server.inject_tones([1000]):
        out = finish(start("model_frames.py", "--device", "system", "--seconds", "3", "--save", str(path),
                           env=server.env))
    silero, wakeword = model_frames(path, out)
    assert len(wakeword) >= 2.5 * 16000  # (JACK at 48 kHz, converted to 16 kHz)
    last_second = wakeword[-16000:].astype(np.float64)[:, None]
    assert dominant_frequency(last_second, 16000) == pytest.approx([1000], abs=4)
