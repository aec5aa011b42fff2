// Memory for a ring buffer whose every window is one contiguous span.
//
// A ring of `half_bytes` bytes is laid out as 2 * half_bytes of address space:
// byte i and byte i + half_bytes always hold the same value. A window that
// starts anywhere in the first half and is at most half_bytes long is then a
// plain contiguous array, even when it crosses the wrap point.
//
// Two ways to get that property:
//  - mirrored: the same physical pages mapped twice, back to back (memfd_create
//    on Linux; shm_open + unlink on other POSIX systems; on Windows a
//    pagefile-backed section, kind `shm`, mapped into VirtualAlloc2
//    placeholders, or at a just-freed range where placeholders are missing).
//    The producer writes once; the kernel shows the bytes in both halves.
//  - plain: an ordinary zeroed buffer of 2 * half_bytes; the producer must
//    write every byte twice (see FrameRing::write). Used where mapping is not
//    possible, and on request.
//
// Threading: create() and the destructor run on one thread; data() may be
// read from any thread. All pages are zeroed and prefaulted before create()
// returns, so the real-time producer never takes a page fault.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace audioring {

enum class MemoryKind { memfd, shm, plain };

// What the caller asks for. `best` tries memfd, then shm, then plain.
enum class MemoryRequest { best, memfd, shm, plain };

const char* to_string(MemoryKind kind) noexcept;
const char* to_string(MemoryRequest request) noexcept;

// The request is larger than the machine can hold; bindings map it to MemoryError.
class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A specific mirroring method was requested and the system refused it.
class MappingUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bytes of memory available now (Linux: MemAvailable, or the room under a
// memory cgroup's limit if that is less), 0 if unknown.
unsigned long long available_memory() noexcept;

// Throws OutOfMemory, naming `what`, if `bytes` exceed the available memory:
// an allocation that the system would grant lazily and then kill the process
// for when its pages are touched fails here instead, with a message.
void check_fits_in_memory(std::size_t bytes, const std::string& what);

// Building blocks of file-backed mirrors, also used by shared_ring.cpp.
// Writes every page of [data, data + bytes) so that none faults later on the
// real-time thread.
void prefault(std::byte* data, std::size_t bytes) noexcept;
// True when writing byte 0 shows at byte half_bytes: guards against a system
// that accepted both mappings but did not share the pages.
bool is_mirrored(std::byte* data, std::size_t half_bytes) noexcept;
// POSIX: gives the file its size and, where the system can, reserves the
// memory now so that running out shows up here as an error (false, errno
// set) instead of SIGBUS later.
bool size_file(int fd, std::size_t bytes) noexcept;

class RingMemory {
 public:
  // `half_bytes` must be a positive multiple of page_size().
  static std::shared_ptr<RingMemory> create(std::size_t half_bytes, MemoryRequest request);

  // The granularity mirrored mappings need (the VM page size; on Windows the
  // 64 KiB allocation granularity).
  static std::size_t page_size() noexcept;

  ~RingMemory();
  RingMemory(const RingMemory&) = delete;
  RingMemory& operator=(const RingMemory&) = delete;

  std::byte* data() const noexcept { return data_; }
  std::size_t half_bytes() const noexcept { return half_bytes_; }
  MemoryKind kind() const noexcept { return kind_; }
  bool mirrored() const noexcept { return kind_ != MemoryKind::plain; }

 private:
  RingMemory(std::byte* data, std::size_t half_bytes, MemoryKind kind) noexcept
      : data_(data), half_bytes_(half_bytes), kind_(kind) {}

  std::byte* data_;         // 2 * half_bytes_ addressable bytes, page aligned
  std::size_t half_bytes_;  // > 0, a multiple of page_size()
  MemoryKind kind_;
};

}  // namespace audioring
