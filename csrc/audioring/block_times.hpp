// BlockTimes: when each block of a device was captured, handed from the
// audio thread to the thread that estimates the device's clock.
//
// Every block gives one observation: "ring frame `frame` was captured at
// `time`", in seconds of std::chrono::steady_clock (CLOCK_MONOTONIC on Linux),
// read by the callback itself. One clock for every device of a process is
// what makes devices comparable: host APIs' own stream times are not
// (PortAudio's JACK host counts time in the server's frames, so a drifting
// server's time drifts with it).
//
// Single producer (the capture callback), single consumer (the aligner
// thread). The producer never waits: a consumer that falls more than a
// log's worth behind loses the oldest observations (an estimator needs many,
// not all) and they are counted as skipped.
//
// Threading: push() from the producer only; drain() from the consumer only;
// reset() while neither runs.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace audioring {

// Seconds of the steady clock (the clock every device's observations share).
inline double steady_seconds() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct BlockTime {
  double frame;  // ring frame (a double: the consumer turns frames into other units)
  double time;   // steady_seconds() at which that frame was captured
};

class BlockTimes {
 public:
  static constexpr std::uint64_t kSlots = 1024;  // 10 s of 10 ms blocks

  void push(std::int64_t frame, double time) noexcept {
    const std::uint64_t n = pushed_.load(std::memory_order_relaxed);  // only this thread stores it
    Slot& slot = slots_[n % kSlots];
    slot.frame.store(frame, std::memory_order_relaxed);
    slot.time.store(time, std::memory_order_relaxed);
    pushed_.store(n + 1, std::memory_order_release);  // publishes the slot
  }

  // Calls take(BlockTime) for each observation not seen yet, oldest first.
  template <class Take>
  void drain(Take&& take) noexcept {
    const std::uint64_t end = pushed_.load(std::memory_order_acquire);
    if (end - taken_ > kSlots) {  // lapped: the oldest are gone
      skipped_.store(skipped_.load(std::memory_order_relaxed) + (end - kSlots / 2 - taken_), std::memory_order_relaxed);
      taken_ = end - kSlots / 2;
    }
    for (; taken_ < end; ++taken_) {
      const Slot& slot = slots_[taken_ % kSlots];
      const BlockTime observed{static_cast<double>(slot.frame.load(std::memory_order_relaxed)),
                               slot.time.load(std::memory_order_relaxed)};
      // The producer may have lapped this slot while we read it: then drop it.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (pushed_.load(std::memory_order_relaxed) - taken_ > kSlots) continue;
      take(observed);
    }
  }

  std::uint64_t pushed() const noexcept { return pushed_.load(std::memory_order_relaxed); }
  std::uint64_t skipped() const noexcept { return skipped_.load(std::memory_order_relaxed); }

  void reset() noexcept {
    pushed_.store(0, std::memory_order_relaxed);
    skipped_.store(0, std::memory_order_relaxed);
    taken_ = 0;
  }

 private:
  struct Slot {
    std::atomic<std::int64_t> frame{0};
    std::atomic<double> time{0.0};
  };
  std::array<Slot, kSlots> slots_{};
  std::atomic<std::uint64_t> pushed_{0};
  std::atomic<std::uint64_t> skipped_{0};  // written by the consumer only
  std::uint64_t taken_ = 0;                // consumer's
};

}  // namespace audioring
