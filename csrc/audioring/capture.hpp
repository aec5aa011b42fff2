// Capture: what PortAudio's input callback does with each block.
//
// audioring_capture_callback has PortAudio's PaStreamCallback signature, so
// sounddevice can hand it to Pa_OpenStream with a Capture* as userData; the
// virtual input calls the same entry point from its own thread. PortAudio is
// never included or linked: only its ABI is matched (PaTimeInfo below).
//
// Threading: one thread at a time calls the callback (PortAudio's audio
// thread, or the virtual input's). That path never allocates, locks, waits,
// throws, does I/O or touches Python: it copies the block into the ring and
// updates counters. Any thread may read the counters. reset() must not run
// concurrently with the callback (call it while the stream is stopped).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "audioring/frame_ring.hpp"

namespace audioring {

// Same layout as PortAudio's PaStreamCallbackTimeInfo (three PaTime = double).
struct PaTimeInfo {
  double inputBufferAdcTime;
  double currentTime;
  double outputBufferDacTime;
};

// PortAudio's PaStreamCallbackFlags bits that concern input.
inline constexpr unsigned long kInputUnderflow = 0x1;
inline constexpr unsigned long kInputOverflow = 0x2;
inline constexpr int kPaContinue = 0;

struct CaptureStats {
  std::uint64_t callbacks;
  std::uint64_t frames;
  std::uint64_t input_overflows;   // callbacks flagged paInputOverflow: PortAudio dropped input before us
  std::uint64_t input_underflows;  // callbacks flagged paInputUnderflow
  std::uint64_t min_block;         // 0 until the first callback
  std::uint64_t max_block;
};

// The stream time of one frame, to timestamp all others at the nominal rate.
struct TimeAnchor {
  bool valid;             // false until the first callback after reset()
  double adc_time;        // seconds, in the stream's clock (PortAudio's Pa_GetStreamTime)
  FrameRing::Frame frame;  // absolute ring frame captured at adc_time
};

class Capture {
 public:
  explicit Capture(std::shared_ptr<FrameRing> ring) noexcept : ring_(std::move(ring)) {}

  const std::shared_ptr<FrameRing>& ring() const noexcept { return ring_; }

  // The real-time path. `input` may be null (then silence is recorded, so the
  // frame count stays true to the stream's clock).
  void on_block(const void* input, unsigned long frames, const PaTimeInfo* time, unsigned long status) noexcept {
    const std::uint64_t n = frames;
    if (!anchor_valid_.load(std::memory_order_relaxed) && time != nullptr) {
      // Some host APIs (e.g. ALSA through PulseAudio on some versions) report 0.
      anchor_time_.store(time->inputBufferAdcTime != 0.0 ? time->inputBufferAdcTime : time->currentTime,
                         std::memory_order_relaxed);
      anchor_frame_.store(ring_->written(), std::memory_order_relaxed);
      anchor_valid_.store(true, std::memory_order_release);  // publishes the two fields above
    }
    ring_->write(input, static_cast<FrameRing::Frame>(frames));
    // Single writer: plain load + store instead of RMWs; relaxed because each
    // counter is read on its own, as a statistic.
    bump(callbacks_, 1);
    bump(frames_, n);
    if (status & kInputOverflow) bump(input_overflows_, 1);
    if (status & kInputUnderflow) bump(input_underflows_, 1);
    const std::uint64_t lo = min_block_.load(std::memory_order_relaxed);
    if (lo == 0 || n < lo) min_block_.store(n, std::memory_order_relaxed);
    if (n > max_block_.load(std::memory_order_relaxed)) max_block_.store(n, std::memory_order_relaxed);
  }

  CaptureStats stats() const noexcept {
    return {callbacks_.load(std::memory_order_relaxed),       frames_.load(std::memory_order_relaxed),
            input_overflows_.load(std::memory_order_relaxed), input_underflows_.load(std::memory_order_relaxed),
            min_block_.load(std::memory_order_relaxed),       max_block_.load(std::memory_order_relaxed)};
  }

  TimeAnchor anchor() const noexcept {
    if (!anchor_valid_.load(std::memory_order_acquire)) return {false, 0.0, 0};
    return {true, anchor_time_.load(std::memory_order_relaxed), anchor_frame_.load(std::memory_order_relaxed)};
  }

  // Zeroes the counters and forgets the time anchor. Not concurrent with on_block().
  void reset() noexcept {
    for (auto* counter : {&callbacks_, &frames_, &input_overflows_, &input_underflows_, &min_block_, &max_block_}) {
      counter->store(0, std::memory_order_relaxed);
    }
    anchor_valid_.store(false, std::memory_order_release);
  }

 private:
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  const std::shared_ptr<FrameRing> ring_;
  std::atomic<std::uint64_t> callbacks_{0};
  std::atomic<std::uint64_t> frames_{0};
  std::atomic<std::uint64_t> input_overflows_{0};
  std::atomic<std::uint64_t> input_underflows_{0};
  std::atomic<std::uint64_t> min_block_{0};  // 0 = no block yet
  std::atomic<std::uint64_t> max_block_{0};
  // Set once per recording; atomics only so that a reader racing reset() is not UB.
  std::atomic<bool> anchor_valid_{false};  // release-publishes the two below
  std::atomic<double> anchor_time_{0.0};
  std::atomic<FrameRing::Frame> anchor_frame_{0};
};

}  // namespace audioring

// PaStreamCallback-compatible entry point; `user_data` is a Capture*.
extern "C" int audioring_capture_callback(const void* input, void* output, unsigned long frame_count,
                                          const audioring::PaTimeInfo* time_info, unsigned long status_flags,
                                          void* user_data);
