#include "audioring/aligner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace audioring {

struct Aligner::Lane {
  Lane(AlignerLaneConfig lane_config, std::size_t fifo_frames, std::size_t chunk, double rate, bool master)
      : config(std::move(lane_config)),
        channels(config.mapping.size()),
        fifo(channels, fifo_frames),
        clock(rate),
        resampler(master ? nullptr : std::make_unique<DriftResampler>(static_cast<int>(channels), chunk)),
        raw(chunk * static_cast<std::size_t>(config.ring_channels)),
        picked(chunk * channels) {}

  AlignerLaneConfig config;
  std::size_t channels;                       // recorded channels of this device
  FrameFifo fifo;                             // its output frames not written out yet
  ClockEstimator clock;                       // time(lane frame), on the steady clock
  std::unique_ptr<DriftResampler> resampler;  // null for the master, whose frames are the output's
  std::vector<float> raw;                     // chunk x ring_channels, copied out of the lane ring
  std::vector<float> picked;                  // chunk x channels: the mapped ones
  std::int64_t origin = 0;                    // lane ring frame at reset(): the recording's first
  std::int64_t pos = 0;                       // next lane ring frame to take
  std::int64_t lost_until = 0;                // lane frames before it were overwritten unread: taken as silence
  std::int64_t out_next = 0;                  // output frame of the next frame pushed into fifo
  double converter_in = 0.0;                  // capture frame converted as lane frame converter_out
  double converter_out = 0.0;
  double scale = 1.0;                         // lane frames per capture frame
  bool aligned = false;                       // its resampler runs on the master's timebase
  double first_block_time = -1.0;             // its first block's time since its fit began (<0: none yet)
  bool settling = false;                      // aligned, its first fraction of a frame not steered out yet
  double ratio = 1.0;                         // the io ratio played (the command, smoothed)
  std::uint64_t resyncs_seen = 0;
  LaneCounters counters;
};

namespace {

// Whether a clock's line is good enough to align by: a quarter of a second
// of blocks (the line is extrapolated back to the recording's first frame,
// half a second and more before: its slope must be the data's, not the
// prior's), and its jitter measured where blocks are short enough to have
// kJitterAfter of them by then. Well within stall_seconds either way.
bool fitted_enough(const ClockEstimator& clock) {
  return clock.ready() && clock.span() >= 0.25 &&
         (clock.observations() >= ClockEstimator::kJitterAfter || clock.span() >= 0.5);
}

void check_lane(const AlignerLaneConfig& lane, std::size_t index) {
  const std::string name = "lane " + std::to_string(index);
  if (!lane.ring || !lane.capture) throw std::invalid_argument(name + " needs a ring and a capture");
  if (lane.ring_channels < 1 || lane.ring->frame_bytes() != static_cast<std::size_t>(lane.ring_channels) * 4) {
    throw std::invalid_argument(name + ": its ring must hold float32 frames of ring_channels");
  }
  if (lane.mapping.empty()) throw std::invalid_argument(name + " records no channel");
  const auto outside = std::find_if(lane.mapping.begin(), lane.mapping.end(),
                                    [&lane](int c) { return c < 0 || c >= lane.ring_channels; });
  if (outside != lane.mapping.end()) {
    throw std::invalid_argument(name + ": mapping names channel " + std::to_string(*outside) + " of a ring of " +
                                std::to_string(lane.ring_channels));
  }
  if (lane.converter) {
    if (lane.converter->output() != lane.ring || lane.converter->capture() != lane.capture) {
      throw std::invalid_argument(name + ": its converter must read its capture and write its ring");
    }
  } else if (lane.capture->ring() != lane.ring) {
    throw std::invalid_argument(name + ": without a converter its capture must write its ring");
  }
  if (!(lane.device_rate > 0.0)) throw std::invalid_argument(name + ": device_rate must be positive");
}

}  // namespace

