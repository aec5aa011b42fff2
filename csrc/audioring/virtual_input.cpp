#include "audioring/virtual_input.hpp"

#include "audioring/ring_memory.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace audioring {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kTwoPi = 6.283185307179586476925286766559;

double seconds_since_epoch(Clock::time_point t) noexcept {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// A full-scale sample in [-1, 1] in the device's format (PortAudio's scaling).
template <class T>
T from_unit(double x) noexcept {
  x = std::clamp(x, -1.0, 1.0);
  if constexpr (std::is_same_v<T, float>) return static_cast<float>(x);
  if constexpr (std::is_same_v<T, std::uint8_t>) return static_cast<std::uint8_t>(std::lrint(128.0 + x * 127.0));
  if constexpr (std::is_same_v<T, std::int8_t>) return static_cast<std::int8_t>(std::lrint(x * 127.0));
  if constexpr (std::is_same_v<T, std::int16_t>) return static_cast<std::int16_t>(std::lrint(x * 32767.0));
  if constexpr (std::is_same_v<T, std::int32_t>) return static_cast<std::int32_t>(std::llrint(x * 2147483647.0));
}

// The ramp's value for frame `frame`: the frame number modulo the largest
// power of two the format holds exactly (2^24 for float32, 2^bits otherwise,
// stored as the two's-complement bit pattern).
template <class T>
T ramp_value(std::int64_t frame) noexcept {
  const auto counter = static_cast<std::uint64_t>(frame);
  if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>(counter & ((1u << 24) - 1));
  } else {
    const auto bits = static_cast<std::make_unsigned_t<T>>(counter);
    T value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
}

}  // namespace

VirtualInput::VirtualInput(VirtualInputConfig config, StreamCallback callback, void* user_data)
    : config_(std::move(config)), callback_(callback), user_data_(user_data), noise_state_(config_.seed | 1) {
  if (config_.channels < 1) throw std::invalid_argument("channels must be >= 1");
  if (!(config_.rate > 0) || !std::isfinite(config_.rate)) throw std::invalid_argument("rate must be > 0");
  if (config_.blocksize < 1) throw std::invalid_argument("blocksize must be >= 1");
  if (!(config_.speed >= 0) || !std::isfinite(config_.speed)) throw std::invalid_argument("speed must be >= 0");
  if (config_.signal == Signal::sine && config_.frequencies.size() != static_cast<std::size_t>(config_.channels)) {
    throw std::invalid_argument("need one frequency per channel, got " + std::to_string(config_.frequencies.size()) +
                                " for " + std::to_string(config_.channels) + " channels");
  }
  if (callback_ == nullptr) throw std::invalid_argument("callback must not be null");
  const std::size_t frame_bytes = static_cast<std::size_t>(config_.channels) * format_info(config_.format).bytes;
  if (config_.blocksize > SIZE_MAX / 2 / frame_bytes) {
    throw OutOfMemory("virtual input block of " + std::to_string(config_.blocksize) + " frames x " +
                      std::to_string(frame_bytes) + " bytes is more than the address space holds");
  }
  const std::size_t block_bytes = config_.blocksize * frame_bytes;
  check_fits_in_memory(block_bytes, "virtual input block buffer (blocksize " + std::to_string(config_.blocksize) +
                                        " frames x " + std::to_string(frame_bytes) + " bytes)");
  block_.resize(block_bytes);
  phase_step_.resize(config_.frequencies.size());
  std::transform(config_.frequencies.begin(), config_.frequencies.end(), phase_step_.begin(),
                 [rate = config_.rate](double f) { return f / rate; });
}

void VirtualInput::start() {
  if (owner_.forked()) {
    throw std::logic_error("a virtual input cannot be started in a forked child of the process that made it");
  }
  if (started_.load(std::memory_order_acquire) && running_.load(std::memory_order_acquire)) return;
  if (thread_ && thread_->joinable()) thread_->join();  // a previous run that ended by its frame limit
  thread_.reset();
  stop_requested_.store(false, std::memory_order_relaxed);
  running_.store(true, std::memory_order_release);
  try {
    thread_ = std::make_unique<std::thread>([this] { run(); });
  } catch (...) {  // std::system_error (EAGAIN: no thread or stack memory left) or std::bad_alloc
    running_.store(false, std::memory_order_release);
    throw;
  }
  started_.store(true, std::memory_order_release);
}

