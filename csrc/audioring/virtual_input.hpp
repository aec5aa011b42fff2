// VirtualInput: a built-in input device. A native thread generates blocks
// (sine, white noise or a frame-counter ramp) and hands each to a
// PaStreamCallback-shaped function, exactly as PortAudio would, either paced
// in real time (optionally sped up) or free-running as fast as it can.
//
// Threading: start(), stop() and the destructor from one controlling thread;
// active(), started() and frames_generated() from any thread. The generator
// thread owns the block buffer; it allocates nothing after start().
//
// Fork: the generator thread does not exist in a forked child. There start()
// throws std::logic_error (the child must not write into its parent's
// capture), and stop() and the destructor leave the thread alone instead of
// joining it (a join would wait forever).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "audioring/capture.hpp"
#include "audioring/fork_guard.hpp"
#include "audioring/sample_format.hpp"

namespace audioring {

enum class Signal { sine, noise, ramp };

struct VirtualInputConfig {
  Signal signal = Signal::sine;
  std::vector<double> frequencies;  // Hz, one per channel (sine only)
  double amplitude = 0.5;           // full scale = 1.0 (sine, noise)
  int channels = 1;
  double rate = 48000.0;            // frames per second of the virtual device
  unsigned long blocksize = 256;    // frames per callback
  double speed = 1.0;               // pacing: 1 = real time, 10 = ten times faster, 0 = free-running
  std::int64_t frame_limit = -1;    // stop after this many frames; -1 = never
  SampleFormat format = SampleFormat::float32;
  std::uint64_t seed = 1;           // noise
};

using StreamCallback = int (*)(const void*, void*, unsigned long, const PaTimeInfo*, unsigned long, void*);

class VirtualInput {
 public:
  // Throws std::invalid_argument for an inconsistent config, OutOfMemory
  // (ring_memory.hpp) if the block buffer does not fit in the available memory.
  VirtualInput(VirtualInputConfig config, StreamCallback callback, void* user_data);
  ~VirtualInput() { stop(); }
  VirtualInput(const VirtualInput&) = delete;
  VirtualInput& operator=(const VirtualInput&) = delete;

  // Starts generating from frame 0 of the signal, or continues after stop().
  // A no-op while started. Throws std::system_error if the thread cannot be
  // made (then nothing changed: still stopped), std::logic_error in a forked child.
  void start();
  // Stops and joins the generator thread; no callback runs after it returns.
  void stop() noexcept;
  // Whether the generator thread runs (false once it reached the frame limit).
  bool active() const noexcept { return running_.load(std::memory_order_acquire); }
  // Whether start() was called and stop() not since (true after the frame limit too).
  bool started() const noexcept { return started_.load(std::memory_order_acquire); }
  // Whether this process is a fork of the one that made the input.
  bool forked() const noexcept { return owner_.forked(); }
  std::int64_t frames_generated() const noexcept { return generated_.load(std::memory_order_relaxed); }
  // Seconds on the device's clock (what it reports as currentTime).
  double time() const noexcept;
  // When (time()'s clock) its frame 0 was captured, as paced since the last
  // start(): its true clock, to check alignments against. 0 until started
  // and when free-running.
  double frame0_time() const noexcept { return frame0_time_.load(std::memory_order_acquire); }

 private:
  void run() noexcept;
  void fill(unsigned long frames) noexcept;

  const VirtualInputConfig config_;
  const StreamCallback callback_;
  void* const user_data_;
  std::vector<unsigned char> block_;       // blocksize x channels samples, allocated once
  std::vector<double> phase_step_;         // radians per frame, per channel
  std::uint64_t noise_state_;              // xorshift64 state, generator thread only
  std::atomic<std::int64_t> generated_{0};  // frames handed to the callback; written by the generator only
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};       // true from start() until the thread ends
  std::atomic<bool> started_{false};       // true from start() until stop()
  std::atomic<double> frame0_time_{0.0};   // written by the generator thread when it starts
  // On the heap so that a forked child can let go of it without touching the
  // thread (a joinable std::thread must be joined or detached).
  std::unique_ptr<std::thread> thread_;
  const ForkGuard owner_;
};

}  // namespace audioring
