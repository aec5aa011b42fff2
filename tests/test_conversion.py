"""Recording at a rate, channel selection and format the device does not deliver (issue #10).

The device fills a capture ring at its own rate; a native converter thread
(libsoxr) turns it into the ring users read. Checked here against real
servers (JACK dummy, PulseAudio) and the virtual input at a fixed native
rate, with python-soxr's one-shot conversion as the reference. No mocks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from audioring import AudioRecord, VirtualInput
from audioring.testing import dominant_frequency
from recording import gil_stall, redo_until_stalled, wait_for_frames

QUALITY_NAMES = {"quick": "QQ", "low": "LQ", "medium": "MQ", "high": "HQ", "very high": "VHQ"}

#: The converter's float -> integer scaling (csrc/audioring/converter.cpp, as the virtual input's).
INT_SCALE = {"int32": 2147483647.0, "int16": 32767.0, "int8": 127.0, "uint8": 127.0}


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` (float, full scale 1) in ``dtype`` as the converter scales it."""
    if dtype == "float32":
        return x.astype(np.float32)
    y = np.rint(np.clip(x.astype(np.float64), -1, 1) * INT_SCALE[dtype] + (128 if dtype == "uint8" else 0))
    return y.astype(dtype)


def jack_input_device() -> int:
    import sounddevice as sd

    for device in sd.query_devices():
        if device["name"] == "system" and "JACK" in sd.query_hostapis(device["hostapi"])["name"]:
            return int(device["index"])
    pytest.fail(f"no JACK device 'system' in:\n{sd.query_devices()}")


