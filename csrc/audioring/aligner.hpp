// Aligner: several devices, each on its own clock, into one sample-aligned
// recording on the master device's timebase, on a native thread of its own.
//
// Data flow, per device ("lane"): callback -> Capture -> capture ring (the
// device's frames; a Converter turns them into a lane ring at the
// recording's rate when the device runs at another nominal rate) -> this
// thread -> the user ring, each device's selected channels side by side.
//
// Clocks: every block's capture time is logged by its callback on one clock,
// the process's steady clock (block_times.hpp), and a ClockEstimator fits
// each lane's line time(frame). Output frame o is master lane frame m0 + o,
// captured at T_m(m0 + o); for every other lane the frame captured at that
// moment is F(T_m(m0 + o)), its line's inverse. A DriftResampler (libsoxr's
// variable-rate mode) plays each non-master lane at io ratio
//     r = (master period / lane period) - clamp(e / (correction_seconds x rate))
// where e is how far the resampler's position is ahead of that target frame:
// the fitted ratio compensates the drift, the second term steers out the
// residual position error. The ratio played follows that command through a
// first-order low-pass (smoothing_seconds): the fits move by tenths of a ppm
// from block to block, and a ratio that jumped with them would modulate the
// phase of a 1 kHz tone by ~1e-4 frames, an error only 80 dB down; smoothed,
// a tone keeps >100 dB. Start alignment is the same equation at the first
// output frame: a lane starts at the frame captured when the master's first
// frame was (rounded), or with silence until its own first frame; then, until
// the remaining fraction of a frame is steered out, the loop runs fast and
// unsmoothed (settle_seconds, up to settle_correction: 0.2 % for a few ms).
//
// Liveness: the master is the clock: without its frames nothing is output. A
// lane that has not delivered for stall_seconds of the master's audio has its
// channels filled with silence (counted: frames_silent, stalls) so that the
// others go on; its clock fit starts over, and when it delivers again it is
// aligned afresh from the blocks it delivers then.
// Device frames overwritten in a lane ring before this thread read them are
// recorded as silence too (frames_lost), so positions stay true.
//
// Threading: reset(), start() and stop() from one controlling thread, never
// concurrently; reset() only while stopped and while no device calls back.
// stats(), lane_stats() and anchor() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "audioring/capture.hpp"
#include "audioring/clock_estimator.hpp"
#include "audioring/converter.hpp"
#include "audioring/drift_resampler.hpp"
#include "audioring/fork_guard.hpp"
#include "audioring/frame_fifo.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/recording_counters.hpp"
#include "audioring/sample_format.hpp"

namespace audioring {

struct AlignerLaneConfig {
  std::shared_ptr<FrameRing> ring;       // float32 frames of ring_channels, at the recording's rate
  int ring_channels = 1;
  std::vector<int> mapping;              // 0-based ring channel of each recorded channel of this device
  std::shared_ptr<Capture> capture;      // the device's; its block times are tracked
  std::shared_ptr<Converter> converter;  // capture ring -> ring when the device runs at another rate; else null
  double device_rate = 48000.0;
};

struct AlignerConfig {
  std::vector<AlignerLaneConfig> lanes;
  std::size_t master = 0;
  double rate = 48000.0;  // the recording's
  SampleFormat output_format = SampleFormat::float32;
  double stall_seconds = 2.0;       // how long the output waits for a lane before its channels go silent
  double correction_seconds = 1.0;  // time constant of the position loop
  double max_correction = 1e-4;     // steering beyond the fitted ratio, at most (100 ppm)
  double smoothing_seconds = 0.5;   // time constant of the ratio's low-pass (see below)
  double settle_seconds = 0.05;     // the position loop's time constant right after an alignment
  double settle_correction = 2e-3;  // and its steering limit then
  std::int64_t chunk = 512;         // frames per step
};

// A lane's state, from any thread (relaxed: each value on its own).
struct LaneCounters {
  std::atomic<std::uint64_t> frames_in{0};      // lane frames taken (lost ones included)
  std::atomic<std::uint64_t> frames_lost{0};    // lane frames overwritten before they were read
  std::atomic<std::uint64_t> overruns{0};       // times that happened
  std::atomic<std::uint64_t> frames_silent{0};  // output frames of its channels filled with silence (not delivered)
  std::atomic<std::uint64_t> stalls{0};         // times it fell stall_seconds behind
  std::atomic<std::uint64_t> alignments{0};     // times it was aligned (1 at the start, +1 after a stall or jump)
  std::atomic<std::uint32_t> locked{0};         // aligned, clocks fitted over >= kLockSeconds, |offset| < 1
  std::atomic<double> drift_ppm{0.0};           // its clock against the master's (+: it runs fast)
  std::atomic<double> correction_ppm{0.0};      // the position loop's steering now
  std::atomic<double> offset{0.0};              // resampler position - target, lane frames
};

struct LaneStats {
  std::uint64_t frames_in, frames_lost, overruns, frames_silent, stalls, alignments;
  bool locked;
  double drift_ppm, correction_ppm, offset;
};

class Aligner {
 public:
  // A lane is locked once both clocks were fitted over this long and its offset is under a frame.
  static constexpr double kLockSeconds = 3.0;
  // A lane settles (its alignment's rounding steered out) once its offset is under this many frames.
  static constexpr double kSettledFrames = 0.02;
  // Farther off than this, a lane is aligned afresh (a jump) instead of steered: steering at
  // max_correction would take seconds per frame. (Its clock fit moved: a host that started with
  // a burst of buffered blocks, a clock that changed.)
  static constexpr double kRealignFrames = 8.0;
  // A device's blocks in its first moments are not fitted: hosts start streams with bursts of
  // buffered blocks whose times say nothing of the clock.
  static constexpr double kWarmupSeconds = 0.5;

