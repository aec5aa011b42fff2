// SharedRing: a ring's memory shared by name with other processes of the
// same user (Linux): the POSIX shared memory object
// /audioring-<euid>-<name> (the file /dev/shm/audioring-<euid>-<name>),
// laid out as shared_header.hpp describes.
//
// The producer creates it (create()) and maps it read-write; readers attach
// to it (attach()) and map it read-only, so they can neither write frames
// nor disturb the producer: FrameRing's readers use loads only.
//
// A SharedRing is the RingStorage (ring_storage.hpp) of the FrameRing made
// over it: FrameRing(SharedRing::create(...)) is the producer's ring,
// FrameRing(SharedRing::attach(...)) a reader's. Its liveness is the
// producer's state, its lock and its pid (below).
//
// Creation: the producer makes an unnamed file (O_TMPFILE), locks it, sizes
// it, writes the header and only then links it under the name (failing if
// the name exists). So a name, once there, is a complete recording: nobody
// ever sees a producer's file half made.
//
// What readers trust: /dev/shm is writable by every user, so anything may
// sit at a name. Every open is non-blocking and follows no link (a FIFO
// would block open(2) forever); what is opened must be a regular file owned
// by this user (else PermissionError for another owner's, and for this
// user's FIFO, directory, socket or link an invalid-ring error for readers,
// "in use" for producers), private (mode 0600), and its header is checked
// field by field (shared_ring.cpp). Nothing that is not such a file is read,
// locked or unlinked.
//
// Liveness: the producer holds an open-file-description (OFD) write lock on
// the whole file for as long as it shares it; the kernel drops the lock when
// the producer's last descriptor of it closes, however the process ends. A
// forked child does not keep it: a pthread_atfork handler closes the child's
// copies of every producer's descriptor (the lock belongs to the open file
// description, which fork() shares). A recording is live while that lock is
// held AND the pid in its header exists. A name whose lock nobody holds is
// stale: whoever wants it (a new producer, list_shared()) takes the lock
// itself first, checks that the name still names the file it locked, and
// only then unlinks it, so two processes that reclaim at once cannot unlink
// each other's new file.
//
// Errors: std::invalid_argument for a malformed name; SharedRingError (with
// a Reason the bindings map to Python's exception types) for everything
// else; OutOfMemory when the memory cannot be reserved. Every message names
// the shared name.
//
// Threading: create()/attach()/list_shared() from any thread; a SharedRing's
// methods from any thread, except that unshare() and set_state() belong
// to the producer's controlling thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "audioring/fork_guard.hpp"
#include "audioring/ring_storage.hpp"
#include "audioring/sample_format.hpp"
#include "audioring/shared_header.hpp"

namespace audioring {

class SharedRingError : public std::runtime_error {
 public:
  enum class Reason {
    not_found,    // no shared recording of that name
    permission,   // another user's, or readable by group or others
    in_use,       // a live producer shares that name
    invalid,      // not a shared ring this version can read (a header field is wrong)
    unsupported,  // not Linux
    system,       // any other system error
  };
  SharedRingError(Reason reason, const std::string& what) : std::runtime_error(what), reason_(reason) {}
  Reason reason() const noexcept { return reason_; }

 private:
  Reason reason_;
};

// What the producer shares: capacity must already be rounded so that
// capacity x channels x item size is a multiple of the page size
// (FrameRing::rounded_capacity).
struct SharedRingSpec {
  std::size_t channels = 1;
  SampleFormat format = SampleFormat::float32;
  std::int64_t capacity = 0;
  std::uint32_t sampling_rate = 0;  // 0 = unknown
};

// One entry of list_shared().
struct SharedRingInfo {
  std::string name;
  std::int64_t pid;
  bool alive;  // the lock is held and the pid exists
  std::size_t channels;
  SampleFormat format;
  std::int64_t capacity;
  std::uint32_t sampling_rate;
  SharedState state;
  std::int64_t frames_written;
  std::int64_t first_frame;  // the current recording's (FrameRing::first()), when listed
};

class SharedRing final : public RingStorage {
 public:
  // The one rule for shared names (Python's _validate.as_share_name asks
  // valid_name() through _core.check_share_name): 1..64 characters of
  // [A-Za-z0-9_.-] not starting with '.', so a name is never a path.
  static constexpr std::size_t kMaxNameLength = 64;
  static constexpr const char* kNameRule =
      "1..64 characters of letters A-Z a-z, digits, '_', '-' and '.' (not first)";
  static bool valid_name(std::string_view name) noexcept;
  // Throws std::invalid_argument("<argument> must be <kNameRule>, got '<name>'") unless valid_name(name).
  static void check_name(const std::string& name, const char* argument = "a shared name");

  // Creates the shared object and its lock, or reclaims a stale one of that
  // name first; throws SharedRingError(in_use) if a live producer has it.
  static std::shared_ptr<SharedRing> create(const std::string& name, const SharedRingSpec& spec);
  // Maps a live or finished recording read-only, after checking its type,
  // owner, mode and every header field. A file whose maker holds its lock
  // but has not finished its header is waited for, up to 5 s, then
  // SharedRingError(not_found).
  static std::shared_ptr<SharedRing> attach(const std::string& name);

