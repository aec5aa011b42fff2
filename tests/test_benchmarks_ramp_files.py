"""The disk benchmark's judge of recorded files (``benchmarks/harness/ramp_files.py``): every kind of loss counted,
a glitch of the ramp's own source never counted as the recorder's, and the int32/float encodings read back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
PERIOD = 1024


@pytest.fixture()
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the benchmarks run with benchmarks/ on the path
    from harness import ramp, ramp_files

    return ramp, ramp_files


def _clock(ramp, first: int, count: int) -> np.ndarray:
    """Ramp values of clock frames first ... first + count - 1, as the ramp client encodes them."""
    return np.arange(first, first + count, dtype=np.int64) % ramp.UNIT_MODULO + 1


def test_an_intact_ramp_loses_nothing_across_the_wrap(harness):
    ramp, files = harness
    values = np.concatenate([np.zeros(500, np.int64), _clock(ramp, ramp.UNIT_MODULO - 3000, 10 * PERIOD)])
    report = files.ramp_report(values)
    assert report["frames_lost"] == 0 and report["source_glitches"] == 0 and report["repeated_frames"] == 0
    assert report["leading_silence_frames"] == 500 and report["frames_checked"] == 10 * PERIOD


def test_dropped_and_silenced_frames_both_count_as_lost(harness):
    ramp, files = harness
    dropped = np.concatenate([_clock(ramp, 0, 3 * PERIOD), _clock(ramp, 3 * PERIOD + 777, 3 * PERIOD)])
    report = files.ramp_report(dropped)
    assert (report["frames_lost"], report["dropped_frames"], report["silence_inside_frames"]) == (777, 777, 0)
    silenced = _clock(ramp, 0, 6 * PERIOD)
    silenced[2000:2500] = 0  # a writer that marks its gap with silence of the same length
    report = files.ramp_report(silenced)
    assert (report["frames_lost"], report["dropped_frames"], report["silence_inside_frames"]) == (500, 0, 500)


def test_a_source_that_repeats_a_period_is_not_the_recorders_loss(harness):
    ramp, files = harness
    values = _clock(ramp, 10_000, 8 * PERIOD)
    values[3 * PERIOD:4 * PERIOD] = values[2 * PERIOD:3 * PERIOD]  # JACK repeats a late client's last output
    values[6 * PERIOD:6 * PERIOD + 100] = 0  # and the recorder silenced 100 frames of its own
    report = files.ramp_report(values)
    assert report["source_glitches"] == 1 and report["source_glitch_frames"] == PERIOD
    assert report["frames_lost"] == 100 and report["repeated_frames"] == 0


def test_a_source_late_twice_in_a_row_then_a_drop_right_after(harness):
    ramp, files = harness
    values = _clock(ramp, 0, 10 * PERIOD)
    values[3 * PERIOD:4 * PERIOD] = values[2 * PERIOD:3 * PERIOD]
    values[4 * PERIOD:5 * PERIOD] = values[2 * PERIOD:3 * PERIOD]  # the same stale output, once more
    values = np.concatenate([values[:5 * PERIOD], values[5 * PERIOD + 300:]])  # and the recorder drops 300
    report = files.ramp_report(values)
    assert report["source_glitches"] == 1 and report["source_glitch_frames"] == 2 * PERIOD
    assert report["frames_lost"] == report["dropped_frames"] == 300 and report["repeated_frames"] == 0


def test_frames_recorded_twice_are_repeats(harness):
    ramp, files = harness
    values = np.concatenate([_clock(ramp, 0, 4 * PERIOD), _clock(ramp, 3 * PERIOD, 20 * PERIOD)])
    report = files.ramp_report(values)
    assert report["repeated_frames"] == PERIOD and report["frames_lost"] == 0 and report["source_glitches"] == 0


def test_samples_decode_from_int32_and_float(harness):
    ramp, _ = harness
    clock = _clock(ramp, 123_456, 4096)
    unit = clock / 2.0**ramp.UNIT_BITS
    as_float32 = unit.astype(np.float32)
    truncated = np.trunc(unit * 0x7FFFFFFF).astype(np.int32)  # PortAudio's float -> int32, which truncates
    rounded = np.rint(unit * 2.0**31).astype(np.int32)  # libsndfile's, which rounds
    dithered = truncated + np.random.default_rng(1).integers(-2, 3, len(clock)).astype(np.int32)
    for samples in (as_float32, truncated, rounded, dithered):
        assert np.array_equal(ramp.unit_values(samples), clock)
    with pytest.raises(TypeError, match="int16"):
        ramp.unit_values(np.zeros(3, np.int16))


def test_a_recording_in_parts_is_checked_as_one(harness, tmp_path):
    ramp, files = harness
    import soundfile as sf  # the test extra has it
    clock = _clock(ramp, 0, 3 * PERIOD)
    frames = np.repeat(((clock << (31 - ramp.UNIT_BITS)).astype(np.int32))[:, None], 3, axis=1)
    frames[:, 1] = 0  # a channel in between carries anything: only the first and last are read
    parts = [tmp_path / "take.wav", tmp_path / "take.wav.01.wav"]
    sf.write(parts[0], frames[:PERIOD], 192000, subtype="PCM_32")
    sf.write(parts[1], frames[PERIOD + 10:], 192000, subtype="PCM_32")  # 10 frames lost at the boundary
    report = files.check_recording(parts)
    assert report["frames"] == 3 * PERIOD - 10 and report["ramp"]["frames_lost"] == 10
    assert report["last_channel_mismatches"] == 0 and [f["subtype"] for f in report["files"]] == ["PCM_32"] * 2