Aligner::Aligner(std::shared_ptr<FrameRing> output, AlignerConfig config)
    : config_(std::move(config)),
      output_(std::move(output)),
      shared_(output_ ? output_->storage().published_counters() : nullptr),
      counters_(shared_ != nullptr ? &shared_->converter : &own_counters_) {
  if (!output_) throw std::invalid_argument("an Aligner needs an output ring");
  if (config_.lanes.empty()) throw std::invalid_argument("an Aligner needs at least one lane");
  if (config_.master >= config_.lanes.size()) throw std::invalid_argument("master names no lane");
  if (!(config_.rate > 0.0) || config_.chunk < 16 || !(config_.stall_seconds > 0.0) ||
      !(config_.correction_seconds > 0.0) || !(config_.max_correction >= 0.0)) {
    throw std::invalid_argument("aligner settings out of range");
  }
  for (std::size_t i = 0; i < config_.lanes.size(); ++i) {
    check_lane(config_.lanes[i], i);
    channels_out_ += config_.lanes[i].mapping.size();
  }
  if (output_->frame_bytes() != channels_out_ * format_info(config_.output_format).bytes) {
    throw std::invalid_argument("the output ring's frames must hold every lane's channels in the output format");
  }
  if (output_->read_only()) throw std::invalid_argument("an Aligner cannot write into a ring attached read-only");
  const AlignerLaneConfig& master = config_.lanes[config_.master];
  if (shared_ != nullptr && master.capture->shared_counters() != shared_) {
    throw std::invalid_argument("the master's capture must count in the shared output's header");
  }
  const auto chunk = static_cast<std::size_t>(config_.chunk);
  stall_frames_ = static_cast<std::int64_t>(std::ceil(config_.stall_seconds * config_.rate));
  const std::size_t fifo_frames = static_cast<std::size_t>(stall_frames_) + 8 * chunk;
  for (std::size_t i = 0; i < config_.lanes.size(); ++i) {
    config_.lanes[i].capture->track_block_times();
    lanes_.push_back(std::make_unique<Lane>(config_.lanes[i], fifo_frames, chunk, config_.rate, i == config_.master));
  }
  interleaved_.resize(chunk * channels_out_);
  if (config_.output_format != SampleFormat::float32) {
    formatted_.resize(chunk * channels_out_ * format_info(config_.output_format).bytes);
  }
  if (shared_ != nullptr) {  // readers' anchor() goes through these counters, in the master's capture frames
    shared_->input_rate.store(master.device_rate, std::memory_order_relaxed);
    shared_->converting.store(1, std::memory_order_release);
  }
  reset();
}

Aligner::~Aligner() { stop(); }

void Aligner::reset() {
  for (auto& lane : lanes_) {
    Lane& l = *lane;
    if (l.config.converter) {
      l.config.converter->reset();  // resets the capture too
      const ConverterCounters& c = l.config.converter->counters();
      l.converter_in = static_cast<double>(c.anchor_in.load(std::memory_order_relaxed));
      l.converter_out = static_cast<double>(c.anchor_out.load(std::memory_order_relaxed));
      l.scale = config_.rate / l.config.device_rate;
    } else {
      l.config.capture->reset();
    }
    l.origin = l.config.ring->written();
    l.pos = l.origin;
    l.lost_until = 0;
    l.out_next = 0;
    l.fifo.clear();
    l.clock.reset();
    l.first_block_time = -1.0;
    l.aligned = lane.get() == lanes_[config_.master].get();
    l.resyncs_seen = l.clock.resyncs();
    for (auto* counter : {&l.counters.frames_in, &l.counters.frames_lost, &l.counters.overruns,
                          &l.counters.frames_silent, &l.counters.stalls, &l.counters.alignments}) {
      counter->store(0, std::memory_order_relaxed);
    }
    l.counters.locked.store(0, std::memory_order_relaxed);
    for (auto* value : {&l.counters.drift_ppm, &l.counters.correction_ppm, &l.counters.offset}) {
      value->store(0.0, std::memory_order_relaxed);
    }
  }
  Lane& master = *lanes_[config_.master];
  master_origin_ = master.origin;
  out_origin_ = output_->written();
  emitted_ = 0;
  const std::int64_t anchor_in = master.config.converter
                                     ? static_cast<std::int64_t>(master.converter_in)
                                     : master_origin_;
  counters_->anchor_in.store(anchor_in, std::memory_order_relaxed);
  counters_->anchor_out.store(out_origin_, std::memory_order_relaxed);
  counters_->delay.store(0.0, std::memory_order_relaxed);
  for (auto* counter : {&counters_->frames_in, &counters_->frames_out, &counters_->frames_lost, &counters_->overruns}) {
    counter->store(0, std::memory_order_relaxed);
  }
}

