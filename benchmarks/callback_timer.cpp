// callback_timer: a tiny C library that benchmarks/run.py loads with ctypes to
// time PortAudio stream callbacks exactly as PortAudio calls them, and
// std::memcpy as the yardstick for ingest rates.
//
// ar_time_callback() calls any PaStreamCallback-shaped function pointer with a
// user-data pointer, an input block and a PaStreamCallbackTimeInfo, the way
// PortAudio's audio thread does. benchmarks/cases/callback.py hands it the
// callbacks the recorders really installed, from the installed packages:
//   - audioring: audioring._core's audioring_capture_callback with the
//     recorder's Capture* (no Python, no GIL);
//   - rtmixer: its C `callback` with the Recorder's `struct state*`;
//   - tflite-support's AudioRecord and the sounddevice + queue recipe: the
//     cffi trampoline sounddevice made for their Python callbacks
//     (`InputStream._callback`). ctypes releases the GIL around the call, so
//     the trampoline takes the GIL itself, as it does on PortAudio's thread.
// Nothing is re-implemented: the timer only calls.
//
// ar_paced_callback() plays a device instead: one block per period, paced by
// the clock, each stamped with the time it was delivered (the share case's
// wake-up latencies with the producer audioring really has: its callback).
//
// Threading: call from one thread at a time. No allocation inside the timed
// loops.
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

// PortAudio's PaStreamCallbackTimeInfo: three PaTime (double).
struct TimeInfo {
  double inputBufferAdcTime;
  double currentTime;
  double outputBufferDacTime;
};

using StreamCallback = int (*)(const void*, void*, unsigned long, const TimeInfo*, unsigned long, void*);
using Clock = std::chrono::steady_clock;

// Keeps the compiler from dropping or sinking stores to memory reachable from p.
inline void escape(const void* p) noexcept { asm volatile("" : : "g"(p) : "memory"); }

std::int64_t ns_since(Clock::time_point start) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

}  // namespace

extern "C" {

// Runs `batches` batches of `calls` callback invocations each and stores each
// batch's elapsed nanoseconds in batch_ns[0..batches). Each invocation gets
// `input` (frames x the stream's frame bytes), no output, status flags 0, and
// a time info whose three times equal *clock, which then advances by
// frames / rate (so the stream clock runs as PortAudio's would).
// Returns 0, or the first non-zero value a callback returned (paComplete = 1,
// paAbort = 2), after which it stops and leaves the rest of batch_ns as -1.
int ar_time_callback(void* callback, void* user_data, const void* input, unsigned long frames, double rate,
                     double* clock, long long calls, long long batches, long long* batch_ns) {
  const auto fn = reinterpret_cast<StreamCallback>(callback);
  const double step = static_cast<double>(frames) / rate;
  for (long long b = 0; b < batches; ++b) batch_ns[b] = -1;
  for (long long b = 0; b < batches; ++b) {
    int result = 0;
    const Clock::time_point start = Clock::now();
    for (long long i = 0; i < calls; ++i) {
      const TimeInfo time{*clock, *clock, *clock};
      result = fn(input, nullptr, frames, &time, 0, user_data);
      *clock += step;
      if (result != 0) break;
    }
    batch_ns[b] = ns_since(start);
    if (result != 0) return result;
  }
  return 0;
}

// std::memcpy of `block_bytes` blocks from one source buffer into a buffer of
// `ring_bytes`, cycling through it as a ring does (a block crossing the end is
// split in two), until `total_bytes` are copied; `reps` times. Stores each
// repetition's nanoseconds in rep_ns. Returns 0, or -1 for bad sizes.
int ar_memcpy_ns(std::size_t block_bytes, std::size_t ring_bytes, std::size_t total_bytes, int reps,
                 long long* rep_ns) {
  if (block_bytes == 0 || ring_bytes < block_bytes || reps <= 0) return -1;
  std::vector<unsigned char> source(block_bytes, 1);
  std::vector<unsigned char> ring(ring_bytes, 0);  // value-initialized: every page touched before timing
  std::size_t position = 0;
  for (int r = 0; r < reps; ++r) {
    const Clock::time_point start = Clock::now();
    for (std::size_t done = 0; done < total_bytes; done += block_bytes) {
      const std::size_t first = ring_bytes - position < block_bytes ? ring_bytes - position : block_bytes;
      std::memcpy(ring.data() + position, source.data(), first);
      if (first < block_bytes) std::memcpy(ring.data(), source.data() + first, block_bytes - first);
      position = (position + block_bytes) % ring_bytes;
      escape(ring.data());
    }
    rep_ns[r] = ns_since(start);
  }
  return 0;
}

// Calls `callback` `count` times as a device would: block i is due at
// start + (i + 1) * period_ns (CLOCK_MONOTONIC, slept to with
// clock_nanosleep; `late` counts blocks whose due time had passed). Before
// each call every frame of `input` (frames x 8 bytes: two int32 channels)
// is set to the int64 CLOCK_MONOTONIC nanoseconds of that moment, the clock
// of Python's time.monotonic_ns(); stamps[i] is that stamp and publish_ns[i]
// the nanoseconds from it to the callback's return. The time info advances as
// in ar_time_callback. Returns 0, or the first non-zero value a callback
// returned (then stops).
int ar_paced_callback(void* callback, void* user_data, void* input, unsigned long frames, double rate, double* clock,
                      long long count, long long period_ns, long long* stamps, long long* publish_ns,
                      long long* late) {
  const auto fn = reinterpret_cast<StreamCallback>(callback);
  const double step = static_cast<double>(frames) / rate;
  auto* stamp_frames = static_cast<std::int64_t*>(input);
  const auto monotonic_ns = [] {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<long long>(t.tv_sec) * 1000000000 + t.tv_nsec;
  };
  *late = 0;
  long long due = monotonic_ns();
  for (long long i = 0; i < count; ++i) {
    due += period_ns;
    if (monotonic_ns() >= due) {
      ++*late;
    } else {
      const timespec at{static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
      }
    }
    const long long stamp = monotonic_ns();
    for (unsigned long f = 0; f < frames; ++f) stamp_frames[f] = stamp;
    const TimeInfo time{*clock, *clock, *clock};
    const int result = fn(input, nullptr, frames, &time, 0, user_data);
    publish_ns[i] = monotonic_ns() - stamp;
    stamps[i] = stamp;
    *clock += step;
    if (result != 0) return result;
  }
  return 0;
}

}  // extern "C"
