// Tests of the aligner's parts and of the Aligner thread itself (run under
// TSan and ASan/UBSan too, tests/test_native.py):
// - ClockEstimator on synthetic observations: rate and position from jittered
//   blocks, outliers ignored, a restarted clock refitted;
// - BlockTimes: in order, and a lapped consumer skips (counted) instead of
//   reading torn entries;
// - FrameFifo: order, room, silence;
// - DriftResampler: a tone through a changing ratio lands where the tracked
//   position says;
// - Aligner: two virtual devices 300 ppm apart, paced in real time, aligned
//   onto the master's timebase within a fraction of a frame once locked (each device's
//   50 Hz sine names, by its phase, the frame each output frame came from);
//   a device that stops is silenced and counted while the master goes on.
// The alignment's precision needs real time: the devices are paced by the
// clock. Under emulation (qemu runs them 10-30x slower; AUDIORING_EMULATED
// set), those two checks are left out and everything else is checked.
#include "check.hpp"

#include <chrono>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "audioring/aligner.hpp"
#include "audioring/block_times.hpp"
#include "audioring/capture.hpp"
#include "audioring/clock_estimator.hpp"
#include "audioring/drift_resampler.hpp"
#include "audioring/frame_fifo.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/virtual_input.hpp"

namespace {

using namespace audioring;
using Frame = FrameRing::Frame;

constexpr double kPi = 3.14159265358979323846;
std::mt19937_64 rng;  // seeded in main()

void clock_estimator_fits_a_jittered_clock() {
  const double rate = 48000.0;
  const double true_period = 1.0 / (rate * (1 + 250e-6));  // 250 ppm fast
  ClockEstimator clock(rate);
  std::normal_distribution<double> jitter(0.0, 200e-6);
  std::uniform_int_distribution<int> block(64, 1024);
  double frame = 0.0;
  for (int i = 0; i < 6000; ++i) {  // about 60 s of blocks
    CHECK(clock.add(frame, 1000.0 + frame * true_period + jitter(rng)));
    frame += block(rng);
  }
  CHECK(std::fabs(clock.rate_error_ppm() - 250.0) < 2.0);
  CHECK(std::fabs(clock.time_at(frame) - (1000.0 + frame * true_period)) < 30e-6);
  CHECK(std::fabs(clock.jitter() - 200e-6) < 40e-6);  // measured, not the assumed 0.5 ms
  // An outlier (a late block) is not fitted; a clock restarted far away is refitted after a few.
  CHECK(!clock.add(frame, 1000.0 + frame * true_period + 1.0));
  CHECK(clock.resyncs() == 0);
  for (int i = 0; i < ClockEstimator::kResyncAfter + 4; ++i) {
    clock.add(frame, 5000.0 + frame * true_period);
    frame += 480;
  }
  CHECK(clock.resyncs() == 1);
  CHECK(std::fabs(clock.time_at(frame) - (5000.0 + frame * true_period)) < 1e-3);
}

void block_times_hand_over_in_order_and_skip_when_lapped() {
  BlockTimes times;
  for (std::int64_t i = 0; i < 10; ++i) times.push(i * 100, static_cast<double>(i));
  std::vector<BlockTime> seen;
  times.drain([&](const BlockTime& b) { seen.push_back(b); });
  CHECK(seen.size() == 10 && seen[3].frame == 300.0 && seen[9].time == 9.0);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(BlockTimes::kSlots) * 3; ++i) times.push(i, 0.0);
  seen.clear();
  times.drain([&](const BlockTime& b) { seen.push_back(b); });
  CHECK(times.skipped() > 0);
  CHECK(seen.size() + times.skipped() == BlockTimes::kSlots * 3);
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].frame == seen[i - 1].frame + 1);
}

