// RingStorage: what a FrameRing lives in, and all it knows of it (as
// Agrona's receivers know only an AtomicBuffer):
//  - the frames: 2 x capacity x frame_bytes addressable bytes, byte i and
//    byte i + capacity x frame_bytes holding the same value (ring_memory.hpp),
//    mirrored by the kernel or, for plain memory, by the producer writing both;
//  - the counters its producer and readers communicate through, with the
//    doorbell's futex word (ring_control.hpp), and the first frame of the
//    current recording (FrameRing::first());
//  - how the doorbell reaches waiters (doorbell.hpp's scope), which also says
//    whether this process may write: read_only means another process produces;
//  - liveness: what only a ring shared with other processes has (its
//    producer's state changes and death, the counters it publishes), asked
//    through virtual functions.
//
// Two kinds: PrivateRingStorage (below), a ring of this process, owning its
// memory and counters; and SharedRing (shared_ring.hpp), the mapping of a
// ring shared by name, whose counters live in the mapped header.
//
// The layout (everything but liveness) is fixed before any FrameRing is made
// over the storage and never changes after: FrameRing copies it into members
// of its own, so that write() makes no virtual call and follows no extra
// pointer. Liveness is asked on the wait path only (FrameRing::interrupts(),
// wait_for_frame()), and published_counters() when a Capture or Converter is
// made.
//
// Threading: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include "audioring/doorbell.hpp"
#include "audioring/ring_control.hpp"
#include "audioring/ring_memory.hpp"

namespace audioring {

struct RecordingCounters;  // shared_header.hpp

class RingStorage {
 public:
  using Frame = std::int64_t;

  virtual ~RingStorage() = default;
  RingStorage(const RingStorage&) = delete;
  RingStorage& operator=(const RingStorage&) = delete;

  // ---- layout ---------------------------------------------------------------
  std::byte* data() const noexcept { return data_; }
  Frame capacity() const noexcept { return capacity_; }  // > 0; capacity x frame_bytes is a multiple of the page size
  std::size_t frame_bytes() const noexcept { return frame_bytes_; }  // > 0
  MemoryKind kind() const noexcept { return kind_; }
  bool mirrored() const noexcept { return kind_ != MemoryKind::plain; }
  RingControl& control() const noexcept { return *control_; }
  std::atomic<Frame>& first_frame() const noexcept { return *first_frame_; }
  Doorbell::Scope doorbell_scope() const noexcept { return scope_; }
  // Another process produces: this one may only load (a reader's read-only
  // mapping of a shared ring).
  bool read_only() const noexcept { return scope_ == Doorbell::Scope::read_only; }
  // The largest counter value a read-only storage's maker accepted (its
  // writer is another process, and a process of the same user can rewrite
  // the counters): FrameRing clamps what it loads from one to [0, max_frame()].
  Frame max_frame() const noexcept { return max_frame_; }

  // ---- liveness -------------------------------------------------------------
  // How often the producer's state changed (a shared ring's set_state()).
  virtual std::uint64_t state_changes() const noexcept = 0;
  // Whether the producer, another process, was found gone: it will never
  // write again. May make system calls (at most every so often); once true,
  // always true.
  virtual bool producer_found_dead() const noexcept = 0;
  // Whether producer_found_dead() has returned true (no system call).
  virtual bool known_dead() const noexcept = 0;
  // Where a Capture or Converter of this ring's producer counts, so that
  // readers of other processes see it, or null (nobody else can read them).
  virtual RecordingCounters* published_counters() const noexcept = 0;

 protected:
  RingStorage(Doorbell::Scope scope, Frame max_frame) noexcept : scope_(scope), max_frame_(max_frame) {}

  // Sets the layout once the memory is there; before any FrameRing is made
  // over this storage, and only then.
  void lay_out(std::byte* data, Frame capacity, std::size_t frame_bytes, MemoryKind kind, RingControl& control,
               std::atomic<Frame>& first_frame) noexcept {
    data_ = data;
    capacity_ = capacity;
    frame_bytes_ = frame_bytes;
    kind_ = kind;
    control_ = &control;
    first_frame_ = &first_frame;
  }

 private:
  std::byte* data_ = nullptr;
  Frame capacity_ = 0;
  std::size_t frame_bytes_ = 0;
  MemoryKind kind_ = MemoryKind::plain;
  RingControl* control_ = nullptr;
  std::atomic<Frame>* first_frame_ = nullptr;
  const Doorbell::Scope scope_;
  const Frame max_frame_;
};

// A ring of this process: RingMemory for the frames, its counters in this
// object (their own cache lines, see ring_control.hpp). Its producer lives in
// this process, so it has no liveness to report.
class PrivateRingStorage final : public RingStorage {
 public:
  // `capacity` must already be rounded (FrameRing::rounded_capacity): the
  // memory needs capacity x frame_bytes to be a multiple of the page size.
  PrivateRingStorage(std::size_t frame_bytes, Frame capacity, MemoryRequest request)
      : RingStorage(Doorbell::Scope::process, std::numeric_limits<Frame>::max()),
        memory_(RingMemory::create(static_cast<std::size_t>(capacity) * frame_bytes, request)) {
    lay_out(memory_->data(), capacity, frame_bytes, memory_->kind(), control_, first_frame_);
  }

  std::uint64_t state_changes() const noexcept override { return 0; }
  bool producer_found_dead() const noexcept override { return false; }
  bool known_dead() const noexcept override { return false; }
  RecordingCounters* published_counters() const noexcept override { return nullptr; }

 private:
  const std::shared_ptr<RingMemory> memory_;
  RingControl control_;
  alignas(64) std::atomic<Frame> first_frame_{0};  // stored only by clear()
};

}  // namespace audioring
