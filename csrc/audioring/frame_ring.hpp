// FrameRing: a lock-free, single-producer ring of interleaved audio frames
// that always holds the latest `capacity` frames.
//
// Threading contract: ONE producer thread at a time calls write() and
// clear(); any number of reader threads call the const methods
// concurrently with it.
// After construction nothing allocates, locks or waits on the producer side:
// write() is one memcpy (two to four on plain memory) plus a few atomics,
// and on a shared ring a futex wake that never blocks (doorbell.hpp).
//
// A ring lives in a RingStorage (ring_storage.hpp): its memory, counters and
// doorbell scope, private to this process or shared with others. FrameRing
// knows nothing else of it: the protocol below is the same on both.
//
// Frames are numbered by a monotonic 64-bit counter that never wraps in
// practice (2^63 frames at 384 kHz is 760,000 years). Frame f lives in slot
// f mod capacity. Frames with negative numbers were never written and read as
// zeros, which is how a fresh or cleared ring presents "nothing recorded yet".
//
// The producer never waits for readers: when the ring is full it overwrites
// the oldest frames. Readers detect that instead, with loads only (a seqlock
// per window, as in Agrona's broadcast buffer), so that they never write to
// the producer's cache lines and can read a shared ring through a read-only
// mapping (shared_ring.hpp):
//   producer: intent = end (relaxed); release fence; copy frames;
//             written = end (release)
//   reader:   end = written (acquire); read window [s, s + n) with s + n <= end;
//             acquire fence; window intact  <=>  intent (relaxed) - s <= capacity
// Why this order suffices on weak memory models (ARM), in C++ terms
// ([atomics.fences]): if a load of the reader's, before its acquire fence,
// read a byte that a copy stored after the producer's release fence, the
// release fence synchronizes with the acquire fence. The producer's intent
// store (before its fence) then happens before the reader's intent load
// (after its fence), which reads that copy's `end` or a later value, and the
// window is judged overwritten. If no byte came from a newer copy, the bytes
// read are the ones written() published (its release/acquire pair orders
// them), whatever the check says: the check only errs on the safe side
// (a window a newer copy is about to reach is judged overwritten).
// Formally the argument needs the frame bytes to be relaxed atomics; they are
// plain memory moved with memcpy, so the reader's loads race with the
// producer's copy, as in every memcpy seqlock (Linux's, Folly's): their
// result is used only when the check says no copy touched them, and
// discarded otherwise. Such reads are wrapped in SpeculativeReads so that
// ThreadSanitizer ignores them and still checks everything else.
//
// ThreadSanitizer does not model standalone fences (GCC warns, -Wtsan).
// TSan builds run the same fences through TSan's runtime and model them with
// __tsan_release / __tsan_acquire on the intent counter: a reader's check
// then counts as synchronized with every copy the producer had begun, more
// than the fences promise. TSan may therefore miss a race behind a check, but
// reports none that the fences would not also exclude.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "audioring/doorbell.hpp"
#include "audioring/fork_guard.hpp"
#include "audioring/ring_control.hpp"
#include "audioring/ring_memory.hpp"
#include "audioring/ring_storage.hpp"

#if defined(__SANITIZE_THREAD__)
#define AUDIORING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AUDIORING_TSAN 1
#endif
#endif

#if defined(AUDIORING_TSAN)
#include <sanitizer/tsan_interface.h>
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
// The fence std::atomic_thread_fence becomes under TSan (executed, not
// modelled); declared here because GCC ships no header for it. TSan's memory
// orders have std::memory_order's values.
extern "C" void __tsan_atomic_thread_fence(int order);
#endif

