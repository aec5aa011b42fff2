"""AudioRecord driven by the built-in VirtualInput: the API, without any audio server."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

import audioring
from audioring import AudioRecord, OverrunError, RecorderClosedError, VirtualInput
from recording import RAMP_MODULUS, assert_consecutive, ramp_counter, wait_for_frames, wait_until_waiting_in_stream

RATE = 48000

def dominant_frequency(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * rate / len(signal))


@pytest.fixture
def sine_record():
    rec = AudioRecord(2, RATE, RATE, device=VirtualInput("sine", [1000, 3000]))
    yield rec
    rec.close()


# ---- the reference's behaviour ---------------------------------------------------------------


@pytest.mark.parametrize("argument", ["channels", "sampling_rate", "buffer_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_constructor_arguments_raise_value_error(argument, value):
    args = {"channels": 1, "sampling_rate": RATE, "buffer_size": 1000}
    args[argument] = value
    with pytest.raises(ValueError, match=argument):
        AudioRecord(**args, device=VirtualInput())


def test_read_rejects_sizes_like_the_reference(sine_record):
    with pytest.raises(ValueError, match="Cannot read more samples than the size of the buffer."):
        sine_record.read(RATE + 1)
    with pytest.raises(ValueError, match="Size must be positive."):
        sine_record.read(0)
    with pytest.raises(ValueError, match="Size must be positive."):
        sine_record.read(-5)
    with pytest.raises(TypeError, match="size"):
        sine_record.read(1.5)
    assert sine_record.read(10).shape == (10, 2)  # still usable


def test_properties(sine_record):
    assert (sine_record.channels, sine_record.sampling_rate, sine_record.buffer_size) == (2, RATE, RATE)
    assert sine_record.dtype == np.float32
    assert sine_record.device == "virtual:sine:1000,3000"
    assert sine_record.driver == "virtual"
    assert sine_record.latency > 0
    assert sine_record.headroom >= RATE  # default: one second


def test_read_before_recording_is_zeros(sine_record):
    data = sine_record.read(RATE)
    assert data.shape == (RATE, 2) and not data.any()


def test_records_the_signal_on_each_channel(sine_record):
    sine_record.start_recording()
    wait_for_frames(sine_record, RATE // 2, timeout=5.0)
    data = sine_record.read(RATE // 2)
    assert dominant_frequency(data[:, 0], RATE) == pytest.approx(1000, abs=4)
    assert dominant_frequency(data[:, 1], RATE) == pytest.approx(3000, abs=4)


def test_restart_starts_from_zeros_and_old_views_are_not_intact(sine_record):
    sine_record.start_recording()
    wait_for_frames(sine_record, RATE // 4, timeout=5.0)
    sine_record.stop()
    old = sine_record.read(RATE)
    assert sine_record.is_intact(old) and old.any()
    sine_record.start_recording()
    assert not sine_record.is_intact(old)
    sine_record.stop()
    fresh = sine_record.read(RATE)
    assert not fresh[: RATE - sine_record.frames_recorded].any()


# ---- zero-copy reads -----------------------------------------------------------------------


def test_read_is_zero_copy_and_read_only():
    # A finite source, so both reads see the same frames at fixed places.
    with AudioRecord(2, RATE, RATE, device=VirtualInput("ramp", realtime=False, frames=1000)) as rec:
        wait_for_frames(rec, 1000, timeout=5.0)
        a = rec.read(100)
        b = rec.read(50)
        assert np.shares_memory(a, b) and np.shares_memory(a[50:], b)
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0, 0] = 1.0
        copied = rec.read(100, copy=True)
        assert copied.flags.writeable and not np.shares_memory(copied, a)
        np.testing.assert_array_equal(copied, a)


@pytest.mark.parametrize("channels", [256, 1024])
def test_the_virtual_input_takes_as_many_channels_as_memory_holds(channels):
    # Every frame on every channel: a free-running ramp, all of it in the ring.
    frames = 4800
    with AudioRecord(channels, RATE, frames, dtype="int32",
                     device=VirtualInput("ramp", realtime=False, frames=frames)) as rec:
        wait_for_frames(rec, frames, timeout=10.0)
        block = rec.read(frames)
        assert block.shape == (frames, channels)
        assert (block == block[:, :1]).all(), "a channel differs from the first"
        assert_consecutive(ramp_counter(block), RAMP_MODULUS["int32"], 0)
    # A sine per channel: each channel its own frequency (10 Hz apart: the FFT's resolution over 0.1 s is 10 Hz).
    hz = [100.0 + 10 * (k % 2000) for k in range(channels)]
    with AudioRecord(channels, RATE, frames, device=VirtualInput("sine", hz, realtime=False, frames=frames)) as rec:
        wait_for_frames(rec, frames, timeout=10.0)
        data = rec.read(frames)
        spectrum = np.abs(np.fft.rfft(data * np.hanning(frames)[:, None], axis=0))
        np.testing.assert_allclose(np.argmax(spectrum, axis=0) * RATE / frames, hz, atol=10)
    # Past the memory, refused before anything is allocated, naming the sizes.
    with pytest.raises(MemoryError, match=f"channels={channels} x 4 bytes does not fit in memory"):
        AudioRecord(channels, RATE, 2**40, dtype="int32", device=VirtualInput("ramp"))


def test_views_outlive_the_recorder():
    rec = AudioRecord(1, RATE, 4800, device=VirtualInput("ramp", realtime=False, frames=4800))
    rec.start_recording()
    wait_for_frames(rec, 4800, timeout=5.0)
    view = rec.read(4800)
    expected = view.copy()
    del rec
    gc.collect()
    np.testing.assert_array_equal(view, expected)


def test_frame_of_and_time_at(sine_record):
    sine_record.start_recording()
    wait_for_frames(sine_record, RATE // 4, timeout=5.0)
    view = sine_record.read(1000)
    first = sine_record.frame_of(view)
    assert first == sine_record.frames_written - 1000
    assert sine_record.time_at(first + RATE) - sine_record.time_at(first) == pytest.approx(1.0)
    # The virtual device reports its steady clock: the newest frame is recent.
    newest = sine_record.time_at(sine_record.frames_written)
    assert abs(newest - time.monotonic()) < 0.5
    assert abs(newest - sine_record.time) < 0.5


def test_time_at_before_any_audio_raises(sine_record):
    with pytest.raises(RuntimeError, match="no audio"):
        sine_record.time_at(0)


def test_stats_count_blocks(sine_record):
    sine_record.start_recording()
    wait_for_frames(sine_record, 2560, timeout=5.0)
    stats = sine_record.stats
    assert stats.min_block == stats.max_block == 256
    assert stats.frames == stats.callbacks * 256 >= 2560
    assert stats.input_overflows == stats.input_underflows == sine_record.overflows == 0


# ---- lossless streaming ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(RAMP_MODULUS))
def test_stream_delivers_every_frame_once_in_order(dtype):
    total = 200_000
    rec = AudioRecord(1, RATE, 4096, dtype=dtype, device=VirtualInput("ramp", speed=20), blocksize=512)
    blocks = 0
    with rec:
        expected = None
        for _, block in zip(range(total // 1000), rec.stream(1000, timeout=2)):
            expected = assert_consecutive(ramp_counter(block), RAMP_MODULUS[dtype], expected)
            blocks += 1
    assert blocks == total // 1000  # the stream did not end early


def test_free_running_ramp_of_ten_million_frames_streams_losslessly():
    total = 10_000_000
    # Free-running, the producer outruns any Python consumer; the ring holds the
    # whole run so the consumer lags but must still get every frame once, in order.
    rec = AudioRecord(
        1, RATE, 65536, dtype="int32", headroom=total, device=VirtualInput("ramp", realtime=False, frames=total)
    )
    with rec:
        expected, seen = 0, 0
        for block in rec.stream(65536 // 2 + 1, timeout=5):  # odd size: blocks straddle the producer's
            expected = assert_consecutive(ramp_counter(block), 2**32, expected)
            seen += len(block)
            if seen + 32769 > total:
                break
    assert seen > total - 32769 and rec.stats.frames == total


def test_paced_ramp_streams_losslessly_through_a_ring_of_the_default_size():
    # The test above cannot overrun (its ring holds the whole run). Here the ring is what a user
    # gets by default, 1 s of buffer plus 1 s of headroom, and the input runs at ten times real
    # time: the consumer must keep up, never falling 0.2 s of wall time behind, for 50 s of audio.
    speed, total, block = 10, 50 * RATE, RATE // 10
    rec = AudioRecord(1, RATE, RATE, dtype="int32", device=VirtualInput("ramp", speed=speed, frames=total))
    assert RATE <= rec.headroom < 2 * RATE  # the default: one second (rounded up to whole pages)
    with rec:
        expected, seen = 0, 0
        for block_frames in rec.stream(block, timeout=5):  # any OverrunError fails the test
            expected = assert_consecutive(ramp_counter(block_frames), 2**32, expected)
            seen += len(block_frames)
            if seen == total:
                break
    assert seen == total == rec.stats.frames


def test_stream_overlapping_windows():
    rec = AudioRecord(1, RATE, 4096, dtype="int32", device=VirtualInput("ramp", speed=20))
    with rec:
        blocks = [ramp_counter(b) for _, b in zip(range(20), rec.stream(1000, hop=250, timeout=2))]
    assert len(blocks) == 20  # the stream did not end early
    for previous, block in zip(blocks, blocks[1:]):
        np.testing.assert_array_equal(block[:750], previous[250:])
    assert_consecutive(np.concatenate([b[:250] for b in blocks]), 2**32)


def test_overrun_reports_exact_frames_lost_and_stream_continues():
    rec = AudioRecord(1, RATE, 4096, dtype="int32", headroom=0, device=VirtualInput("ramp", speed=10))
    with rec:
        stream = rec.stream(1024, timeout=2)
        first = next(stream)
        last_good = int(ramp_counter(first)[-1])
        time.sleep(0.2)  # ~96,000 frames at 10x: far more than the ring's capacity
        with pytest.raises(OverrunError) as info:
            next(stream)
        # The previous block was overwritten while "in use": its frames count as lost.
        lost = info.value.frames_lost
        assert info.value.position == stream.position
        resumed = next(stream)
        assert int(ramp_counter(resumed)[0]) == (last_good + 1 - 1024 + lost) % 2**32
        following = next(stream)
        assert_consecutive(np.concatenate([ramp_counter(resumed), ramp_counter(following)]), 2**32)


def test_stream_times_out_when_no_audio_arrives():
    rec = AudioRecord(1, RATE, 4096, device=VirtualInput("ramp", realtime=False, frames=1500))
    with rec:
        stream = rec.stream(1000, timeout=0.2)
        next(stream)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no audio"):
            next(stream)
        assert 0.15 < time.monotonic() - started < 2


def test_stop_ends_the_stream_and_close_wakes_a_waiting_stream():
    rec = AudioRecord(1, RATE, RATE * 10, device=VirtualInput("sine", 440))
    rec.start_recording()
    stream = rec.stream(RATE * 10)  # far more than will arrive: the consumer waits
    outcome = {}

    def consume():
        try:
            next(stream)
        except BaseException as error:  # noqa: BLE001 - recorded for the assertion
            outcome["error"] = error

    waiter = threading.Thread(target=consume)
    waiter.start()
    wait_until_waiting_in_stream([waiter])
    rec.close()
    waiter.join(timeout=2)
    assert not waiter.is_alive()
    assert isinstance(outcome["error"], RecorderClosedError)

    rec2 = AudioRecord(1, RATE, RATE * 10, device=VirtualInput("sine", 440))
    rec2.start_recording()
    stream2 = rec2.stream(RATE * 10)
    threading.Timer(0.1, rec2.stop).start()
    assert list(stream2) == []
    rec2.close()


def test_stream_requires_recording(sine_record):
    with pytest.raises(RuntimeError, match="start_recording"):
        sine_record.stream(100)


# ---- lifecycle and bad input -------------------------------------------------------------------


def test_context_manager_records_and_closes():
    with AudioRecord(1, RATE, 1000, device=VirtualInput()) as rec:
        assert rec.recording
    assert rec.closed and not rec.recording


def test_methods_on_a_closed_recorder_raise(sine_record):
    sine_record.close()
    sine_record.close()  # harmless
    for call in (sine_record.start_recording, sine_record.stop, lambda: sine_record.read(10),
                 lambda: sine_record.stream(10)):
        with pytest.raises(RecorderClosedError, match="closed"):
            call()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dtype": "float64"}, TypeError, "dtype"),
        ({"dtype": "int24"}, TypeError, "dtype"),
        ({"blocksize": -1}, ValueError, "blocksize"),
        ({"blocksize": 1.5}, TypeError, "blocksize"),
        ({"latency": -0.1}, ValueError, "latency"),
        ({"latency": "medium"}, ValueError, "latency"),
        ({"headroom": -1}, ValueError, "headroom"),
        ({"driver": "rust"}, ValueError, "driver"),
        ({"device": 1.5}, TypeError, "device"),
        ({"device": True}, TypeError, "device"),
        ({"channels": 1.0}, TypeError, "channels"),
        ({"sampling_rate": "48000"}, TypeError, "sampling_rate"),
        ({"buffer_size": None}, TypeError, "buffer_size"),
    ],
)
def test_bad_arguments_raise_specific_errors(kwargs, error, match):
    args = {"channels": 1, "sampling_rate": RATE, "buffer_size": 1000, "device": VirtualInput()}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        AudioRecord(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"signal": "square"}, "signal"),
        ({"frequency": 0}, "frequency"),
        ({"frequency": []}, "frequency"),
        ({"amplitude": 2}, "amplitude"),
        ({"speed": 0}, "speed"),
        ({"frames": -1}, "frames"),
    ],
)
def test_virtual_input_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VirtualInput(**kwargs)


def test_virtual_input_frequency_must_fit_the_recorder():
    with pytest.raises(ValueError, match="half the sampling rate"):
        AudioRecord(1, 8000, 100, device=VirtualInput("sine", 5000))
    with pytest.raises(ValueError, match="3 frequencies"):
        AudioRecord(2, 8000, 100, device=VirtualInput("sine", [100, 200, 300]))


def test_public_names():
    assert set(audioring.__all__) >= {"AudioRecord", "VirtualInput", "Ring", "OverrunError", "RecorderClosedError"}

