// RingControl: what a FrameRing's producer and its readers communicate
// through: the two frame counters of the protocol in frame_ring.hpp and the
// doorbell's futex word (doorbell.hpp). A private ring keeps it in its own
// memory; a shared ring keeps it in its header (shared_header.hpp), which
// other processes map read-only, so it is standard layout and holds only
// lock-free (hence address-free) atomics: they mean the same in every
// process that maps them.
//
// Each field has its own cache line: readers poll written and load intent,
// waiters sleep on the doorbell word; none of them shares a line with
// anything the producer's other code touches.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace audioring {

struct RingControl {
  // Invariant: written <= intent <= written + (frames of the write in progress).
  alignas(64) std::atomic<std::int64_t> intent{0};     // end of the write about to happen
  alignas(64) std::atomic<std::int64_t> written{0};    // end of the last completed write
  alignas(64) std::atomic<std::uint32_t> doorbell{0};  // bumped after every publish: the futex word
};

static_assert(std::is_standard_layout_v<RingControl>, "RingControl is mapped by other processes");
static_assert(std::atomic<std::int64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free,
              "shared counters must be lock-free atomics (address-free)");
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "the futex needs a plain 32-bit word");
static_assert(offsetof(RingControl, intent) == 0 && offsetof(RingControl, written) == 64 &&
                  offsetof(RingControl, doorbell) == 128 && sizeof(RingControl) == 192,
              "RingControl's layout is part of the shared ring format");

}  // namespace audioring
