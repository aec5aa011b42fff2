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
#include <stdexcept>

#include "audioring/block_times.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/recording_counters.hpp"
#include "audioring/shared_header.hpp"

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

class Capture {
 public:
  // Writes into `ring`. Counts into the shared header of `publish_to` if that
  // ring is shared (a converting recording: the device's ring is private,
  // the recording's ring is shared), else into `ring`'s if it is shared, else
  // privately; a shared header's readers then see stats() and anchor().
  // Throws std::invalid_argument for a read-only (attached) ring.
  explicit Capture(std::shared_ptr<FrameRing> ring, std::shared_ptr<FrameRing> publish_to = nullptr)
      : ring_(std::move(ring)),
        publish_to_(std::move(publish_to)),
        shared_(shared_home(*ring_, publish_to_.get())),
        counters_(shared_ != nullptr ? &shared_->capture : &own_counters_) {
    counters_->reset();
    if (shared_ != nullptr) shared_->published.store(1, std::memory_order_release);  // readers' stats() from now on
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  const std::shared_ptr<FrameRing>& ring() const noexcept { return ring_; }
  // Where this capture counts (see recording_counters.hpp).
  const CaptureCounters& counters() const noexcept { return *counters_; }
  // The shared header's counters it counts in, or null.
  RecordingCounters* shared_counters() const noexcept { return shared_; }

  // From now on each block also logs when it was captured (block_times.hpp),
  // for an aligner estimating this device's clock. Call before the device starts.
  void track_block_times() {
    if (!times_) times_ = std::make_unique<BlockTimes>();
  }
  // The log, or null if not tracked. Its consumer is the aligner's thread.
  BlockTimes* block_times() const noexcept { return times_.get(); }

  // The real-time path. `input` may be null (then silence is recorded, so the
  // frame count stays true to the stream's clock).
  void on_block(const void* input, unsigned long frames, const PaTimeInfo* time, unsigned long status) noexcept {
    CaptureCounters& c = *counters_;
    const std::uint64_t n = frames;
    if (times_) log_block_time(frames, time);
    if (c.anchor_valid.load(std::memory_order_relaxed) == 0 && time != nullptr) {
      // Some host APIs (e.g. ALSA through PulseAudio on some versions) report 0.
      c.anchor_time.store(time->inputBufferAdcTime != 0.0 ? time->inputBufferAdcTime : time->currentTime,
                          std::memory_order_relaxed);
      c.anchor_frame.store(ring_->written(), std::memory_order_relaxed);
      c.anchor_valid.store(1, std::memory_order_release);  // publishes the two fields above
    }
    ring_->write(input, static_cast<FrameRing::Frame>(frames));
    bump(c.callbacks, 1);
    bump(c.frames, n);
    if (status & kInputOverflow) bump(c.input_overflows, 1);
    if (status & kInputUnderflow) bump(c.input_underflows, 1);
    const std::uint64_t lo = c.min_block.load(std::memory_order_relaxed);
    if (lo == 0 || n < lo) c.min_block.store(n, std::memory_order_relaxed);
    if (n > c.max_block.load(std::memory_order_relaxed)) c.max_block.store(n, std::memory_order_relaxed);
  }

  CaptureStats stats() const noexcept { return counters_->stats(); }
  TimeAnchor anchor() const noexcept { return counters_->anchor(); }

  // Zeroes the counters and forgets the time anchor. Not concurrent with on_block().
  void reset() noexcept {
    counters_->reset();
    if (times_) times_->reset();
  }

 private:
  // A host API that says how long ago the block's first frame reached the
  // ADC (currentTime - inputBufferAdcTime, a difference: valid whatever its
  // clock) dates that frame; one that does not (JACK's reports 0 latency)
  // dates the block's end: its last frame was captured by the callback.
  void log_block_time(unsigned long frames, const PaTimeInfo* time) noexcept {
    const double now = steady_seconds();
    const std::int64_t first = ring_->written();
    const double age = time != nullptr && time->inputBufferAdcTime != 0.0
                           ? time->currentTime - time->inputBufferAdcTime
                           : 0.0;
    if (age > 0.0 && age < 1.0) {
      times_->push(first, now - age);
    } else {
      times_->push(first + static_cast<std::int64_t>(frames), now);
    }
  }

  static RecordingCounters* shared_home(const FrameRing& ring, const FrameRing* publish_to) {
    if (ring.read_only() || (publish_to != nullptr && publish_to->read_only())) {
      throw std::invalid_argument("a Capture cannot write or count into a ring attached read-only");
    }
    RecordingCounters* home = publish_to != nullptr ? publish_to->storage().published_counters() : nullptr;
    return home != nullptr ? home : ring.storage().published_counters();
  }

  const std::shared_ptr<FrameRing> ring_;
  const std::shared_ptr<FrameRing> publish_to_;  // keeps the header shared_ points into alive
  RecordingCounters* const shared_;              // the shared header's counters, or null
  CaptureCounters own_counters_;
  CaptureCounters* const counters_;  // &shared_->capture, or &own_counters_
  std::unique_ptr<BlockTimes> times_;  // set before the device starts; the callback only pushes
};

}  // namespace audioring

// PaStreamCallback-compatible entry point; `user_data` is a Capture*.
extern "C" int audioring_capture_callback(const void* input, void* output, unsigned long frame_count,
                                          const audioring::PaTimeInfo* time_info, unsigned long status_flags,
                                          void* user_data);
