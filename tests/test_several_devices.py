"""Several devices, one sample-aligned recording (issue #23), with virtual inputs whose clocks drift.

``VirtualInput(speed=1 + e)`` paces its frames e fast: a device whose clock
runs e off, and which knows exactly when its frame 0 was captured. Its sine's
phase is computed from the frame number, so the phase of an aligned channel
tells which of that device's frames each output frame was taken from, to a
thousandth of a frame (a ramp would not: the resampler's gain at DC is
1 - 1.6e-4, which a ramp shows as a drift). Every alignment below is checked
against that truth, window by window. Real servers with real drift (JACK
under libfaketime, PulseAudio) are in tests/test_several_devices_servers.py.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import soundfile

from audioring import AudioRecord, VirtualInput, attach

R = 48000


def frame0_times(rec: AudioRecord) -> list[float]:
    """Each virtual device's true capture time of its frame 0 (steady clock), from its generator."""
    return [lane.source._device.frame0_time for lane in rec._pipeline.lanes]


def record_for(rec: AudioRecord, seconds: float) -> np.ndarray:
    """Record ``seconds`` from a fresh start; return every frame of the recording (float64)."""
    rec.start_recording()
    time.sleep(seconds)
    rec.stop()
    frames = rec.frames_recorded
    assert 0 < frames <= rec.buffer_size
    return np.array(rec.read(frames), dtype=np.float64)


#: The truth signal: slow enough that a phase names a frame unambiguously (one cycle: 960 frames).
TRUTH_HZ = 50.0
WINDOW = 4800  # frames per phase measurement: 5 cycles