namespace audioring {

// Marks reads whose result will be validated with FrameRing::intact() (see
// the top comment). A no-op outside ThreadSanitizer builds.
class SpeculativeReads {
 public:
#if defined(AUDIORING_TSAN)
  SpeculativeReads() noexcept { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~SpeculativeReads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#else
  SpeculativeReads() noexcept = default;
#endif
  SpeculativeReads(const SpeculativeReads&) = delete;
  SpeculativeReads& operator=(const SpeculativeReads&) = delete;
};

// The fences of the protocol in the top comment; `sync` is the intent
// counter, on which TSan builds model them.
inline void release_fence([[maybe_unused]] const void* sync) noexcept {
#if defined(AUDIORING_TSAN)
  __tsan_atomic_thread_fence(static_cast<int>(std::memory_order_release));
  __tsan_release(const_cast<void*>(sync));
#else
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

inline void acquire_fence([[maybe_unused]] const void* sync) noexcept {
#if defined(AUDIORING_TSAN)
  __tsan_atomic_thread_fence(static_cast<int>(std::memory_order_acquire));
  __tsan_acquire(const_cast<void*>(sync));
#else
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}

class FrameRing {
 public:
  using Frame = std::int64_t;
  using Clock = Doorbell::Clock;

  // The smallest capacity >= min_capacity whose byte size is a multiple of
  // the page size (needed to map the memory twice). Throws
  // std::invalid_argument for sizes < 1 and OutOfMemory for sizes whose byte
  // count does not fit in 64 bits / the address space.
  static Frame rounded_capacity(std::size_t frame_bytes, Frame min_capacity) {
    if (frame_bytes == 0) throw std::invalid_argument("frame size must be at least 1 byte");
    if (min_capacity < 1) {
      throw std::invalid_argument("capacity must be at least 1 frame, got " + std::to_string(min_capacity));
    }
    const std::size_t page = RingMemory::page_size();
    const std::size_t step = page / gcd(frame_bytes, page);  // frames per page-aligned unit
    const auto wanted = static_cast<std::size_t>(min_capacity);
    // Address space for both halves: 2 * capacity * frame_bytes must fit.
    const std::size_t max_frames = (std::numeric_limits<std::size_t>::max() / 4) / frame_bytes;
    if (max_frames < step || wanted > max_frames - step) {  // (max_frames < step: huge frames; avoids unsigned wrap)
      throw OutOfMemory("capacity of " + std::to_string(min_capacity) + " frames x " + std::to_string(frame_bytes) +
                        " bytes is more than the address space holds");
    }
    return static_cast<Frame>((wanted + step - 1) / step * step);
  }

  // A private ring: PrivateRingStorage of at least `min_capacity` frames.
  FrameRing(std::size_t frame_bytes, Frame min_capacity, MemoryRequest request = MemoryRequest::best)
      : FrameRing(std::make_shared<PrivateRingStorage>(frame_bytes, rounded_capacity(frame_bytes, min_capacity),
                                                       request)) {}

  // A ring in `storage`, laid out already: a private one, or a shared ring's
  // mapping (SharedRing, shared_ring.hpp): the producer's, read-write, or a
  // reader's, read-only. A read-only ring's producer is another process:
  // write() and clear() must not be called on it.
  explicit FrameRing(std::shared_ptr<RingStorage> storage)
      : storage_(std::move(storage)),
        data_(storage_->data()),
        frame_bytes_(storage_->frame_bytes()),
        capacity_(storage_->capacity()),
        mirrored_(storage_->mirrored()),
        read_only_(storage_->read_only()),
        max_frame_(storage_->max_frame()),
        control_(&storage_->control()),
        first_(&storage_->first_frame()),
        doorbell_(control_->doorbell, storage_->doorbell_scope()) {
    assert(data_ != nullptr && capacity_ > 0 && frame_bytes_ > 0 && "FrameRing over storage not laid out");
  }

  Frame capacity() const noexcept { return capacity_; }
  std::size_t frame_bytes() const noexcept { return frame_bytes_; }
  MemoryKind memory_kind() const noexcept { return storage_->kind(); }
  bool mirrored() const noexcept { return mirrored_; }

  // What the ring lives in (ring_storage.hpp). A shared ring's is its
  // SharedRing: SharedRing::of(ring.storage()) finds it.
  RingStorage& storage() const noexcept { return *storage_; }
  // Whether this is a reader's read-only view of another process's ring.
  bool read_only() const noexcept { return read_only_; }

  // Whether this process is a fork of the one that made the ring (or
  // attached to it): the memory is shared with that process, and a private
  // ring's counters are a private copy (see fork_guard.hpp). The bindings
  // refuse to write or read such a ring, shared or not; the core leaves the
  // check to them, so write() stays free of it.
  bool forked() const noexcept { return owner_.forked(); }
  std::uint64_t owner_generation() const noexcept { return owner_.generation(); }

  // ---- producer -------------------------------------------------------------

  // Appends `count` frames from `frames`, or silence when `frames` is null.
  // When count > capacity only the latest `capacity` frames are kept, but the
  // frame counter still advances by `count`.
  void write(const void* frames, Frame count) noexcept {
    assert(count >= 0 && "FrameRing::write: negative frame count");
    assert(!read_only_ && "FrameRing::write on a read-only ring");
    if (count <= 0) return;
    const Frame start = control_->written.load(std::memory_order_relaxed);  // only this thread stores it
    const Frame end = start + count;
    const Frame kept = count < capacity_ ? count : capacity_;
    const auto* source = static_cast<const std::byte*>(frames);
    if (source != nullptr) source += static_cast<std::size_t>(count - kept) * frame_bytes_;

    control_->intent.store(end, std::memory_order_relaxed);  // before any byte changes; see top comment
    release_fence(&control_->intent);
    store(end - kept, source, kept);
    control_->written.store(end, std::memory_order_release);
    doorbell_.ring();
  }

  // Zeroes the ring without breaking the counters' order: the zeros count as
  // `capacity` frames written, so every earlier window is judged overwritten.
  // It also begins a new recording: first() moves to the frame after the
  // zeros, stored before write() publishes them (its release fence and
  // release store of `written`), so a reader that sees any zero of this
  // clear (a frame number past the old `written`, or a zeroed byte behind
  // its acquire fence) also sees the new first(). That is how a reader
  // tells zeros a clear wrote from frames a device delivered.
  void clear() noexcept {
    const Frame start = control_->written.load(std::memory_order_relaxed);  // only this thread stores it
    first_->store(start + capacity_, std::memory_order_relaxed);
    write(nullptr, capacity_);
  }

  // ---- readers --------------------------------------------------------------

  // The first frame of the current recording: one past the zeros of the
  // latest clear(), 0 before any. Frames before it were not recorded by the
  // current recording's producer. Monotonic. Load it after a window's
  // intact() check to know the window belongs to the recording it expects.
  Frame first() const noexcept {
    return trusted(first_->load(std::memory_order_acquire));
  }

  // Frames published so far; frames [written() - capacity, written()) are readable.
  Frame written() const noexcept { return trusted(control_->written.load(std::memory_order_acquire)); }

  // The address of frame `first`; frames [first, first + n) for n <= capacity
  // follow contiguously.
  const std::byte* frame_address(Frame first) const noexcept {
    return data_ + static_cast<std::size_t>(slot(first)) * frame_bytes_;
  }

  // True if no frame at or after `first` has been (or is being) overwritten
  // since it was published. Call after reading, as the top comment explains.
  bool intact(Frame first) const noexcept {
    acquire_fence(&control_->intent);
    return trusted(control_->intent.load(std::memory_order_relaxed)) - first <= capacity_;
  }

  // Copies frames [first, first + count) (count <= capacity, first + count <=
  // written()) to `out`; returns whether the copy is valid.
  bool copy(Frame first, Frame count, void* out) const noexcept {
    assert(count >= 0 && count <= capacity_ && "FrameRing::copy: count out of range");
    {
      [[maybe_unused]] SpeculativeReads speculative;
      std::memcpy(out, frame_address(first), static_cast<std::size_t>(count) * frame_bytes_);
    }
    return intact(first);
  }

  // Blocks until written() >= frame (-> ready), the deadline passes
  // (-> timeout) or interrupts() differs from `interrupts_seen`
  // (-> interrupted). On a read-only ring also -> interrupted, within
  // about 110 ms, once the producer is found gone (it never will write
  // again: RingStorage::producer_found_dead()). Never delays the producer.
  WaitStatus wait_for_frame(Frame frame, Clock::time_point deadline, std::uint64_t interrupts_seen) const noexcept {
    return doorbell_.wait([&] { return written() >= frame; },
                          [&] { return interrupts() != interrupts_seen || storage_->producer_found_dead(); },
                          deadline);
  }

  // Wakes every wait_for_frame() of this process with WaitStatus::interrupted.
  void interrupt() const noexcept { doorbell_.interrupt(); }
  // interrupt() calls in this process, plus a shared ring's state changes,
  // plus one once its producer was found dead: a waiter that slept through
  // the death (e.g. a FrameWatcher, which wakes its consumers only when this
  // count moves) sees the count change and re-checks its producer.
  std::uint64_t interrupts() const noexcept {
    return doorbell_.interrupts() + storage_->state_changes() + (storage_->known_dead() ? 1U : 0U);
  }

 private:
  static std::size_t gcd(std::size_t a, std::size_t b) noexcept {
    while (b != 0) {
      const std::size_t r = a % b;
      a = b;
      b = r;
    }
    return a;
  }

  // A reader's header can be overwritten by another process of its user
  // after attach() checked it: every counter a read-only ring loads stays
  // within what attach() accepts (0..kSharedMaxFrame, the storage's
  // max_frame()), so that frame arithmetic on it (intact(), windows,
  // streams) stays defined. A forged counter can only make reads wrong (the
  // same user can write the frames too), never undefined. The producer's own
  // counters need no bound.
  Frame trusted(Frame counter) const noexcept {
    return read_only_ ? std::clamp(counter, Frame{0}, max_frame_) : counter;
  }

  Frame slot(Frame frame) const noexcept {
    const Frame s = frame % capacity_;
    return s < 0 ? s + capacity_ : s;
  }

  // Puts `count` (<= capacity) frames starting at frame `first` into their
  // slots, in both halves of the memory.
  void store(Frame first, const std::byte* source, Frame count) noexcept {
    const auto put = [&](Frame at_slot, Frame from, Frame n) {
      std::byte* to = data_ + static_cast<std::size_t>(at_slot) * frame_bytes_;
      const std::size_t bytes = static_cast<std::size_t>(n) * frame_bytes_;
      if (source != nullptr) {
        std::memcpy(to, source + static_cast<std::size_t>(from) * frame_bytes_, bytes);
      } else {
        std::memset(to, 0, bytes);
      }
    };
    const Frame at = slot(first);
    if (mirrored_) {
      put(at, 0, count);  // may run into the second half: the kernel mirrors it
      return;
    }
    // Plain memory: slot s lives at s and at s + capacity; write both copies.
    const Frame head = count < capacity_ - at ? count : capacity_ - at;
    put(at, 0, head);
    put(at + capacity_, 0, head);
    if (count > head) {
      put(0, head, count - head);
      put(capacity_, head, count - head);
    }
  }

  const std::shared_ptr<RingStorage> storage_;  // what the ring lives in; kept alive by the ring
  // storage_'s layout, copied (it never changes) so that write() and the
  // readers load members of their own and make no virtual call.
  std::byte* const data_;             // 2 * capacity_ frames of addressable memory
  const std::size_t frame_bytes_;     // channels x item size, > 0
  const Frame capacity_;              // > 0; capacity_ * frame_bytes_ is a multiple of the page size
  const bool mirrored_;               // else plain memory: store() writes both halves
  const bool read_only_;              // another process produces; counters are clamped by trusted()
  const Frame max_frame_;             // trusted()'s bound on a read-only ring's counters
  const ForkGuard owner_;             // the process that made the ring
  // The counters and the futex word (ring_control.hpp; its fields have their
  // own cache lines, in the storage, away from the immutable fields above).
  RingControl* const control_;        // == &storage_->control()
  std::atomic<Frame>* const first_;   // first(): stored only by clear(); == &storage_->first_frame()
  // Its own line: waiters RMW its process-local counters.
  alignas(64) mutable Doorbell doorbell_;
};

}  // namespace audioring