void Aligner::start() {
  if (owner_.forked()) {
    throw std::logic_error("an aligner cannot be started in a forked child of the process that made it");
  }
  if (running()) return;
  stop_requested_.store(false, std::memory_order_relaxed);
  thread_ = std::make_unique<std::thread>([this] { run(); });
}

void Aligner::stop() noexcept {
  if (owner_.forked()) {
    static_cast<void>(thread_.release());  // the parent's thread: not here, never joined
    return;
  }
  if (!running()) return;
  stop_requested_.store(true, std::memory_order_release);
  lanes_[config_.master]->config.ring->interrupt();
  thread_->join();
  thread_.reset();
}

LaneStats Aligner::lane_stats(std::size_t lane) const {
  if (lane >= lanes_.size()) throw std::out_of_range("no lane " + std::to_string(lane));
  const LaneCounters& c = lanes_[lane]->counters;
  return {c.frames_in.load(std::memory_order_relaxed),     c.frames_lost.load(std::memory_order_relaxed),
          c.overruns.load(std::memory_order_relaxed),      c.frames_silent.load(std::memory_order_relaxed),
          c.stalls.load(std::memory_order_relaxed),        c.alignments.load(std::memory_order_relaxed),
          c.locked.load(std::memory_order_relaxed) != 0,   c.drift_ppm.load(std::memory_order_relaxed),
          c.correction_ppm.load(std::memory_order_relaxed), c.offset.load(std::memory_order_relaxed)};
}

TimeAnchor Aligner::anchor() const noexcept {
  const AlignerLaneConfig& master = config_.lanes[config_.master];
  return recording_anchor(master.capture->counters(), counters_, master.device_rate);
}

void Aligner::run() noexcept {
  Lane& master = *lanes_[config_.master];
  for (;;) {
    // The interrupt count before the stop flag, the stop flag before the
    // rings' counts (as Converter::run): once stopping is seen, what the
    // devices wrote is final.
    const std::uint64_t interrupts = master.config.ring->interrupts();
    const bool stopping = stop_requested_.load(std::memory_order_acquire);
    if (step()) continue;
    if (stopping) break;
    if (master.fifo.room() == 0) {  // waiting for another lane: its frames have no doorbell of ours
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } else {
      master.config.ring->wait_for_frame(master.pos + 1, FrameRing::Clock::now() + std::chrono::milliseconds(5),
                                         interrupts);
    }
  }
  // The end: lanes behind the master get silence for what they never delivered.
  for (const auto& lane : lanes_) observe(*lane);
  pad_behind(true);
  while (emit()) {
  }
}

bool Aligner::step() noexcept {
  bool progress = false;
  for (const auto& lane : lanes_) observe(*lane);
  Lane& master = *lanes_[config_.master];
  progress |= read_master(master);
  for (const auto& pointer : lanes_) {
    Lane& lane = *pointer;
    if (&lane == &master) continue;
    if (lane.clock.resyncs() != lane.resyncs_seen) {  // its clock jumped: its alignment no longer holds
      lane.resyncs_seen = lane.clock.resyncs();
      lane.aligned = false;
    }
    if (!lane.aligned) progress |= try_align(lane);
    if (lane.aligned) progress |= feed(lane);
  }
  pad_behind(false);
  progress |= emit();
  publish_states();
  return progress;
}

void Aligner::observe(Lane& lane) noexcept {
  BlockTimes* times = lane.config.capture->block_times();
  if (times == nullptr) return;
  times->drain([&lane](const BlockTime& block) {
    if (lane.first_block_time < 0.0) lane.first_block_time = block.time;
    if (block.time < lane.first_block_time + kWarmupSeconds) return;  // the start's bursts
    const double frame =
        lane.config.converter ? lane.converter_out + (block.frame - lane.converter_in) * lane.scale : block.frame;
    lane.clock.add(frame, block.time);
  });
}