def record_whole(rec: AudioRecord, device_frames: int, timeout: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Record until the device delivered ``device_frames``; return (device input, converted recording)."""
    rec.start_recording()
    deadline = time.monotonic() + timeout
    while rec.stats.device_frames < device_frames:
        assert time.monotonic() < deadline, rec.stats
        time.sleep(0.002)
    rec.stop()  # converts what is left and flushes the resampler's tail
    ring, delivered = rec._pipeline.device_ring, rec.stats.device_frames
    assert delivered <= ring.capacity
    device = ring._core.window(ring.frames_written - delivered, delivered).copy()
    converted = rec.read(rec.frames_recorded, copy=True)
    return device, converted


# ---- streamed conversion == one-shot conversion (virtual device at a fixed rate) -------------

RATE_PAIRS = [(48000, 16000), (44100, 16000), (16000, 48000), (48000, 24000)]


@pytest.mark.parametrize("dtype", ["float32", "int32", "int16", "int8", "uint8"])
@pytest.mark.parametrize("channels", [1, 2, 32])
@pytest.mark.parametrize("rates", RATE_PAIRS, ids=[f"{a}-{b}" for a, b in RATE_PAIRS])
def test_streamed_conversion_equals_oneshot(rates, channels, dtype):
    device_rate, rate = rates
    rng = np.random.default_rng(device_rate + rate + channels)
    frames = device_rate // 4 + int(rng.integers(0, 1000))
    blocksize = int(rng.integers(1, 2000))
    out_frames = frames * rate // device_rate + 1000
    source = VirtualInput("noise", amplitude=0.5, realtime=False, frames=frames, rate=device_rate,
                          seed=int(rng.integers(1, 2**32)))
    rec = AudioRecord(channels, rate, out_frames, device=source, dtype=dtype, blocksize=blocksize,
                      headroom=frames)
    try:
        assert rec.converting and rec.device_rate == device_rate
        device, got = record_whole(rec, frames)
        stats = rec.stats
    finally:
        rec.close()
    expected = soxr.resample(device, device_rate, rate, quality="HQ")
    assert stats.device_frames == frames and stats.device_frames_lost == 0
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype == "float32":
        difference = float(np.abs(got - expected).max())
        assert difference <= 1e-6, difference
    else:
        # The same scaling of the same floats: equal, but for a float
        # rounding on a half-LSB boundary.
        steps = np.abs(got.astype(np.int64) - quantize(expected, dtype).astype(np.int64))
        assert steps.max() <= 1 and np.count_nonzero(steps) <= got.size // 10000 + 1


def test_restart_converts_a_new_signal():
    # The second recording is converted as a fresh signal, exactly.
    source = VirtualInput("noise", speed=4, rate=44100)
    rec = AudioRecord(2, 16000, 16000, device=source, mapping=[2, 1], headroom=16000, blocksize=333)
    try:
        first_device, first = record_whole(rec, 12000)
        frames_after_first = rec.frames_recorded
        second_device, second = record_whole(rec, 12000)
    finally:
        rec.close()
    assert frames_after_first == len(first) == round(len(first_device) * 16000 / 44100)
    for device, got in ((first_device, first), (second_device, second)):
        expected = soxr.resample(device[:, [1, 0]], 44100, 16000, quality="HQ")
        assert np.abs(got - expected).max() <= 1e-6


@pytest.mark.parametrize("quality", list(QUALITY_NAMES))
def test_every_quality_matches_its_libsoxr_recipe(quality):
    source = VirtualInput("noise", realtime=False, frames=20000, rate=48000)
    rec = AudioRecord(1, 22050, 10000, device=source, quality=quality, headroom=20000)
    try:
        assert rec.quality == quality
        device, got = record_whole(rec, 20000)
    finally:
        rec.close()
    expected = soxr.resample(device, 48000, 22050, quality=QUALITY_NAMES[quality])
    assert np.abs(got - expected).max() <= 1e-6


# ---- mapping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 48000], ids=["resampled", "same-rate"])
def test_mapping_picks_the_device_inputs_in_the_order_given(rate):
    freqs = [500, 1000, 1500, 2000]
    with AudioRecord(3, rate, rate // 2, device=VirtualInput("sine", freqs, rate=48000), mapping=[3, 1, 4]) as rec:
        assert rec.converting and rec.mapping == [3, 1, 4] and rec.device_channels == 4
        wait_for_frames(rec, rate)
        data = rec.read(rate // 2)
    assert dominant_frequency(data, rate) == pytest.approx([1500, 500, 2000], abs=4)


def test_without_conversion_nothing_changes():
    with AudioRecord(2, 16000, 1600, device=VirtualInput("sine", [440, 880])) as rec:
        assert not rec.converting and rec._converter is None
        assert rec.device_rate == 16000 and rec.mapping == [1, 2] and rec.conversion_delay == 0
        wait_for_frames(rec, 1600)
        assert rec.stats.device_frames == rec.stats.frames


# ---- timestamps ----------------------------------------------------------------------------------


def test_time_at_names_when_the_converted_frame_reached_the_adc():
    # The virtual sine's phase is a function of device time, so the converted
    # sine's phase at a frame tells which device instant the frame is.
    f, device_rate, rate = 1000.0, 48000, 16000
    with AudioRecord(1, rate, rate, device=VirtualInput("sine", f, rate=device_rate)) as rec:
        wait_for_frames(rec, rate)
        first = rec.first_frame
        view = rec.read(rate // 2)
        start = rec.frame_of(view)
        block = view[:, 0].astype(np.float64)
        assert rec.is_intact(view)
        device_adc, device_frame = rec._pipeline.device_capture.anchor()
        assert device_frame == rec._pipeline.device_ring.frames_written - rec.stats.device_frames
        # Device time of output frame `start` per time_at; the sine there.
        t = rec.time_at(start) - device_adc + np.arange(len(block)) / rate
        model = np.column_stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)])
        (a, b), *_ = np.linalg.lstsq(model, block, rcond=None)
        # Phase error of the fit, in output frames: 0 if time_at is exact.
        error_frames = np.arctan2(b, a) / (2 * np.pi * f) * rate
        assert abs(error_frames) < 0.05, error_frames
        assert rec.time_at(first) == pytest.approx(device_adc, abs=0.5 / rate)
        assert rec.time_at(first + rate) - rec.time_at(first) == pytest.approx(1.0, abs=1e-9)


# ---- JACK: real capture at 48 kHz, recorded at 16 kHz ---------------------------------------


def fitted_sine(x: np.ndarray, f: float, rate: int) -> tuple[float, float]:
    """(amplitude, SNR in dB) of ``x`` against the least-squares sine of frequency ``f``."""
    t = np.arange(len(x)) / rate
    model = np.column_stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t), np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(model, x, rcond=None)
    residual = x - model @ coef
    return float(np.hypot(coef[0], coef[1])), float(10 * np.log10(np.mean((model[:, :2] @ coef[:2]) ** 2)
                                                                    / np.mean(residual**2)))


def record_jack_tone(server, f: float, quality: str, seconds: int = 2) -> np.ndarray:
    rate = 16000
    with server.inject_tones([f], amplitude=0.5) as injector:
        rec = AudioRecord(1, rate, 15600, device="system", quality=quality)
        with rec:
            assert rec.converting and rec.device_rate == 48000
            injector.wait_connected(1)
            wait_for_frames(rec, rate // 2)  # the tone is on by now: skip the start
            # (Connecting the injector may flag an xrun; none may fall in what is analysed.)
            overflows = rec.stats.input_overflows
            stream = rec.stream(rate, start=rec.frames_written, timeout=10)
            blocks = [next(stream).copy() for _ in range(seconds)]
            assert rec.stats.input_overflows == overflows
    return np.concatenate(blocks)[:, 0].astype(np.float64)


@pytest.mark.audio_server
def test_jack_48k_recorded_at_16k_keeps_tones_clean_and_removes_what_is_above_nyquist(
    jack_server_factory, record_property
):
    # A long period gives the tone injector (a Python JACK client) slack on a busy machine.
    server = jack_server_factory(48000, 1024, 2)
    for f in (1000, 7000):
        amplitude, snr = fitted_sine(record_jack_tone(server, f, "high"), f, 16000)
        record_property(f"snr_db_{f}hz", round(snr, 1))
        print(f"\n{f} Hz: SNR {snr:.1f} dB, amplitude {amplitude:.5f}")
        assert snr >= 110, snr
        assert amplitude == pytest.approx(0.5, rel=0.01)
    for quality in ("high", "very high"):
        x = record_jack_tone(server, 10000, quality)
        level = 10 * np.log10(np.mean(x**2) / (0.5**2 / 2))
        record_property(f"level_db_10khz_{quality.replace(' ', '_')}", round(level, 1))
        print(f"\n10 kHz ({quality}): {level:.1f} dB")
        assert level <= -120, level


@pytest.mark.audio_server
def test_jack_refuses_a_device_rate_it_does_not_run_at(jack_server_factory):
    server = jack_server_factory(48000, 256, 2)
    with pytest.raises(ValueError, match=r"device_rate=44100: device 'system' does not accept it "
                                         r"\(it accepts 48000 Hz\)"):
        AudioRecord(1, 16000, 1000, device="system", device_rate=44100)
    with pytest.raises(ValueError, match=r"mapping names input 3 but device 'system' has 2 input channels"):
        AudioRecord(2, 16000, 1000, device="system", mapping=[1, 3])
    assert not [p for p in server.ports() if p.startswith("PortAudio")]  # nothing left open
    with AudioRecord(2, 16000, 1000, device="system", mapping=[2, 1]) as rec:  # the valid request works
        wait_for_frames(rec, 1000)
        assert rec.converting


@pytest.mark.audio_server
def test_jack_mapping_records_the_named_inputs(jack_server_factory):
    server = jack_server_factory(48000, 256, 4)
    freqs = [500, 1000, 1500, 2000]
    # The injector feeds tone i into the recorder's i-th port, so all four
    # inputs are opened; the mapping picks 4 and 2.
    with server.inject_tones(freqs) as injector:
        with AudioRecord(2, 16000, 8000, device="system", mapping=[4, 2]) as rec:
            assert rec.device_channels == 4
            injector.wait_connected(4)
            wait_for_frames(rec, 16000)
            data = rec.read(8000)
    assert dominant_frequency(data, 16000) == pytest.approx([2000, 1000], abs=4)


def convert_through_a_gil_stall(rate: int, blocksize: int, stall: float) -> dict:
    """Record JACK's 48 kHz at `rate` while the main thread holds the GIL; a stream() consumer runs alongside."""
    hold_the_gil = gil_stall(stall)
    rec = AudioRecord(2, rate, rate, device="system", headroom=5 * rate)
    starts: list[int] = []
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            for block in rec.stream(blocksize, timeout=stall + 5):
                starts.append(rec.frame_of(block))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failure.append(error)

    with rec:
        assert rec.converting
        consumer = threading.Thread(target=consume)
        consumer.start()
        wait_for_frames(rec, rate // 4)
        held = hold_the_gil()
        time.sleep(0.3)
        adc_time, anchor_frame = rec._capture.anchor()
        clocked = anchor_frame - rec.first_frame + (rec.time - adc_time) * rate
        recorded = rec.frames_recorded
        delay = rec.conversion_delay
        stats = rec.stats
        rec.stop()
        consumer.join(timeout=10)
    return dict(held=held, clocked=clocked, recorded=recorded, delay=delay, stats=stats, starts=starts,
                failure=failure, consumer_alive=consumer.is_alive(), frames=rec.stats.frames)


@pytest.mark.audio_server
def test_gil_stall_during_conversion_loses_nothing(jack_server_factory):
    period, rate, blocksize = 1024, 16000, 160
    jack_server_factory(48000, period, 2)
    run = redo_until_stalled(2.0, lambda aim: convert_through_a_gil_stall(rate, blocksize, aim))
    held, clocked, recorded, delay, stats = (run[k] for k in ("held", "clocked", "recorded", "delay", "stats"))
    assert 2.0 <= held <= 5.0, held
    assert not run["failure"] and not run["consumer_alive"], run["failure"]
    assert stats.input_overflows == 0 and stats.device_frames_lost == 0
    # What the device clocked arrived converted, but for the block in flight
    # and the resampler's latency (which moves with libsoxr's internal blocks,
    # hence the margin: a loss would be the stall's 32,000 frames).
    assert -16 <= clocked - recorded <= period / 3 + max(delay, 0) + 1024, (clocked, recorded, delay)
    assert len(run["starts"]) == run["frames"] // blocksize
    assert np.all(np.diff(run["starts"]) == blocksize)


# ---- PulseAudio: speech at 44.1 kHz recorded at 16 kHz ---------------------------------------


def aligned_correlation(got: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation of ``reference`` with the part of ``got`` it best aligns with, to a tenth of a frame.

    PulseAudio's own resampling to 44.1 kHz shifts the signal by a fraction
    of a frame, which alone would cost high frequencies their correlation.
    """
    n, size = len(reference), 2 * len(got)
    spectrum = np.fft.rfft(got, size) * np.conj(np.fft.rfft(reference, size))
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: len(got) - n]))
    segment = got[lag:lag + n]
    frequencies = np.fft.rfftfreq(2 * n)
    reference_spectrum = np.fft.rfft(reference, 2 * n)
    best = -1.0
    for shift in np.arange(-1, 1.0001, 0.1):
        shifted = np.fft.irfft(reference_spectrum * np.exp(-2j * np.pi * frequencies * shift), 2 * n)[:n]
        best = max(best, float(np.corrcoef(segment[2:-2], shifted[2:-2])[0, 1]))
    return best


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", ["native", "python"])
def test_pulse_speech_through_44k1_converted_to_16k(pulse_server, tmp_path, driver):
    import soundfile

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    wav = tmp_path / "speech.wav"
    subprocess.run([espeak, "-w", str(wav), "The quick brown fox jumps over the lazy dog."], check=True,
                   capture_output=True, timeout=60)
    speech, speech_rate = soundfile.read(wav, dtype="float32")
    played = soxr.resample(speech, speech_rate, pulse_server.rate).astype(np.float32)
    played = np.concatenate([played, np.zeros(pulse_server.rate // 2, np.float32)])  # a pause marks the loop
    seconds = len(played) / pulse_server.rate
    rate = 16000
    rec = AudioRecord(1, rate, int((2 * seconds + 1) * rate), device_rate=44100, driver=driver)
    with pulse_server.play(np.column_stack([played] * pulse_server.channels)), rec:
        assert rec.converting and rec.device_rate == 44100 and rec.driver == driver
        wait_for_frames(rec, int((2 * seconds + 0.5) * rate), timeout=30)
        got = rec.read(int(2 * seconds * rate), copy=True)[:, 0].astype(np.float64)
    reference = soxr.resample(played, pulse_server.rate, rate).astype(np.float64)
    correlation = aligned_correlation(got, reference)
    print(f"\nspeech through 44.1 kHz -> 16 kHz ({driver}): correlation {correlation:.5f}")
    assert correlation >= 0.99


# ---- bad arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"device_rate": 44100}, ValueError, r"device_rate=44100: device 'virtual:sine:1000' accepts only 48000 Hz"),
        ({"device_rate": 0}, ValueError, r"device_rate must be 1\.\.10000000, got 0"),
        ({"device_rate": -16000}, ValueError, r"device_rate must be"),
        ({"device_rate": 10**9}, ValueError, r"device_rate must be"),
        ({"device_rate": 48000.0}, TypeError, r"device_rate must be an integer"),
        ({"device_rate": "48000"}, TypeError, r"device_rate must be an integer"),
        ({"mapping": [1]}, ValueError, r"mapping must name one device channel per recorded channel \(2\)"),
        ({"mapping": [1, 1]}, ValueError, r"mapping must not name a device channel twice"),
        ({"mapping": [0, 1]}, ValueError, r"mapping numbers device channels from 1.*did you mean \[1, 2\]"),
        ({"mapping": [-1, 2]}, ValueError, r"mapping numbers device channels from 1"),
        ({"mapping": [1.0, 2.0]}, TypeError, r"mapping must hold integers"),
        ({"mapping": "12"}, TypeError, r"mapping must be a sequence"),
        ({"mapping": 3}, TypeError, r"mapping must be a sequence"),
        ({"quality": "best"}, ValueError, r"quality must be one of 'quick', 'low', 'medium', 'high', 'very high'"),
        ({"quality": None}, ValueError, r"quality must be one of"),
    ],
)
def test_bad_conversion_arguments_name_themselves(kwargs, error, match):
    before = threading.active_count()
    with pytest.raises(error, match=match):
        AudioRecord(2, 16000, 1000, device=VirtualInput("sine", 1000, rate=48000), **kwargs)
    assert threading.active_count() == before


def test_mapping_beyond_a_virtual_devices_inputs():
    with pytest.raises(ValueError, match=r"mapping names input 3 but device 'virtual:sine:100,200' has 2"):
        AudioRecord(2, 16000, 1000, device=VirtualInput("sine", [100, 200]), mapping=[3, 1])
    with pytest.raises(ValueError, match=r"rate must be 1\.\.10000000, got 0"):
        VirtualInput(rate=0)


def test_sampling_rate_bounds_still_apply():
    with pytest.raises(ValueError, match="sampling_rate must be positive"):
        AudioRecord(1, 0, 1000, device=VirtualInput(rate=48000))
    with pytest.raises(ValueError, match=r"sampling_rate must be 1\.\.10000000"):
        AudioRecord(1, 10**8, 1000, device=VirtualInput(rate=48000))


# ---- lifecycle with conversion on ----------------------------------------------------------------


def test_stop_restart_close_with_conversion():
    rec = AudioRecord(1, 16000, 16000, device=VirtualInput("sine", 440, rate=48000))
    try:
        rec.start_recording()
        wait_for_frames(rec, 1600)
        rec.stop()
        stopped = rec.frames_recorded
        assert rec.stats.device_frames * 16000 // 48000 - stopped in (0, 1, -1)  # the tail was flushed
        rec.start_recording()
        assert rec.frames_recorded < stopped
        wait_for_frames(rec, 3200)
        errors: list[BaseException] = []

        def consume() -> None:
            try:
                for _ in rec.stream(160):
                    pass
            except BaseException as error:  # noqa: BLE001
                errors.append(error)

        consumer = threading.Thread(target=consume)
        consumer.start()
        time.sleep(0.1)
    finally:
        rec.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive()
    assert [type(e).__name__ for e in errors] == ["RecorderClosedError"]


def test_a_starved_converter_reports_the_loss():
    # The device and the converter thread share one CPU (threads inherit the
    # affinity of the thread that starts them), so the converter gets at most
    # about the CPU time the device gets. A free-running noise device spends
    # a few ns per frame; "very high" 96 -> 8 kHz resampling several times
    # that. So while the device delivers all its frames, the converter gets
    # through a fraction of them, and the capture ring (about one second of
    # device frames, a thirtieth of them) is lapped: the loss shows in the
    # stats while frame numbers stay true.
    frames = 3_000_000
    rec = AudioRecord(2, 8000, 8000, device=VirtualInput("noise", realtime=False, frames=frames, rate=96000),
                      headroom=0, quality="very high")
    assert rec._pipeline.device_ring.capacity < frames  # the premise: the device can lap its ring
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        try:
            rec.start_recording()  # starts the converter thread, then the device's
        finally:
            os.sched_setaffinity(0, cpus)  # this thread only: the recorder's threads keep the one CPU
        deadline = time.monotonic() + 60
        while rec.stats.device_frames < frames and time.monotonic() < deadline:
            time.sleep(0.01)
        rec.stop()
        stats = rec.stats
    finally:
        rec.close()
    assert stats.device_frames == frames
    assert stats.conversion_overruns > 0, stats
    assert stats.device_frames_lost > 0 and stats.input_overflows >= stats.conversion_overruns
    assert stats.frames == frames * 8000 // 96000  # lost frames became silence of the right length


# ---- the audio thread never allocates (with conversion on) ----------------------------------------

PROBE = r"""
// Counts malloc-family calls made inside the PortAudio callback: an LD_PRELOADed
// interposer, and a PaStreamCallback wrapper that marks the thread while the
// real callback runs.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdatomic.h>
extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);
static __thread int in_callback __attribute__((tls_model("initial-exec")));
static atomic_long calls, callbacks;
static void count(void) { if (in_callback) atomic_fetch_add(&calls, 1); }
void* malloc(size_t n) { count(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { count(); return __libc_realloc(p, n); }
void free(void* p) { if (p) count(); __libc_free(p); }
void* memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void* aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void** p, size_t a, size_t n) { count(); *p = __libc_memalign(a, n); return *p ? 0 : 12; }
typedef int (*callback_t)(const void*, void*, unsigned long, const void*, unsigned long, void*);
static callback_t real;
void probe_set_callback(callback_t c) { real = c; }
long probe_calls(void) { return atomic_load(&calls); }
void probe_reset(void) { atomic_store(&calls, 0); atomic_store(&callbacks, 0); }
int probe_allocating_callback(const void* in, void* out, unsigned long n, const void* t, unsigned long s, void* u) {
  (void)in; (void)out; (void)n; (void)t; (void)s; (void)u;
  void* volatile p = malloc(16);  /* the positive control: two calls (volatile: not optimized away) */
  free(p);
  return 0;
}
long probe_callbacks(void) { return atomic_load(&callbacks); }
int probe_callback(const void* in, void* out, unsigned long n, const void* t, unsigned long s, void* u) {
  in_callback = 1;
  int r = real(in, out, n, t, s, u);
  in_callback = 0;
  atomic_fetch_add(&callbacks, 1);
  return r;
}
"""

#: The start of a probed child: the probe's positive control, then PortAudio's callbacks routed through it.
PROBE_SETUP = r"""
import ctypes, sys, time
import numpy as np
probe = ctypes.CDLL(None)
from audioring import AudioRecord, VirtualInput, _core
probe.probe_calls.restype = probe.probe_callbacks.restype = ctypes.c_long
# Positive control: the probe sees an allocating callback's two calls.
probe.probe_set_callback(ctypes.cast(probe.probe_allocating_callback, ctypes.c_void_p))
probe.probe_callback(None, None, 0, None, 0, None)
control = probe.probe_calls()
probe.probe_reset()
real = _core.capture_callback_address()
probe.probe_set_callback(ctypes.c_void_p(real))
wrapper = ctypes.cast(probe.probe_callback, ctypes.c_void_p).value
_core.capture_callback_address = lambda: wrapper  # PortAudio now calls through the probe
"""

CHILD = PROBE_SETUP + r"""
with AudioRecord(2, 16000, 16000, device="system", mapping=[2, 1]) as rec:
    assert rec.converting and rec.driver == "native"
    for block in rec.stream(1600, timeout=10):  # a consumer and the converter busy alongside
        np.sqrt(np.abs(block) + 1).sum()
        if rec.frames_recorded >= 32000:
            break
    stats = rec.stats
print(control, probe.probe_callbacks(), probe.probe_calls(), stats.frames, stats.input_overflows)
"""


def run_probed(child: str, server_env: dict, tmp_path: Path) -> list[int]:
    """Run ``child`` (PROBE_SETUP + a recording that prints integers) with the probe preloaded; its integers."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler for the allocation probe")
    (tmp_path / "probe.c").write_text(PROBE)
    library = tmp_path / "probe.so"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "probe.c", "-o", str(library)], cwd=tmp_path, check=True)
    env = {**os.environ, **server_env, "LD_PRELOAD": str(library)}
    out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).parent)
    assert out.returncode == 0, out.stderr
    return [int(field) for field in out.stdout.split()]