void VirtualInput::stop() noexcept {
  stop_requested_.store(true, std::memory_order_relaxed);
  if (owner_.forked()) {
    // The thread is the parent's: it does not exist here, and joining it
    // would wait forever. Let go of the handle (a few bytes) untouched.
    static_cast<void>(thread_.release());
  } else if (thread_ && thread_->joinable()) {
    thread_->join();
  }
  running_.store(false, std::memory_order_release);
  started_.store(false, std::memory_order_release);
}

double VirtualInput::time() const noexcept { return seconds_since_epoch(Clock::now()); }

void VirtualInput::run() noexcept {
  const std::int64_t first = generated_.load(std::memory_order_relaxed);
  const Clock::time_point origin = Clock::now();
  const double frames_per_second = config_.rate * config_.speed;  // 0 = free-running
  if (frames_per_second > 0) {
    frame0_time_.store(seconds_since_epoch(origin) - static_cast<double>(first) / frames_per_second,
                       std::memory_order_release);
  }
  const auto at_frame = [&](std::int64_t frame) {  // when `frame` (relative to first) is due
    // Saturate at ~30 years: with a tiny speed (e.g. 1e-300) the quotient is
    // far beyond what the clock's int64 nanoseconds hold, and converting it
    // would be undefined (on x86 it wrapped to the past: the input then
    // free-ran instead of crawling).
    const double seconds = std::min(static_cast<double>(frame) / frames_per_second, 1e9);
    return origin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  };
  while (!stop_requested_.load(std::memory_order_relaxed)) {
    const std::int64_t done = generated_.load(std::memory_order_relaxed);
    auto frames = static_cast<std::int64_t>(config_.blocksize);
    if (config_.frame_limit >= 0) frames = std::min(frames, config_.frame_limit - done);
    if (frames <= 0) break;
    PaTimeInfo timing{};
    if (frames_per_second > 0) {
      // A device delivers a block once its last frame has been captured.
      const Clock::time_point due = at_frame(done - first + frames);
      for (Clock::time_point now = Clock::now(); now < due && !stop_requested_.load(std::memory_order_relaxed);
           now = Clock::now()) {
        std::this_thread::sleep_for(std::min<Clock::duration>(due - now, std::chrono::milliseconds(10)));
      }
      if (stop_requested_.load(std::memory_order_relaxed)) break;
      timing.inputBufferAdcTime = seconds_since_epoch(at_frame(done - first));
    } else {
      timing.inputBufferAdcTime = seconds_since_epoch(Clock::now());
    }
    timing.currentTime = seconds_since_epoch(Clock::now());
    fill(static_cast<unsigned long>(frames));
    callback_(block_.data(), nullptr, static_cast<unsigned long>(frames), &timing, 0, user_data_);
    generated_.store(done + frames, std::memory_order_relaxed);
  }
  running_.store(false, std::memory_order_release);
}

void VirtualInput::fill(unsigned long frames) noexcept {
  const auto channels = static_cast<std::size_t>(config_.channels);
  const std::int64_t first = generated_.load(std::memory_order_relaxed);
  const auto generate = [&](auto zero) {
    using T = decltype(zero);
    for (std::size_t i = 0; i < frames; ++i) {
      const std::int64_t frame = first + static_cast<std::int64_t>(i);
      for (std::size_t c = 0; c < channels; ++c) {
        T value;
        switch (config_.signal) {
          case Signal::sine: {
            // Phase from the frame number, not accumulated, so it never drifts.
            const double cycles = std::fmod(phase_step_[c] * static_cast<double>(frame), 1.0);
            value = from_unit<T>(config_.amplitude * std::sin(kTwoPi * cycles));
            break;
          }
          case Signal::noise: {
            noise_state_ ^= noise_state_ >> 12;  // xorshift64*
            noise_state_ ^= noise_state_ << 25;
            noise_state_ ^= noise_state_ >> 27;
            const std::uint64_t bits = noise_state_ * 0x2545F4914F6CDD1DULL;
            const double unit = static_cast<double>(bits >> 11) * (2.0 / 9007199254740992.0) - 1.0;
            value = from_unit<T>(config_.amplitude * unit);
            break;
          }
          case Signal::ramp:
          default:
            value = ramp_value<T>(frame);
            break;
        }
        std::memcpy(block_.data() + (i * channels + c) * sizeof(T), &value, sizeof(T));
      }
    }
  };
  switch (config_.format) {
    case SampleFormat::float32:
      return generate(float{});
    case SampleFormat::int32:
      return generate(std::int32_t{});
    case SampleFormat::int16:
      return generate(std::int16_t{});
    case SampleFormat::int8:
      return generate(std::int8_t{});
    case SampleFormat::uint8:
      return generate(std::uint8_t{});
  }
}

}  // namespace audioring