std::size_t Aligner::take(Lane& lane, std::size_t count) noexcept {
  const auto channels_in = static_cast<std::size_t>(lane.config.ring_channels);
  FrameRing& ring = *lane.config.ring;
  if (lane.pos < lane.lost_until) {  // overwritten before we read them: silence of their length
    const auto n = static_cast<std::size_t>(std::min<std::int64_t>(static_cast<std::int64_t>(count),
                                                                    lane.lost_until - lane.pos));
    std::fill(lane.picked.begin(), lane.picked.begin() + static_cast<std::ptrdiff_t>(n * lane.channels), 0.0f);
    lane.pos += static_cast<std::int64_t>(n);
    bump(lane.counters.frames_in, n);
    return n;
  }
  const std::int64_t available = ring.written() - lane.pos;
  if (available <= 0) return 0;
  const auto n = static_cast<std::size_t>(std::min<std::int64_t>(available, static_cast<std::int64_t>(count)));
  if (ring.copy(lane.pos, static_cast<FrameRing::Frame>(n), lane.raw.data())) {
    for (std::size_t i = 0; i < n; ++i) {
      const float* from = lane.raw.data() + i * channels_in;
      float* to = lane.picked.data() + i * lane.channels;
      for (std::size_t c = 0; c < lane.channels; ++c) to[c] = from[static_cast<std::size_t>(lane.config.mapping[c])];
    }
    lane.pos += static_cast<std::int64_t>(n);
    bump(lane.counters.frames_in, n);
    return n;
  }
  // Lapped: resume half a ring behind the device (room before it laps us again).
  const std::int64_t resume = std::max(ring.written() - ring.capacity() / 2, lane.pos + static_cast<std::int64_t>(n));
  lane.lost_until = resume;
  bump(lane.counters.frames_lost, static_cast<std::uint64_t>(resume - lane.pos));
  bump(lane.counters.overruns, 1);
  bump(counters_->frames_lost, static_cast<std::uint64_t>(resume - lane.pos));
  bump(counters_->overruns, 1);
  return take(lane, count);
}

bool Aligner::read_master(Lane& lane) noexcept {
  const std::size_t room = lane.fifo.room();
  if (room == 0) return false;
  const std::size_t n = take(lane, std::min(room, lane.picked.size() / lane.channels));
  if (n == 0) return false;
  lane.fifo.push(lane.picked.data(), n);
  lane.out_next += static_cast<std::int64_t>(n);
  bump(counters_->frames_in, n);
  return true;
}

bool Aligner::try_align(Lane& lane) noexcept {
  const Lane& master = *lanes_[config_.master];
  if (!fitted_enough(master.clock) || !fitted_enough(lane.clock)) return false;
  const double ratio = master.clock.period() / lane.clock.period();
  double target = lane.clock.frame_at(master.clock.time_at(static_cast<double>(master_origin_ + lane.out_next)));
  // The first frame still there: none before the recording's first, none the device is about to overwrite.
  const FrameRing& ring = *lane.config.ring;
  const std::int64_t earliest = std::max(lane.origin, ring.written() - ring.capacity() + config_.chunk);
  if (target < static_cast<double>(earliest)) {  // it started later: silence until its first frame
    const auto wanted = static_cast<std::size_t>(std::ceil((static_cast<double>(earliest) - target) / ratio));
    const std::size_t n = lane.fifo.push(nullptr, wanted);
    lane.out_next += static_cast<std::int64_t>(n);
    bump(lane.counters.frames_silent, n);
    if (n < wanted) return n > 0;  // more silence to come once the output moves on
    target += static_cast<double>(n) * ratio;
  }
  const auto first = static_cast<std::int64_t>(std::llround(target + DriftResampler::filter_delay()));
  lane.resampler->restart(static_cast<double>(first), ratio);
  lane.pos = first;  // frames before it are not this output's
  lane.lost_until = 0;
  lane.aligned = true;
  lane.settling = true;
  lane.ratio = ratio;
  bump(lane.counters.alignments, 1);
  return true;
}

