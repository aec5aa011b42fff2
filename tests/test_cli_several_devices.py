"""The command line with several devices (issue #23): repeated ``--device`` (each ``NAME@inputs``),
``--clock``, the summary's device lines, and ``audioring devices --drift A B``.

Virtual inputs stand in for the devices (real servers with real drift: tests/test_several_devices_servers.py).
"""

from __future__ import annotations

import re

import numpy as np
import soundfile as sf

from test_cli import no_device_env, run_cli, summary, usage_error  # noqa: F401 - no_device_env is a fixture


def test_record_writes_several_devices_side_by_side_and_says_how_each_went(tmp_path, no_device_env):  # noqa: F811
    out = tmp_path / "take.wav"
    result = run_cli("record", str(out), "--seconds", "3", "-d", "virtual:sine:440@1,2", "-d", "virtual:sine:1000@1",
                     env=no_device_env)
    assert result.returncode == 0, result.stderr
    data, rate = sf.read(out, dtype="float32")
    assert rate == 48000 and data.shape == (3 * 48000, 3)
    fields = summary(result.stdout)
    assert fields["input"] == "virtual:sine:440 + virtual:sine:1000"
    assert fields["device 1"] == "'virtual:sine:440' (2 ch at 48000 Hz): the clock master"
    line = fields["device 2"]
    assert re.fullmatch(r"'virtual:sine:1000' \(1 ch at 48000 Hz\): clock [+-]\d+\.\d\d ppm against device 1, "
                        r"(locked|not locked); \d+ frames silent, 0 stalls, 0 frames lost", line), line
    # Each device's tone on its own channels.
    spectrum = np.abs(np.fft.rfft(data[48000:96000], axis=0))
    assert list(np.argmax(spectrum, axis=0)) == [440, 440, 1000]


def test_clock_chooses_the_master(tmp_path, no_device_env):  # noqa: F811
    result = run_cli("record", str(tmp_path / "t.wav"), "--seconds", "1", "-d", "virtual:sine:440@1",
                     "-d", "virtual:sine:1000@1", "--clock", "2", env=no_device_env)
    assert result.returncode == 0, result.stderr
    fields = summary(result.stdout)
    assert fields["device 2"].endswith("the clock master")
    assert "against device 2" in fields["device 1"]


def test_drift_measures_one_clock_against_another(no_device_env):  # noqa: F811
    result = run_cli("devices", "--drift", "virtual:sine:440", "virtual:sine:1000", "--seconds", "3",
                     env=no_device_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4  # a line a second, then the result
    match = re.fullmatch(r"drift: 'virtual:sine:1000' runs ([+-]\d+\.\d\d) ppm against 'virtual:sine:440' "
                         r"\((locked|not locked yet: measure longer)\)", lines[-1])
    assert match, lines[-1]
    assert abs(float(match.group(1))) < 20  # one clock: no drift beyond the measurement's noise over 3 s


def test_bad_device_lists_are_argument_errors(tmp_path, no_device_env):  # noqa: F811
    out = str(tmp_path / "t.wav")
    two = ["-d", "virtual@1", "-d", "virtual@1"]
    cases = [
        ([*two, "--mapping", "1,2"], "argument --mapping: not with several --device"),
        ([*two, "--device-rate", "44100"], "argument --device-rate: not with several --device"),
        ([*two, "--clock", "3"], "argument --clock: must be in 1..2"),
        (["-d", "virtual@x", "-d", "virtual"], "argument --device: 'virtual@x': after @ the device's inputs"),
        (["-d", "virtual", "-d", "no-such-device-anywhere"], "argument --device:"),
        ([*two, "-c", "3"], "channels=3"),
    ]
    for extra, message in cases:
        result = run_cli("record", out, "--seconds", "1", *extra, env=no_device_env)
        assert usage_error(result, "record").startswith(message), (extra, result.stderr)