void frame_fifo_keeps_order_and_room() {
  FrameFifo fifo(2, 100);
  std::vector<float> frames(2 * 150);
  for (std::size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<float>(i);
  CHECK(fifo.push(frames.data(), 60) == 60);
  fifo.pop(50);
  CHECK(fifo.push(frames.data() + 120, 150) == 90);  // room: 100 - 10
  CHECK(fifo.size() == 100 && fifo.room() == 0);
  CHECK(fifo.front()[0] == 100.0f);  // frame 50 of the first push
  fifo.pop(10);
  CHECK(fifo.front()[0] == 120.0f);  // then the second push, in order (moved to the front on the way)
  CHECK(fifo.push(nullptr, 5) == 5);
  fifo.pop(90);
  CHECK(fifo.size() == 5 && fifo.front()[0] == 0.0f && fifo.front()[9] == 0.0f);
}

void drift_resampler_tracks_its_position() {
  DriftResampler resampler(1, 512);
  const double f = 50.0 / 48000.0;  // cycles per frame
  resampler.restart(0.0, 1.0);
  std::vector<float> in(512);
  std::uniform_real_distribution<double> step(-300e-6, 300e-6);
  double fed = 0.0;
  double worst = 0.0;
  std::int64_t out = 0;
  double ratio = 1.0;
  for (int chunk = 0; chunk < 400; ++chunk) {
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(std::sin(2 * kPi * f * (fed + static_cast<double>(i))));
    fed += static_cast<double>(in.size());
    ratio = 1.0 + step(rng);
    double position = resampler.next_position();
    resampler.set_ratio(ratio);
    resampler.process(in.data(), in.size(), [&](const float* frames, std::size_t made) {
      for (std::size_t k = 0; k < made; ++k, ++out, position += ratio) {
        if (out < 4800) continue;  // the filter's start
        const double expected = std::sin(2 * kPi * f * position);
        worst = std::max(worst, std::fabs(static_cast<double>(frames[k]) - expected));
      }
    });
  }
  // A 50 Hz sine moves 0.0065 of full scale per frame: 2e-4 is 0.03 frames.
  std::printf("drift resampler: worst error %.2e over %lld frames\n", worst, static_cast<long long>(out));
  CHECK(out > 150000 && worst < 2e-4);
}

// Where, in frames of the device whose 50 Hz sine is in `column`, the output
// frames [start, start + n) were taken from, relative to `expected(k)`.
template <class Expected>
double phase_error(const std::vector<float>& output, std::size_t channels, std::size_t column, std::size_t start,
                   std::size_t n, double rate, Expected expected) {
  std::complex<double> sum = 0.0;
  const double w = 2 * kPi * 50.0 / rate;
  for (std::size_t k = start; k < start + n; ++k) {
    sum += static_cast<double>(output[k * channels + column]) * std::exp(std::complex<double>(0.0, -w * expected(k)));
  }
  return std::arg(sum * std::complex<double>(0.0, 2.0)) / w;
}

struct VirtualLane {
  std::shared_ptr<FrameRing> ring;
  std::shared_ptr<Capture> capture;
  std::unique_ptr<VirtualInput> input;
};

VirtualLane virtual_lane(double speed, std::int64_t frame_limit) {
  VirtualLane lane;
  lane.ring = std::make_shared<FrameRing>(sizeof(float), Frame{48000 * 3});
  lane.capture = std::make_shared<Capture>(lane.ring);
  VirtualInputConfig config;
  config.frequencies = {50.0};
  config.speed = speed;
  config.blocksize = 480;
  config.frame_limit = frame_limit;
  lane.input = std::make_unique<VirtualInput>(config, audioring_capture_callback, lane.capture.get());
  return lane;
}

void aligner_aligns_two_drifting_devices(double seconds) {
  const double rate = 48000.0;
  const double speeds[2] = {1.0, 1.0 + 300e-6};
  VirtualLane lanes[2] = {virtual_lane(speeds[0], -1), virtual_lane(speeds[1], -1)};
  auto output = std::make_shared<FrameRing>(2 * sizeof(float), static_cast<Frame>(rate * (seconds + 2)));
  AlignerConfig config;
  for (const VirtualLane& lane : lanes) config.lanes.push_back({lane.ring, 1, {0}, lane.capture, nullptr, rate});
  Aligner aligner(output, config);
  aligner.start();
  for (VirtualLane& lane : lanes) lane.input->start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  for (VirtualLane& lane : lanes) lane.input->stop();
  aligner.stop();
  const Frame written = output->written();
  std::vector<float> all(static_cast<std::size_t>(written) * 2);
  CHECK(output->copy(0, written, all.data()));
  const LaneStats slave = aligner.lane_stats(1);
  const double t0[2] = {lanes[0].input->frame0_time(), lanes[1].input->frame0_time()};
  const auto truth = [&](std::size_t lane) {
    return [&, lane](std::size_t k) {
      return (t0[0] + static_cast<double>(k) / (rate * speeds[0]) - t0[lane]) * rate * speeds[lane];
    };
  };
  const std::size_t usable = static_cast<std::size_t>(written) - static_cast<std::size_t>(slave.frames_silent) - 4800;
  double worst = 0.0;
  for (std::size_t start = static_cast<std::size_t>(rate * 5); start + 4800 <= usable; start += 4800) {
    CHECK(std::fabs(phase_error(all, 2, 0, start, 4800, rate, truth(0))) < 1e-3);  // the master's frames as they are
    const double error = phase_error(all, 2, 1, start, 4800, rate, truth(1));
    if (std::getenv("AUDIORING_VERBOSE") != nullptr) std::printf("  %.1f s: %+.3f frames\n", static_cast<double>(start) / rate, error);
    worst = std::max(worst, std::fabs(error));
  }
  std::printf("aligner: %lld frames, 300 ppm device within %.3f frames after 5 s, drift measured %+.2f ppm\n",
              static_cast<long long>(written), worst, slave.drift_ppm);
  CHECK(slave.frames_lost == 0 && slave.stalls == 0);
  if (std::getenv("AUDIORING_EMULATED") == nullptr) {
    // Uncompensated, it would slide 14 frames a second. (Tighter bounds, a quarter of a frame and a
    // ppm, are tests/test_several_devices.py's, unloaded by sanitizers.)
    CHECK(worst < 1.0);
    CHECK(std::fabs(slave.drift_ppm - 300.0) < 3.0);
  }
  CHECK(aligner.stats().frames_out == static_cast<std::uint64_t>(written));
}

void aligner_silences_a_device_that_stops() {
  const double rate = 48000.0;
  VirtualLane lanes[2] = {virtual_lane(1.0, -1), virtual_lane(1.0, 72000)};  // the second stops after 1.5 s
  auto output = std::make_shared<FrameRing>(2 * sizeof(float), Frame{48000 * 5});
  AlignerConfig config;
  for (const VirtualLane& lane : lanes) config.lanes.push_back({lane.ring, 1, {0}, lane.capture, nullptr, rate});
  config.stall_seconds = 1.0;  // past the first alignment (0.5 s of warm-up, then a few blocks)
  Aligner aligner(output, config);
  aligner.start();
  for (VirtualLane& lane : lanes) lane.input->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  for (VirtualLane& lane : lanes) lane.input->stop();
  aligner.stop();
  const LaneStats stopped = aligner.lane_stats(1);
  const auto written = static_cast<std::uint64_t>(output->written());
  std::printf("stopped device: %llu frames written, %llu silent, %llu stalls, %llu alignments\n",
              static_cast<unsigned long long>(written), static_cast<unsigned long long>(stopped.frames_silent),
              static_cast<unsigned long long>(stopped.stalls), static_cast<unsigned long long>(stopped.alignments));
  CHECK(written >= 72000 + 48000 + 24000);  // the master went on past the stall
  CHECK(stopped.stalls == 1);
  // Its channels: its 72000 frames (give or take its start), then silence, counted.
  CHECK(stopped.frames_silent + 72000 >= written - 2400 && stopped.frames_silent + 72000 <= written + 2400);
  std::vector<float> tail(2 * 4800);
  CHECK(output->copy(static_cast<Frame>(written) - 4800, 4800, tail.data()));
  for (std::size_t k = 0; k < 4800; ++k) CHECK(tail[2 * k + 1] == 0.0f);
}

void aligner_refuses_inconsistent_lanes() {
  auto ring = std::make_shared<FrameRing>(sizeof(float), Frame{4096});
  auto capture = std::make_shared<Capture>(ring);
  auto output = std::make_shared<FrameRing>(sizeof(float), Frame{4096});
  const auto refused = [&](AlignerConfig config) {
    try {
      Aligner aligner(output, std::move(config));
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  CHECK(refused(AlignerConfig{}));  // no lane
  AlignerConfig bad_mapping;
  bad_mapping.lanes.push_back({ring, 1, {1}, capture, nullptr, 48000.0});
  CHECK(refused(bad_mapping));
  AlignerConfig bad_master;
  bad_master.lanes.push_back({ring, 1, {0}, capture, nullptr, 48000.0});
  bad_master.master = 1;
  CHECK(refused(bad_master));
  AlignerConfig wide_output;  // two channels in, the output holds one
  wide_output.lanes.push_back({ring, 1, {0}, capture, nullptr, 48000.0});
  wide_output.lanes.push_back({ring, 1, {0}, capture, nullptr, 48000.0});
  CHECK(refused(wide_output));
}

}  // namespace

int main() {
  rng.seed(audioring_test::seed("test_aligner", 23));
  clock_estimator_fits_a_jittered_clock();
  block_times_hand_over_in_order_and_skip_when_lapped();
  frame_fifo_keeps_order_and_room();
  drift_resampler_tracks_its_position();
  aligner_refuses_inconsistent_lanes();
  aligner_aligns_two_drifting_devices(8.0);
  aligner_silences_a_device_that_stops();
  std::puts("test_aligner: all passed");
  return 0;
}
