"""audioring.testing's drift measurements on synthetic signals of known error: fit_rate and analyze_tone (issue 23)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audioring.testing import analyze_tone, fit_rate

RATE = 48000


def sine(seconds: float, frequency: float = 1000.0, ppm: float = 0.0, delay=0.0, amplitude: float = 0.5,
         noise_db: float = -math.inf, seed: int = 0) -> np.ndarray:
    """A sine `ppm` fast, delayed by `delay` samples (a number or a per-sample array), with white noise
    `noise_db` below the tone's power."""
    n = np.arange(int(seconds * RATE), dtype=np.float64)
    x = amplitude * np.sin(2 * np.pi * frequency * (1 + ppm * 1e-6) * (n - delay) / RATE)
    if math.isfinite(noise_db):
        sigma = amplitude / math.sqrt(2) * 10 ** (noise_db / 20)
        x += np.random.default_rng(seed).normal(0.0, sigma, len(n))
    return x


# ---- fit_rate ------------------------------------------------------------------------------------


def test_fit_rate_of_exact_times_is_exact():
    frames = np.arange(0, RATE * 20, 480, dtype=np.float64)
    times = 1000.0 + frames / (RATE * (1 + 200e-6))
    for method in ("envelope", "least-squares"):
        fit = fit_rate(times, frames, method=method)
        assert fit.ppm(RATE) == pytest.approx(200, abs=1e-6)
        assert fit.t0 == pytest.approx(1000.0, abs=1e-9) and fit.points == len(frames)
        assert fit.span == pytest.approx(times[-1] - times[0])
        assert np.abs(fit.lateness).max() < 1e-9


def test_fit_rate_follows_the_prompt_callbacks_where_least_squares_is_pulled_by_late_ones():
    rng = np.random.default_rng(7)
    frames = np.arange(0, RATE * 10, 480, dtype=np.float64)
    # Every callback late by 0..50 us; a burst of 2..5 ms late ones in the last second.
    late = rng.uniform(0, 50e-6, len(frames))
    late[-100:] += rng.uniform(2e-3, 5e-3, 100)
    times = 5.0 + frames / RATE + late
    envelope, squares = fit_rate(times, frames), fit_rate(times, frames, method="least-squares")
    assert abs(envelope.ppm(RATE)) < 3
    assert abs(squares.ppm(RATE)) > 30  # the burst drags least squares far off
    assert envelope.lateness.min() == pytest.approx(0, abs=1e-12) and envelope.method == "envelope"


@pytest.mark.parametrize(("times", "frames", "message"), [
    ([0.0, 1.0], [0, 480], "at least 3 pairs"),
    ([0.0, 1.0, 2.0], [0, 480], "1-D of one length"),
    ([[0.0, 1.0, 2.0]], [[0, 1, 2]], "1-D of one length"),
    ([0.0, float("nan"), 2.0], [0, 480, 960], "finite"),
    ([0.0, 2.0, 1.0], [0, 480, 960], "non-decreasing"),
    ([1.0, 1.0, 1.0], [0, 480, 960], "span more than 0 s"),
    ([0.0, 1.0, 2.0], [0, 480, 480], "frames must increase"),
])
def test_fit_rate_refuses_bad_pairs(times, frames, message):
    with pytest.raises(ValueError, match=message):
        fit_rate(times, frames)


def test_fit_rate_refuses_an_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of \('envelope', 'least-squares'\)"):
        fit_rate([0, 1, 2], [0, 1, 2], method="median")


# ---- analyze_tone --------------------------------------------------------------------------------


def test_a_tone_3_ppm_fast_over_60_s_is_found_within_0_1_ppm():
    a = analyze_tone(sine(60, ppm=3, noise_db=-90), RATE, 1000)
    assert a.ppm == pytest.approx(3, abs=0.1)
    assert a.frequency == pytest.approx(1000.003, abs=1e-4)
    assert a.wander < 0.01 and a.amplitude == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize("ppm", [-500.0, -200.0, 0.0, 200.0])
def test_the_frequency_error_and_snr_of_a_drifting_tone(ppm):
    a = analyze_tone(sine(20, ppm=ppm, noise_db=-100), RATE, 1000)
    assert a.ppm == pytest.approx(ppm, abs=0.05)
    # Refitted at the measured frequency: the tone's 200 ppm do not count as noise.
    assert a.snr_db == pytest.approx(100, abs=0.5)


def test_a_half_sample_phase_step_is_found_where_it_happens():
    n = int(30 * RATE)
    delay = np.where(np.arange(n) < n // 3, 0.0, 0.5)
    a = analyze_tone(sine(30, delay=delay, noise_db=-110), RATE, 1000)
    assert a.wander_pp == pytest.approx(0.5, abs=0.02)
    # A delay lowers the phase: half a sample, from 10 s on.
    before, after = a.phase[a.times < 9.9], a.phase[a.times > 10.1]
    assert before.mean() - after.mean() == pytest.approx(0.5, abs=0.01)
    assert np.ptp(before) < 0.01 and np.ptp(after) < 0.01
    assert a.wander == pytest.approx(np.abs(a.deviation).max())


def test_phase_differences_give_the_alignment_of_two_channels():
    early, late = analyze_tone(sine(5), RATE, 1000), analyze_tone(sine(5, delay=2.25), RATE, 1000)
    assert np.allclose(early.phase - late.phase, 2.25, atol=1e-6)
    assert len(early.times) == 50 and early.times[0] == pytest.approx((4800 - 1) / 2 / RATE)


def test_phase_wander_of_a_slow_wobble():
    n = np.arange(int(20 * RATE))
    # +-0.8 samples, 10 s period; a cosine over whole periods has no trend for the line to take.
    wobble = 0.8 * np.cos(2 * np.pi * n / (10 * RATE))
    a = analyze_tone(sine(20, delay=wobble), RATE, 1000)
    assert a.wander_pp == pytest.approx(1.6, abs=0.05)
    assert abs(a.ppm) < 1  # two whole periods: no net slope


def test_snr_of_white_noise_at_a_known_level():
    assert analyze_tone(sine(10, noise_db=-60), RATE, 1000).snr_db == pytest.approx(60, abs=0.3)
    assert analyze_tone(sine(10, noise_db=-120), RATE, 1000).snr_db == pytest.approx(120, abs=0.3)


def test_float32_samples_are_measured_as_float32():
    # float32's rounding alone is ~150 dB below a half-scale tone: far beyond the 100 dB target.
    assert analyze_tone(sine(5).astype(np.float32), RATE, 1000).snr_db > 140


@pytest.mark.parametrize(("samples", "rate", "frequency", "window", "message"), [
    (np.zeros((10, 2)), RATE, 1000, 0.1, "one finite channel"),
    (np.array([0.0, np.nan] * 24000), RATE, 1000, 0.1, "one finite channel"),
    (sine(1), 0, 1000, 0.1, "rate must be a positive"),
    (sine(1), RATE, 24000, 0.1, r"frequency must be within \(0, rate / 2\) = \(0, 24000\)"),
    (sine(1), RATE, -5, 0.1, "frequency must be within"),
    (sine(1), RATE, 1000, 0.5, "fit at least 3 times"),
    (sine(1), RATE, 1000, 1e-5, "at least 4 samples"),
    (sine(1), RATE, 1000, float("nan"), "at least 4 samples"),
    (np.zeros(RATE), RATE, 1000, 0.1, "no tone found"),
])
def test_analyze_tone_refuses_bad_input(samples, rate, frequency, window, message):
    with pytest.raises(ValueError, match=message):
        analyze_tone(samples, rate, frequency, window)