@pytest.mark.audio_server
def test_the_audio_thread_never_allocates_with_conversion_on(jack_server_factory, tmp_path):
    server = jack_server_factory(48000, 256, 2)
    control, callbacks, allocations, frames, overflows = run_probed(CHILD, server.env, tmp_path)
    assert control == 2  # the probe counts what it should
    print(f"\n{callbacks} callbacks, {allocations} allocations on the audio thread, {frames} frames converted")
    assert callbacks >= 100 and frames >= 32000
    assert allocations == 0


# ---- the command line ------------------------------------------------------------------------------


@pytest.mark.audio_server
def test_cli_records_16k_from_a_48k_jack_device(jack_server_factory, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    server = jack_server_factory(48000, 256, 2)
    out = tmp_path / "out.wav"
    argv = [sys.executable, "-m", "audioring", "record", str(out), "-d", "system", "-r", "16000", "-c", "1",
            "--seconds", "2"]
    result = subprocess.run(argv, env={**os.environ, **server.env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.count("device runs at 48000 Hz; converting to 16000 Hz (quality high)") == 1, result.stderr
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 32000)


@pytest.mark.audio_server
def test_cli_mapping_and_devices_list_the_rates(jack_server_factory, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    server = jack_server_factory(48000, 256, 4)
    env = {**os.environ, **server.env}
    listing = subprocess.run([sys.executable, "-m", "audioring", "devices"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    system = [i for i, line in enumerate(lines) if " system " in line]
    assert system and lines[system[0] + 1].split() == ["accepts:", "48000", "Hz"], listing.stdout  # JACK's one rate
    out = tmp_path / "pair.wav"
    argv = [sys.executable, "-m", "audioring", "record", str(out), "-d", "system", "--mapping", "4,2",
            "--seconds", "0.5", "--quality", "very high"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converting" not in result.stderr  # same rate: only the channels are picked
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 24000)
    bad = subprocess.run([*argv[:-2], "--mapping", "0,1"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--mapping" in bad.stderr and "from 1" in bad.stderr


def test_cli_doctor_reports_libsoxr():
    result = subprocess.run([sys.executable, "-m", "audioring", "doctor"], capture_output=True, text=True,
                            timeout=60)
    assert "libsoxr: 0." in result.stdout, result.stdout


DEVICE_LOSS_CHILD = r"""
import sys, time
from audioring import AudioRecord
rec = AudioRecord(1, 16000, 16000, device="system")
rec.start_recording()
while rec.frames_recorded < 8000:
    time.sleep(0.01)
assert rec.converting
print("ready", flush=True)
sys.stdin.readline()  # the parent kills jackd meanwhile
time.sleep(1.0)
started = time.monotonic()
rec.stop()
print("stopped", round(time.monotonic() - started, 1), rec.frames_recorded > 8000, flush=True)
try:
    rec.start_recording()
except Exception as error:
    print("restart refused:", type(error).__name__, flush=True)
rec.close()
print("closed", flush=True)
"""


@pytest.mark.audio_server
def test_jackd_dying_while_converting_is_survived():
    import signal

    from audioring.testing import JackServer

    # A server of the child's alone: PortAudio in this process must never
    # connect to a jackd that dies (its Pa_Terminate would abort at exit).
    server = JackServer(48000, 256, 2)
    try:
        server.start()
    except Exception as error:  # noqa: BLE001 - a skip, which fails the run under CI (tests/conftest.py)
        server.stop()
        pytest.skip(f"jackd could not start: {error}")
    child = subprocess.Popen([sys.executable, "-c", DEVICE_LOSS_CHILD], env={**os.environ, **server.env},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        os.kill(server.pid, signal.SIGTERM)
        child.stdin.write("\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        server.stop()  # reaps the dead jackd
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("stopped") and lines[0].endswith("True"), out
    assert float(lines[0].split()[1]) < 5, out
    assert lines[1] == "restart refused: PortAudioError" and lines[2] == "closed", out
