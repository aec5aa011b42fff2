#include "audioring/drift_resampler.hpp"

#include <soxr.h>

#include <stdexcept>
#include <string>

namespace audioring {
namespace {

// The widest io ratio a DriftResampler is created for: far past any clock's
// drift (ClockEstimator holds rates within 0.2 % of nominal).
constexpr double kMaxRatio = 1.05;

soxr* make_vr(unsigned channels) {
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  // SOXR_VR ignores the recipe's precision (its engine is fixed); measured:
  // a 1 kHz tone at 48 kHz through it at 1 +- 200 ppm keeps 121 dB SNR.
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, SOXR_VR);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  soxr_error_t error = nullptr;
  soxr* resampler = soxr_create(kMaxRatio, 1.0, channels, &error, &io, &quality, &runtime);
  if (error != nullptr || resampler == nullptr) {
    if (resampler != nullptr) soxr_delete(resampler);
    throw std::runtime_error(std::string("libsoxr refused a variable-rate resampler: ") +
                             (error != nullptr ? error : "no memory"));
  }
  soxr_set_io_ratio(resampler, 1.0, 0);
  return resampler;
}

double measure_filter_delay() {
  soxr* resampler = make_vr(1);
  constexpr std::size_t kFrames = 8192;
  constexpr float kStep = 1e-3f;  // small values: float keeps ~1e-4 frames of precision
  std::vector<float> ramp(kFrames);
  for (std::size_t i = 0; i < kFrames; ++i) ramp[i] = static_cast<float>(i) * kStep;
  std::vector<float> out(kFrames);
  std::size_t taken = 0;
  std::size_t made = 0;
  soxr_process(resampler, ramp.data(), kFrames, &taken, out.data(), kFrames, &made);
  soxr_delete(resampler);
  // Output frame k is gain x ramp(k - delay): the filter's gain at DC is
  // not exactly 1 (1 - 1.6e-4 measured), so fit the line a + b k over the
  // middle, away from both ends' transients: delay = -a / b.
  if (made < kFrames / 2) throw std::runtime_error("libsoxr's variable-rate resampler gave too little output");
  double n = 0.0, sk = 0.0, sv = 0.0, skk = 0.0, skv = 0.0;
  for (std::size_t k = made / 4; k < made * 3 / 4; ++k) {
    const double x = static_cast<double>(k);
    const double v = static_cast<double>(out[k]) / kStep;
    n += 1.0;
    sk += x;
    sv += v;
    skk += x * x;
    skv += x * v;
  }
  const double b = (n * skv - sk * sv) / (n * skk - sk * sk);
  const double a = (sv - b * sk) / n;
  return -a / b;
}

}  // namespace

double DriftResampler::filter_delay() {
  static const double delay = measure_filter_delay();  // thread-safe once
  return delay;
}

DriftResampler::DriftResampler(int channels, std::size_t max_input_frames)
    : channels_(static_cast<std::size_t>(channels)) {
  if (channels < 1) throw std::invalid_argument("a DriftResampler needs at least one channel");
  delay_ = filter_delay();  // measured now (it may throw), never on the aligner's thread
  resampler_ = make_vr(static_cast<unsigned>(channels));
  out_.resize((max_input_frames * 2 + 64) * channels_);
}

DriftResampler::~DriftResampler() {
  if (resampler_ != nullptr) soxr_delete(resampler_);
}

void DriftResampler::restart(double first_input, double io_ratio) noexcept {
  soxr_clear(resampler_);
  ratio_ = io_ratio;
  soxr_set_io_ratio(resampler_, ratio_, 0);
  next_position_ = first_input - delay_;
  fed_ = 0.0;
}

void DriftResampler::set_ratio(double io_ratio) noexcept {
  ratio_ = io_ratio;
  soxr_set_io_ratio(resampler_, io_ratio, 0);
}

std::size_t DriftResampler::run(const float* frames, std::size_t count, std::size_t* taken) noexcept {
  std::size_t made = 0;
  const std::size_t room = out_.size() / channels_;
  if (soxr_process(resampler_, frames, count, taken, out_.data(), room, &made) != nullptr) {
    *taken = count;  // libsoxr only fails on bad arguments, which the constructor excluded
    return 0;
  }
  next_position_ += static_cast<double>(made) * ratio_;
  return made;
}

}  // namespace audioring