  // `output` holds frames of the lanes' mapped channels, in lane order, in
  // config.output_format. If `output` is shared, the aligner counts in its
  // header as a converter would (its anchor in the master's capture frames),
  // and the master's capture must count there too. Throws
  // std::invalid_argument for an inconsistent config.
  Aligner(std::shared_ptr<FrameRing> output, AlignerConfig config);
  ~Aligner();
  Aligner(const Aligner&) = delete;
  Aligner& operator=(const Aligner&) = delete;

  // Forgets the previous recording (every lane's converter or capture
  // included): the next frames are aligned afresh. Only while stopped.
  void reset();
  void start();
  // Takes every frame still in the lane rings, fills the lanes that are
  // behind the master with silence, writes the rest out and joins the
  // thread. Call after the devices (and lane converters) have stopped.
  void stop() noexcept;

  bool running() const noexcept { return thread_ != nullptr && thread_->joinable(); }
  bool forked() const noexcept { return owner_.forked(); }
  std::size_t lanes() const noexcept { return lanes_.size(); }
  std::size_t master_index() const noexcept { return config_.master; }
  LaneStats lane_stats(std::size_t lane) const;
  // The recording's counts, like a converter's (frames_in: master lane frames).
  ConverterStats stats() const noexcept { return counters_->stats(); }
  const ConverterCounters& counters() const noexcept { return *counters_; }
  const std::shared_ptr<Capture>& master_capture() const noexcept { return config_.lanes[config_.master].capture; }
  // The master's time anchor moved to the output (ADC time of output frame anchor.frame, the master's clock).
  TimeAnchor anchor() const noexcept;
  const AlignerConfig& config() const noexcept { return config_; }
  const std::shared_ptr<FrameRing>& output() const noexcept { return output_; }

 private:
  struct Lane;
  void run() noexcept;
  // One pass over every lane; whether anything moved.
  bool step() noexcept;
  void observe(Lane& lane) noexcept;
  bool read_master(Lane& lane) noexcept;
  bool feed(Lane& lane) noexcept;
  bool try_align(Lane& lane) noexcept;
  // Silence for lanes more than stall_seconds behind the master (all of them, behind at all, at the end).
  void pad_behind(bool stopping) noexcept;
  bool emit() noexcept;
  void publish_states() noexcept;
  // Copies up to `count` frames of the lane ring from lane.pos, selected; returns the frames (0: none
  // ready); lapped frames come back as silence, counted.
  std::size_t take(Lane& lane, std::size_t count) noexcept;

  const AlignerConfig config_;
  const std::shared_ptr<FrameRing> output_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::size_t channels_out_ = 0;
  std::int64_t stall_frames_ = 0;
  std::int64_t master_origin_ = 0;   // master lane frame of output frame 0
  std::int64_t out_origin_ = 0;      // user ring frame of output frame 0
  std::int64_t emitted_ = 0;         // output frames written since reset()
  std::vector<float> interleaved_;   // chunk x channels_out_
  std::vector<unsigned char> formatted_;

  std::atomic<bool> stop_requested_{false};
  RecordingCounters* const shared_;
  ConverterCounters own_counters_;
  ConverterCounters* const counters_;
  std::unique_ptr<std::thread> thread_;
  const ForkGuard owner_;
};

}  // namespace audioring
