// ClockEstimator: a device's clock, as a straight line time(frame) fitted to
// its blocks' (frame, time) observations.
//
// The fit is least squares with exponential forgetting (time constant
// `memory` seconds): each observation's weight decays as exp(-age / memory),
// so the line follows a clock whose rate wanders (temperature) while
// averaging the scheduling jitter of thousands of callbacks. Counting frames
// over a window would be off by up to a block; a fit over N blocks with
// jitter sigma pins the line's position to about sigma / sqrt(N).
//
// The slope starts at the nominal period, weighted as a Bayesian prior: a
// rate error of about `expected_drift` against observations jittered by about
// `jitter` seconds, until kJitterAfter observations measured the jitter
// (the mean square of how far each landed from the line before it was
// fitted). So the first blocks of a jittery device (a few ms apart, jittered
// by as much) cannot swing the rate, while a steady one is fitted within a
// few blocks.
// The fitted period is held within `max_error` of the nominal one (a device
// off by more is broken or misconfigured).
//
// Capture times come late, never early (a preempted callback, a block the
// host held back), so late observations beyond a few jitters weigh less and
// less (lateness_weight), and the jitter is measured from the early side:
// the line follows the earliest arrivals, as a lower envelope would, while
// still averaging their scatter. An observation far off the line (a stalled
// or restarted device: its frame count no longer matches the time) is not
// fitted; `kResyncAfter` of them in
// a row restart the fit from the newest (resyncs() counts those).
//
// Numerics: the means and co-moments are updated Welford-style around the
// running means, so only differences of nearby frames and times are ever
// squared (absolute frame numbers reach 1e12 in a long recording).
//
// Not thread-safe: one thread (the aligner's) owns it.
#pragma once

#include <cmath>
#include <cstdint>

namespace audioring {

class ClockEstimator {
 public:
  static constexpr int kResyncAfter = 8;
  static constexpr std::uint64_t kJitterAfter = 16;

  explicit ClockEstimator(double nominal_rate, double memory = 30.0, double jitter = 5e-4,
                          double expected_drift = 5e-4, double max_error = 2e-3, double outlier_seconds = 0.25) noexcept
      : nominal_period_(1.0 / nominal_rate),
        memory_(memory),
        prior_scale_(nominal_rate / expected_drift),
        jitter_(jitter),
        max_error_(max_error),
        outlier_(outlier_seconds) {}

  void reset() noexcept {
    weight_ = 0.0;
    observations_ = 0;
    misses_ = 0;
    square_early_ = 0.0;
  }

  // Fits "frame was captured at time"; returns false if it was an outlier.
  bool add(double frame, double time) noexcept {
    double weight = 1.0;
    if (observations_ > 0) {
      const double miss = time - time_at(frame);
      if (std::fabs(miss) > outlier_) {
        if (++misses_ < kResyncAfter) return false;
        ++resyncs_;
        reset();
      } else {
        misses_ = 0;
        const double decay = std::exp(-std::fabs(time - last_time_) / memory_);
        const double early = miss < 0.0 ? miss : 0.0;
        square_early_ = square_early_ * decay + early * early * (1.0 - decay);
        weight = lateness_weight(miss);
      }
    }
    if (observations_ == 0) {
      first_time_ = time;
      mean_frame_ = frame;
      mean_time_ = time;
      cxx_ = 0.0;
      cxy_ = 0.0;
      weight_ = 1.0;
    } else {  // weighted Welford (West's algorithm), with forgetting
      const double decay = std::exp(-(time - last_time_) / memory_);
      const double d = decay < 1.0 ? decay : 1.0;  // a time going backwards forgets nothing
      weight_ = weight_ * d + weight;
      const double dx = frame - mean_frame_;
      const double dy = time - mean_time_;
      mean_frame_ += weight * dx / weight_;
      mean_time_ += weight * dy / weight_;
      cxx_ = cxx_ * d + weight * dx * (frame - mean_frame_);
      cxy_ = cxy_ * d + weight * dx * (time - mean_time_);
    }
    last_time_ = time;
    ++observations_;
    return true;
  }

  bool ready() const noexcept { return observations_ >= 2; }
  std::uint64_t observations() const noexcept { return observations_; }
  std::uint64_t resyncs() const noexcept { return resyncs_; }
  // Seconds since the fit began (the first observation kept).
  double span() const noexcept { return observations_ > 0 ? last_time_ - first_time_ : 0.0; }

  // An observation's weight in the fit: 1, unless it came later than the
  // line by several jitters (a callback preempted, a block held back by the
  // host: capture times are only ever late, never early): then it fades,
  // as 1 / (1 + (miss / 3 jitters)^2).
  double lateness_weight(double miss) const noexcept {
    if (observations_ < kJitterAfter || miss <= 0.0) return 1.0;
    const double scaled = miss / (3.0 * jitter());
    return 1.0 / (1.0 + scaled * scaled);
  }

  // The observations' scatter about the line, in seconds (the assumed jitter until measured), from
  // the early side only: lateness (a preempted callback) is not the clock's noise.
  double jitter() const noexcept {
    if (observations_ < kJitterAfter) return jitter_;
    const double measured = std::sqrt(2.0 * square_early_);  // a symmetric scatter's half below
    return measured < kMinJitter ? kMinJitter : measured;
  }

  // Seconds per frame.
  double period() const noexcept {
    // The data's weight on the slope is cxx / jitter^2, the prior's 1 / (expected_drift x period)^2.
    const double root = jitter() * prior_scale_;
    const double prior = root * root;
    const double fitted = (cxy_ + prior * nominal_period_) / (cxx_ + prior);
    const double low = nominal_period_ * (1.0 - max_error_);
    const double high = nominal_period_ * (1.0 + max_error_);
    return fitted < low ? low : (fitted > high ? high : fitted);
  }
  double time_at(double frame) const noexcept { return mean_time_ + (frame - mean_frame_) * period(); }
  double frame_at(double time) const noexcept { return mean_frame_ + (time - mean_time_) / period(); }
  // The fitted rate's error against the nominal one, in parts per million (+: the clock runs fast).
  double rate_error_ppm() const noexcept { return (nominal_period_ / period() - 1.0) * 1e6; }

 private:
  static constexpr double kMinJitter = 1e-6;  // a clock read has about this much noise anyway

  const double nominal_period_;
  const double memory_;
  const double prior_scale_;  // rate / expected_drift: times the jitter, the prior's sqrt weight (frames)
  const double jitter_;       // assumed until measured
  double square_early_ = 0.0;  // decayed mean square of the early misses (late ones count as 0)
  const double max_error_;
  const double outlier_;
  double weight_ = 0.0;     // sum of the decayed weights
  double mean_frame_ = 0.0;
  double mean_time_ = 0.0;
  double cxx_ = 0.0;        // decayed sum of (frame - mean)^2
  double cxy_ = 0.0;        // decayed sum of (frame - mean) (time - mean)
  double first_time_ = 0.0;
  double last_time_ = 0.0;
  std::uint64_t observations_ = 0;
  std::uint64_t resyncs_ = 0;
  int misses_ = 0;
};

}  // namespace audioring
