// What a recording counts, and the one computation of its stats and time
// anchor from the counts.
//
// Capture (capture.hpp) counts the device's callbacks into CaptureCounters;
// a Converter (converter.hpp) counts the conversion into the recording's
// frames into ConverterCounters. Each set is a standard-layout struct of
// lock-free atomics, so that it can live either in the object that counts
// or in a shared ring's header (shared_header.hpp), where readers in other
// processes compute, with recording_stats() and recording_anchor() below,
// exactly what the counting process computes.
//
// Threading: one writer per set (the callback thread for CaptureCounters,
// the converter thread for ConverterCounters; their reset() only while that
// thread is idle); any number of readers. Counters are relaxed, each read on
// its own as a statistic; a time anchor is published with release/acquire
// on its valid flag.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace audioring {

struct CaptureStats {
  std::uint64_t callbacks;
  std::uint64_t frames;
  std::uint64_t input_overflows;   // callbacks flagged paInputOverflow: PortAudio dropped input before us
  std::uint64_t input_underflows;  // callbacks flagged paInputUnderflow
  std::uint64_t min_block;         // 0 until the first callback
  std::uint64_t max_block;
};

struct ConverterStats {
  std::uint64_t frames_in;    // device frames taken from the capture ring (lost ones included)
  std::uint64_t frames_out;   // frames written to the user ring
  std::uint64_t frames_lost;  // device frames overwritten before the converter read them
  std::uint64_t overruns;     // times that happened
};

// A recording's counts in its own frames (what the bindings' stats() return).
struct RecordingStats {
  std::uint64_t callbacks;
  std::uint64_t frames;            // frames the recording received
  std::uint64_t input_overflows;   // the device's, plus the converter's overruns
  std::uint64_t input_underflows;
  std::uint64_t min_block;         // device frames per callback
  std::uint64_t max_block;
  std::uint64_t device_frames;     // frames the device delivered
  std::uint64_t device_frames_lost;
  std::uint64_t conversion_overruns;
};

// The stream time of one frame, to timestamp all others at the nominal rate.
struct TimeAnchor {
  bool valid;            // false until the first callback after reset()
  double adc_time;       // seconds, in the stream's clock (PortAudio's Pa_GetStreamTime)
  std::int64_t frame;    // absolute ring frame captured at adc_time
};

// Single writer: plain load + store instead of an RMW (see the top comment).
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

struct CaptureCounters {
  std::atomic<std::uint64_t> callbacks{0};
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> input_overflows{0};
  std::atomic<std::uint64_t> input_underflows{0};
  std::atomic<std::uint64_t> min_block{0};  // 0 = no block yet
  std::atomic<std::uint64_t> max_block{0};
  // Set once per recording; atomics so that a reader racing reset() is not UB.
  std::atomic<std::uint32_t> anchor_valid{0};  // 1 release-publishes the two below
  std::atomic<double> anchor_time{0.0};
  std::atomic<std::int64_t> anchor_frame{0};

  CaptureStats stats() const noexcept {
    return {callbacks.load(std::memory_order_relaxed),       frames.load(std::memory_order_relaxed),
            input_overflows.load(std::memory_order_relaxed), input_underflows.load(std::memory_order_relaxed),
            min_block.load(std::memory_order_relaxed),       max_block.load(std::memory_order_relaxed)};
  }

  TimeAnchor anchor() const noexcept {
    if (anchor_valid.load(std::memory_order_acquire) == 0) return {false, 0.0, 0};
    return {true, anchor_time.load(std::memory_order_relaxed), anchor_frame.load(std::memory_order_relaxed)};
  }

  void reset() noexcept {
    for (auto* counter : {&callbacks, &frames, &input_overflows, &input_underflows, &min_block, &max_block}) {
      counter->store(0, std::memory_order_relaxed);
    }
    anchor_valid.store(0, std::memory_order_release);
  }
};

struct ConverterCounters {
  std::atomic<std::uint64_t> frames_in{0};
  std::atomic<std::uint64_t> frames_out{0};
  std::atomic<std::uint64_t> frames_lost{0};
  std::atomic<std::uint64_t> overruns{0};
  std::atomic<double> delay{0.0};  // output frames the resampler holds back, as last measured
  // Capture-ring frame anchor_in was converted as output frame anchor_out;
  // set by reset() before the converter thread starts (thread creation orders it).
  std::atomic<std::int64_t> anchor_in{0};
  std::atomic<std::int64_t> anchor_out{0};

  ConverterStats stats() const noexcept {
    return {frames_in.load(std::memory_order_relaxed), frames_out.load(std::memory_order_relaxed),
            frames_lost.load(std::memory_order_relaxed), overruns.load(std::memory_order_relaxed)};
  }
};

// A recording's stats: the device's capture, seen through the converter when
// the recording converts (converter == nullptr: the device's frames are the
// recording's).
inline RecordingStats recording_stats(const CaptureCounters& capture, const ConverterCounters* converter) noexcept {
  const CaptureStats device = capture.stats();
  if (converter == nullptr) {
    return {device.callbacks, device.frames,    device.input_overflows, device.input_underflows, device.min_block,
            device.max_block, device.frames, 0, 0};
  }
  const ConverterStats s = converter->stats();
  // A lapped converter is an overrun like PortAudio's own.
  return {device.callbacks, s.frames_out,    device.input_overflows + s.overruns, device.input_underflows,
          device.min_block, device.max_block, device.frames, s.frames_lost, s.overruns};
}

// A recording's time anchor: the capture's, moved to the recording's frames
// when it converts (input_rate: the device's frames per second). Output frame
// anchor_out + k is the signal at k / output_rate after capture frame
// anchor_in (libsoxr trims its own delay).
inline TimeAnchor recording_anchor(const CaptureCounters& capture, const ConverterCounters* converter,
                                   double input_rate) noexcept {
  const TimeAnchor device = capture.anchor();
  if (converter == nullptr || !device.valid) return device;
  // In double: both counts may come from a header another process of the user overwrote (no signed overflow).
  const double device_offset =
      static_cast<double>(converter->anchor_in.load(std::memory_order_relaxed)) - static_cast<double>(device.frame);
  return {true, device.adc_time + device_offset / input_rate, converter->anchor_out.load(std::memory_order_relaxed)};
}

static_assert(std::is_standard_layout_v<CaptureCounters> && std::is_standard_layout_v<ConverterCounters>,
              "counters may live in a shared ring's header");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<double>::is_always_lock_free,
              "shared counters must be lock-free atomics (address-free)");

}  // namespace audioring