def alignment_error(rec: AudioRecord, x: np.ndarray, speeds: list[float], lane: int, column: int,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(window centres, alignment error in frames): where a lane's sine says its frame came from, minus the
    frame its clock captured at the moment the master captured that output frame."""
    t0 = frame0_times(rec)
    master = rec._pipeline.aligner.master
    centres, errors = [], []
    for start in range(0, len(x) - WINDOW + 1, WINDOW):
        k = np.arange(start, start + WINDOW)
        position = (t0[master] + k / (R * speeds[master]) - t0[lane]) * R * speeds[lane]
        theta = 2 * np.pi * TRUTH_HZ / R * position
        # x = A sin(theta + phi): demodulated, the window's mean of x e^{-i theta} is A e^{i phi} / 2i.
        z = np.mean(x[k, column] * np.exp(-1j * theta)) * 2j
        if abs(z) < 0.1:  # silence (before its first frame, after its last)
            continue
        centres.append(start + WINDOW // 2)
        errors.append(np.angle(z) / (2 * np.pi * TRUTH_HZ / R))
    return np.array(centres), np.array(errors)


def sine(speed: float, **kwargs: object) -> VirtualInput:
    return VirtualInput("sine", TRUTH_HZ, speed=speed, **kwargs)


@pytest.mark.parametrize("ppm", [200, -500, 500])
def test_a_drifting_device_is_aligned_to_the_master_frame_by_frame(ppm):
    speeds = [1.0, 1 + ppm * 1e-6]
    seconds = 8
    rec = AudioRecord(2, R, R * (seconds + 2), device=[sine(speeds[0]), sine(speeds[1])])
    with rec:
        x = record_for(rec, seconds)
        stats = rec.device_stats
        _, master_error = alignment_error(rec, x, speeds, lane=0, column=0)
        # Up to what it had delivered when the recording stopped (then: silence, counted).
        centres, error = alignment_error(rec, x[:len(x) - stats[1].frames_silent], speeds, lane=1, column=1)
    locked = centres >= 5 * R
    print(f"\n{ppm:+} ppm: first window's error {error[0]:+.3f} frames, after 5 s max |error| "
          f"{np.abs(error[locked]).max():.4f}, drift measured {stats[1].drift_ppm:+.3f} ppm")
    assert np.abs(master_error).max() < 1e-3  # output frame k is the master's frame k
    assert centres[0] == WINDOW // 2  # it delivered from the first window on
    assert abs(error[0]) < 1.0  # the first frames aligned by their capture times
    assert np.abs(error[locked]).max() < 0.25  # locked: within a quarter of a frame
    # The drift is measured (relative rate: (1 + ppm) / 1), and so is what is left of it in the output.
    assert stats[1].drift_ppm == pytest.approx(ppm, abs=1.0)
    assert stats[1].locked and stats[0].locked and stats[1].stalls == 0 and stats[1].frames_lost == 0
    assert rec.clock_drift == (0.0, stats[1].drift_ppm)


def test_the_residual_drift_is_under_a_ppm_15_seconds_after_the_start():
    speeds = [1.0, 1 + 200e-6]
    rec = AudioRecord(2, R, R * 22, device=[sine(speeds[0]), sine(speeds[1])])
    with rec:
        x = record_for(rec, 20)
        centres, error = alignment_error(rec, x[:len(x) - rec.device_stats[1].frames_silent], speeds, 1, 1)
    late = centres >= 15 * R
    residual = np.polyfit(centres[late] / R, error[late], 1)[0] / R * 1e6
    print(f"\nresidual drift {residual:+.3f} ppm from 15 s on; |error| there at most {np.abs(error[late]).max():.3f}")
    assert abs(residual) < 1.0  # ppm
    assert np.abs(error[late]).max() < 0.25


def test_devices_at_44100_and_48000_hz_combine_and_a_tone_stays_clean():
    speeds = [1.0, 1 + 100e-6]
    seconds = 12
    rec = AudioRecord(2, R, R * (seconds + 2), device=[
        VirtualInput("sine", 1000, rate=48000, speed=speeds[0]),
        VirtualInput("sine", 1000, rate=44100, speed=speeds[1])])
    with rec:
        x = record_for(rec, seconds)
        stats = rec.device_stats
    assert [s.rate for s in stats] == [48000, 44100]
    # Its tone, 1 kHz in its own clock, is 1 kHz x (1 + 100 ppm) in the master's once aligned.
    tone = x[6 * R:len(x) - stats[1].frames_silent - R // 10, 1]
    f = 1000 * speeds[1]
    windows = len(tone) // 4800
    snrs, phases = [], []
    for w in range(windows):
        k = np.arange(w * 4800, (w + 1) * 4800)
        part = tone[k]
        # The tone and its slow phase wander (the steering moves its frequency by tenths of a ppm, which is
        # alignment, not noise): what the model leaves is the resampler's error.
        c, s_ = np.cos(2 * np.pi * f / R * k), np.sin(2 * np.pi * f / R * k)
        u = (k - k.mean()) / 4800
        basis = np.stack([c, s_, u * c, u * s_, u * u * c, u * u * s_], 1)
        coef, *_ = np.linalg.lstsq(basis, part, rcond=None)
        model = basis @ coef
        snrs.append(10 * np.log10((model ** 2).sum() / ((part - model) ** 2).sum()))
        phases.append(np.arctan2(coef[0], coef[1]))
    drift = np.polyfit(np.arange(windows) * 0.1, np.unwrap(phases), 1)[0] / (2 * np.pi * f) * 1e6
    print(f"\n44.1 kHz device at +100 ppm: tone SNR min {min(snrs):.1f} dB, residual drift {drift:+.3f} ppm")
    assert min(snrs) > 100  # the variable-rate path adds no audible error (float32 output)
    assert abs(drift) < 1.0
    assert stats[1].drift_ppm == pytest.approx(100, abs=2.0)


def test_a_device_that_stops_goes_silent_counted_and_the_others_go_on():
    rec = AudioRecord(2, R, R * 6, device=[VirtualInput("ramp"), VirtualInput("ramp", frames=R)])
    with rec:
        x = record_for(rec, 4)
        stats = rec.device_stats
    # The master's frames are all there, in order: nothing waited for the lost device for long.
    assert np.array_equal(x[:, 0], np.arange(len(x)))
    assert len(x) > 3.5 * R
    assert stats[1].frames == R and stats[1].stalls == 1
    # Its channel: its own frames, then silence of exactly the counted length.
    delivered = np.flatnonzero(x[:, 1])
    last = delivered[-1]
    assert np.all(x[last + 1:, 1] == 0)
    assert stats[1].frames_silent == len(x) - (last + 1) + np.flatnonzero(x[:, 1] != 0)[0]
    # It got as far as its last frame (the resampler flushed at the stall: its ramp's end rings, band-limited).
    assert last == pytest.approx(R, abs=R // 100) and x[:, 1].max() == pytest.approx(R, rel=5e-3)


def test_clock_chooses_the_master_and_times_are_the_masters():
    speeds = [1.0, 1 + 300e-6]
    rec = AudioRecord(2, R, R * 8, device=[VirtualInput("ramp", speed=speeds[0]),
                                           VirtualInput("ramp", speed=speeds[1])], clock=1)
    with rec:
        rec.start_recording()
        time.sleep(4)
        drift = rec.clock_drift
        first_time = rec.time_at(rec.first_frame)
        t0 = frame0_times(rec)
        rec.stop()
    # Device 0 runs 300 ppm slow against the master (device 1).
    assert drift[1] == 0.0 and drift[0] == pytest.approx((1 / speeds[1] - 1) * 1e6, abs=1.0)
    # Output frame 0 is the master's frame 0: captured at its generator's frame-0 time.
    assert first_time == pytest.approx(t0[1], abs=1e-3)


def test_an_aligned_recording_streams_shares_and_writes_files(tmp_path):
    name = f"aligned-{time.monotonic_ns()}"
    devices = [(VirtualInput("ramp"), [1]), (VirtualInput("ramp", speed=1.0002), [1, 2])]
    rec = AudioRecord(3, R, R * 4, device=devices, share=name)
    with rec:
        rec.start_recording()
        writer = rec.record_to(tmp_path / "take.wav", frames=R)
        reader = attach(name)
        seen = 0
        for block in rec.stream(4800, timeout=5):
            assert block.shape == (4800, 3)
            seen += 1
            if seen == 10:
                break
        writer.wait(timeout=10)
        latest = reader.read(1000)
        assert latest.shape == (1000, 3) and reader.channels == 3
        reader.close()
        rec.stop()
    data, rate = soundfile.read(tmp_path / "take.wav", dtype="float32")
    assert rate == R and data.shape == (R, 3)
    # The ramps were written (not silence): the master's frames count up by one.
    assert np.all(np.diff(data[:, 0].astype(np.float64) * 2**31) != 0)


def test_restarting_aligns_afresh():
    rec = AudioRecord(2, R, R * 4, device=[VirtualInput("ramp"), VirtualInput("ramp", speed=1 + 200e-6)])
    with rec:
        for _ in range(2):
            x = record_for(rec, 2)
            stats = rec.device_stats
            assert stats[1].stalls == 0 and stats[1].frames_lost == 0
            assert not math.isnan(rec.clock_drift[1])
            assert np.all(np.diff(x[:, 0]) == 1)  # the master's frames, in order, from the new recording


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(channels=2, device=[]), ValueError, "1..16 devices"),
    (dict(channels=3, device=[VirtualInput(), VirtualInput()]), ValueError, "does not split equally"),
    (dict(channels=1, device=[(VirtualInput(), [1, 2]), VirtualInput()]), ValueError, "channels=1"),
    (dict(channels=2, device=[(VirtualInput(), "12"), VirtualInput()]), TypeError, r"device\[0\]"),
    (dict(channels=2, device=[(VirtualInput(), [0]), VirtualInput()]), ValueError, "from 1"),
    (dict(channels=2, device=[VirtualInput(), VirtualInput()], mapping=[1, 2]), ValueError, "mapping= applies to one"),
    (dict(channels=2, device=[VirtualInput(), VirtualInput()], device_rate=44100), ValueError, "device_rate="),
    (dict(channels=2, device=[VirtualInput(), VirtualInput()], clock=2), ValueError, "clock must be 0..1"),
    (dict(channels=2, device=[VirtualInput(), VirtualInput()], clock="0"), TypeError, "clock must be the index"),
    (dict(channels=2, device=VirtualInput(), clock=1), ValueError, "pass device as a list"),
])
def test_bad_device_lists_are_refused_naming_the_argument(kwargs, error, match):
    channels = kwargs.pop("channels")
    with pytest.raises(error, match=match):
        AudioRecord(channels, R, R, **kwargs)