  // The SharedRing that `storage` is, or null (a private ring's storage):
  // SharedRing::of(ring.storage()) is a FrameRing's shared mapping.
  static SharedRing* of(RingStorage& storage) noexcept { return dynamic_cast<SharedRing*>(&storage); }

  // The producer's last reference unshares (unlinks the name); every mapping
  // and descriptor is released.
  ~SharedRing() override;
  SharedRing(const SharedRing&) = delete;
  SharedRing& operator=(const SharedRing&) = delete;

  // read_only(), frame_bytes(), capacity() and data() (2 x capacity x
  // frame_bytes mirrored bytes, read-only for a reader) are RingStorage's.
  const std::string& name() const noexcept { return name_; }
  std::size_t channels() const noexcept { return channels_; }
  SampleFormat format() const noexcept { return format_; }
  std::uint32_t sampling_rate() const noexcept { return sampling_rate_; }
  std::int64_t producer_pid() const noexcept { return producer_pid_; }

  // The mapped header. A reader's mapping is read-only: it may only load.
  SharedHeader& header() const noexcept { return *header_; }

  SharedState state() const noexcept {
    return static_cast<SharedState>(header_->state.load(std::memory_order_acquire));
  }
  std::uint64_t state_changes() const noexcept override {
    return header_->state_changes.load(std::memory_order_seq_cst);
  }
  // Producer: stores the recording's state and wakes every waiter of every
  // process (the doorbell in the header); waits that began before a change
  // return `interrupted` (FrameRing::interrupts() counts state_changes()).
  void set_state(SharedState state) noexcept;

  // Producer: the header's counters, for a Capture or Converter to count in;
  // a reader: null.
  RecordingCounters* published_counters() const noexcept override {
    return read_only() ? nullptr : &header_->recording;
  }

  // Producer: unlinks the name if it still names this file, and drops the
  // lock: readers keep their mappings and see the producer gone. Idempotent;
  // a no-op for readers and in a forked child of the producer.
  void unshare() noexcept;
  bool unshared() const noexcept { return unshared_.load(std::memory_order_acquire); }

  // Reader: the lock is held and the producer's pid exists (two system
  // calls). Producer: whether it still shares the name.
  bool producer_alive() const noexcept;
  // Reader: whether the producer was found gone, asking producer_alive() at
  // most every kLivenessInterval (waits call this each time they wake). Once
  // gone, always gone. Producer: false.
  bool producer_found_dead() const noexcept override;
  // Whether producer_found_dead() has returned true (no system call).
  bool known_dead() const noexcept override { return dead_.load(std::memory_order_relaxed); }
  static constexpr std::int64_t kLivenessIntervalNs = 100'000'000;

 private:
  // The producer's (read-write) or a reader's (read-only) mapping; laid out
  // by create() or attach() once mapped.
  explicit SharedRing(bool read_only) noexcept
      : RingStorage(read_only ? Doorbell::Scope::read_only : Doorbell::Scope::shared, kSharedMaxFrame) {}

  std::string name_;
  std::string path_;                   // the file: /dev/shm/audioring-<euid>-<name>
  // Used by the Linux implementation only (shared_ring.cpp); without it sharing is refused and
  // nothing reads them (clang's -Wunused-private-field).
  [[maybe_unused]] int fd_ = -1;       // the lock's descriptor (producer; -1 in a forked child), the liveness probe's (reader)
  [[maybe_unused]] std::byte* base_ = nullptr;  // the whole mapping: header, then the frames twice
  [[maybe_unused]] std::size_t mapped_bytes_ = 0;
  SharedHeader* header_ = nullptr;     // == base_
  std::size_t channels_ = 0;           // the header's immutable fields, as checked when mapped
  SampleFormat format_ = SampleFormat::float32;
  std::uint32_t sampling_rate_ = 0;
  std::int64_t producer_pid_ = 0;
  ForkGuard owner_;                    // a forked child of the producer must not unlink or unlock
  std::atomic<bool> unshared_{false};
  mutable std::atomic<bool> dead_{false};
  mutable std::atomic<std::int64_t> last_check_ns_{INT64_MIN};  // steady-clock time of the last liveness check
};

// The live shared recordings of this user, sorted by name. Stale ones
// (nobody holds their lock) are reclaimed on the way (unlinked, as a new
// producer would) and not returned; entries held by a process whose pid is
// gone (a process that inherited the lock without fork handlers) are
// returned with alive = false. Entries under this user's prefix that cannot
// be read as shared rings (not a regular file, another owner, group/other
// access, a malformed header) are skipped and left in place; each is
// described (its path and what it is) in `skipped` when given. Files whose
// maker holds them but has not finished them are skipped silently.
std::vector<SharedRingInfo> list_shared(std::vector<std::string>* skipped = nullptr);

}  // namespace audioring