bool Aligner::feed(Lane& lane) noexcept {
  const auto chunk = static_cast<std::size_t>(config_.chunk);
  if (lane.fifo.room() < chunk * 2 + 64) return false;  // the resampler makes at most ~chunk x 1.05 frames
  const Lane& master = *lanes_[config_.master];
  const double fitted = master.clock.period() / lane.clock.period();
  const double target = lane.clock.frame_at(master.clock.time_at(static_cast<double>(master_origin_ + lane.out_next)));
  const double offset = lane.resampler->next_position() - target;
  if (std::fabs(offset) > kRealignFrames) {  // too far to steer: aligned afresh at the next step
    lane.aligned = false;
    return true;
  }
  const std::size_t n = take(lane, chunk);
  if (n == 0) return false;
  if (lane.settling) {  // just aligned: steer the rounding out at once, unsmoothed
    const double limit = config_.settle_correction;
    lane.ratio = fitted - std::clamp(offset / (config_.settle_seconds * config_.rate), -limit, limit);
    lane.settling = std::fabs(offset) > kSettledFrames;
  } else {
    const double limit = config_.max_correction;
    const double command = fitted - std::clamp(offset / (config_.correction_seconds * config_.rate), -limit, limit);
    const double blend = std::min(1.0, static_cast<double>(n) / (config_.smoothing_seconds * config_.rate));
    lane.ratio += (command - lane.ratio) * blend;
  }
  lane.resampler->set_ratio(lane.ratio);
  lane.resampler->process(lane.picked.data(), n, [&lane](const float* frames, std::size_t made) {
    const std::size_t kept = lane.fifo.push(frames, made);
    lane.out_next += static_cast<std::int64_t>(made);
    if (kept < made) bump(lane.counters.frames_lost, made - kept);  // cannot happen: room was checked
  });
  lane.counters.drift_ppm.store((fitted - 1.0) * 1e6, std::memory_order_relaxed);
  lane.counters.correction_ppm.store((lane.ratio - fitted) * 1e6, std::memory_order_relaxed);
  lane.counters.offset.store(offset, std::memory_order_relaxed);
  return true;
}

void Aligner::pad_behind(bool stopping) noexcept {
  const Lane& master = *lanes_[config_.master];
  for (const auto& pointer : lanes_) {
    Lane& lane = *pointer;
    if (&lane == &master) continue;
    std::int64_t behind = master.out_next - lane.out_next;
    if (behind <= 0 || (!stopping && behind <= stall_frames_)) continue;
    if (lane.aligned) {  // the end of its signal, for now: play what the resampler holds of it
      lane.resampler->flush([&lane](const float* frames, std::size_t made) {
        const std::size_t kept = lane.fifo.push(frames, made);
        lane.out_next += static_cast<std::int64_t>(kept);
      });
    }
    if (!stopping && lane.aligned) {  // stalled: fitted and aligned afresh from what it delivers next
      lane.aligned = false;
      lane.clock.reset();
      lane.first_block_time = -1.0;
      bump(lane.counters.stalls, 1);
    }
    behind = master.out_next - lane.out_next;
    if (behind <= 0) continue;
    const std::size_t n = lane.fifo.push(nullptr, static_cast<std::size_t>(behind));
    lane.out_next += static_cast<std::int64_t>(n);
    bump(lane.counters.frames_silent, n);
  }
}

bool Aligner::emit() noexcept {
  std::size_t ready = lanes_[0]->fifo.size();
  for (const auto& lane : lanes_) ready = std::min(ready, lane->fifo.size());
  if (ready == 0) return false;
  const auto chunk = static_cast<std::size_t>(config_.chunk);
  while (ready > 0) {
    const std::size_t n = std::min(ready, chunk);
    std::size_t column = 0;
    for (const auto& lane : lanes_) {
      const float* from = lane->fifo.front();
      for (std::size_t i = 0; i < n; ++i) {
        std::copy(from + i * lane->channels, from + (i + 1) * lane->channels,
                  interleaved_.data() + i * channels_out_ + column);
      }
      column += lane->channels;
      lane->fifo.pop(n);
    }
    const void* block = interleaved_.data();
    if (config_.output_format != SampleFormat::float32) {
      format_samples(interleaved_.data(), n * channels_out_, config_.output_format, formatted_.data());
      block = formatted_.data();
    }
    output_->write(block, static_cast<FrameRing::Frame>(n));
    emitted_ += static_cast<std::int64_t>(n);
    bump(counters_->frames_out, n);
    ready -= n;
  }
  return true;
}

void Aligner::publish_states() noexcept {
  const Lane& master = *lanes_[config_.master];
  const bool master_fitted = master.clock.span() >= kLockSeconds;
  for (const auto& pointer : lanes_) {
    Lane& lane = *pointer;
    bool locked = master_fitted;
    if (&lane != &master) {
      locked = locked && lane.aligned && lane.clock.span() >= kLockSeconds &&
               std::fabs(lane.counters.offset.load(std::memory_order_relaxed)) < 1.0;
    }
    lane.counters.locked.store(locked ? 1 : 0, std::memory_order_relaxed);
  }
}

}  // namespace audioring
