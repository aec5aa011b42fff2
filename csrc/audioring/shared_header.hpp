// The layout of a shared ring's file, /dev/shm/audioring-<euid>-<name>
// (shared_ring.hpp makes, opens and maps it):
//
//   [0, header_bytes)                         SharedHeader, then zeros
//   [header_bytes, header_bytes + data_bytes) the frames: capacity x frame_bytes
//
// mapped as the header once, then the frames twice back to back (the mirror
// of ring_memory.hpp, so that every window is contiguous).
//
// The producer fills every field before it stores `version`, last, with
// release: a version of 0 means the file is still being made. Readers check
// every field before they trust any (shared_ring.cpp) and copy the immutable
// ones, so that a later change to the header (a bug, or another process of
// the same user) cannot move their bounds. The file's size is another
// matter: a process of the same user that shrinks the file (ftruncate) takes
// the pages away under every mapping, and the next access to them kills the
// reader (and the producer) with SIGBUS. Nothing in a regular tmpfs file can
// prevent that (only memfds take seals, and they have no name to share);
// the same user is one trust domain. Other users cannot open the file at
// all (mode 0600, checked by readers).
//
// Standard layout; the atomics are lock-free, hence address-free: they mean
// the same in every process that maps them. Readers map the file read-only,
// so they only ever load.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "audioring/recording_counters.hpp"
#include "audioring/ring_control.hpp"

namespace audioring {

// What the producer says the recording is doing (set_state()); readers
// treat every change as an interrupt of their waits.
enum class SharedState : std::uint32_t { idle = 0, recording = 1, stopped = 2, closed = 3 };
inline constexpr std::uint32_t kSharedStates = 4;

inline constexpr char kSharedMagic[8] = {'a', 'u', 'd', 'i', 'o', 'r', 'n', 'g'};
inline constexpr std::uint32_t kSharedVersion = 1;
inline constexpr std::uint32_t kSharedMaxChannels = 1024;
// Frame numbers in the header beyond this are not sane (2^62 frames at 384
// kHz is 380,000 years), and arithmetic on saner ones cannot overflow.
inline constexpr std::int64_t kSharedMaxFrame = std::int64_t{1} << 62;

// The recording's counters (recording_counters.hpp), for readers' stats()
// and time anchor. Each set on its own cache lines: the callback thread
// writes `capture`, the converter thread `converter`.
struct RecordingCounters {
  std::atomic<std::uint32_t> published{0};   // 1 once a Capture counts here (release)
  std::atomic<std::uint32_t> converting{0};  // 1 once a Converter counts here (release)
  std::atomic<double> input_rate{0.0};       // the device's rate, when converting (stored before `converting`)
  alignas(64) CaptureCounters capture;
  alignas(64) ConverterCounters converter;
};

// What a shared recording's readers report: the counting process's
// functions (recording_counters.hpp) on the header's counters.
inline bool published(const RecordingCounters& r) noexcept {
  return r.published.load(std::memory_order_acquire) == 1;
}
inline const ConverterCounters* conversion(const RecordingCounters& r) noexcept {
  return r.converting.load(std::memory_order_acquire) == 1 ? &r.converter : nullptr;
}
inline RecordingStats recording_stats(const RecordingCounters& r) noexcept {
  return recording_stats(r.capture, conversion(r));
}
inline TimeAnchor recording_anchor(const RecordingCounters& r) noexcept {
  const ConverterCounters* converter = conversion(r);  // acquire: orders the load of input_rate
  return recording_anchor(r.capture, converter, r.input_rate.load(std::memory_order_relaxed));
}

struct SharedHeader {
  char magic[8] = {};                           // kSharedMagic
  std::atomic<std::uint32_t> version{0};        // kSharedVersion, stored last; 0 while being made
  std::uint32_t channels = 0;                   // 1..kSharedMaxChannels
  std::uint64_t header_bytes = 0;               // a multiple of the page size, >= sizeof(SharedHeader)
  std::uint64_t frame_bytes = 0;                // channels x the format's item size
  std::uint32_t format = 0;                     // SampleFormat
  std::uint32_t sampling_rate = 0;              // frames per second; 0 = unknown (a plain ring)
  std::int64_t capacity = 0;                    // frames, >= 1
  std::uint64_t data_offset = 0;                // == header_bytes
  std::uint64_t data_bytes = 0;                 // capacity x frame_bytes, a multiple of the page size
  std::int64_t producer_pid = 0;                // the process that made the file
  std::uint32_t producer_uid = 0;               // its effective user, == the file's owner
  std::atomic<std::uint32_t> state{0};          // SharedState
  std::atomic<std::int64_t> first_frame{0};     // the recording's first frame (FrameRing::first())
  std::atomic<std::uint64_t> state_changes{0};  // set_state() calls that changed `state`
  RingControl control;                          // FrameRing's counters and doorbell word
  alignas(64) RecordingCounters recording;
};

static_assert(std::is_standard_layout_v<SharedHeader> && std::is_standard_layout_v<RecordingCounters>,
              "the header is mapped by other processes");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free && std::atomic<double>::is_always_lock_free,
              "shared atomics must be lock-free (address-free)");
// The format, field by field: a change here is a new kSharedVersion.
static_assert(offsetof(SharedHeader, version) == 8 && offsetof(SharedHeader, channels) == 12 &&
                  offsetof(SharedHeader, header_bytes) == 16 && offsetof(SharedHeader, frame_bytes) == 24 &&
                  offsetof(SharedHeader, format) == 32 && offsetof(SharedHeader, sampling_rate) == 36 &&
                  offsetof(SharedHeader, capacity) == 40 && offsetof(SharedHeader, data_offset) == 48 &&
                  offsetof(SharedHeader, data_bytes) == 56 && offsetof(SharedHeader, producer_pid) == 64 &&
                  offsetof(SharedHeader, producer_uid) == 72 && offsetof(SharedHeader, state) == 76 &&
                  offsetof(SharedHeader, first_frame) == 80 && offsetof(SharedHeader, state_changes) == 88 &&
                  offsetof(SharedHeader, control) == 128 && offsetof(SharedHeader, recording) == 320,
              "SharedHeader's layout is the shared ring format (version 1)");
static_assert(offsetof(RecordingCounters, capture) == 64 && offsetof(RecordingCounters, converter) == 192 &&
                  sizeof(CaptureCounters) == 72 && sizeof(ConverterCounters) == 56,
              "RecordingCounters' layout is the shared ring format (version 1)");
static_assert(sizeof(SharedHeader) == 576 && sizeof(SharedHeader) <= 4096, "the header fits in the smallest page");

}  // namespace audioring
