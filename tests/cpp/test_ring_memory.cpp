// Tests of RingMemory, the (mirrored) memory under FrameRing: every memory
// request on Linux, its size, kind, zero fill, the mirror property, errors,
// and that creating and destroying rings leaks no descriptors or mappings.
#include "check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <dirent.h>
#include <unistd.h>
#endif

#include "audioring/platform.hpp"
#include "audioring/ring_memory.hpp"

namespace {

using audioring::MappingUnavailable;
using audioring::MemoryKind;
using audioring::MemoryRequest;
using audioring::OutOfMemory;
using audioring::RingMemory;


#if defined(_WIN32)
// What each request must give on Windows: no memfd; its mirrored kind is a section mapped twice (shm).
MemoryKind expected_kind(MemoryRequest request) {
  switch (request) {
    case MemoryRequest::best:
    case MemoryRequest::memfd:  // not asked for: refused (see main)
      return MemoryKind::shm;
    case MemoryRequest::shm:
      return MemoryKind::shm;
    case MemoryRequest::plain:
      return MemoryKind::plain;
  }
  return MemoryKind::plain;
}

const MemoryRequest kRequests[] = {MemoryRequest::shm, MemoryRequest::plain, MemoryRequest::best};

std::size_t system_page_size() {
  SYSTEM_INFO info{};
  GetSystemInfo(&info);
  return info.dwAllocationGranularity;  // what a view of a section must start on
}

// What a leak would raise: open handles, and regions of the address space in use.
std::size_t open_descriptors() {
  DWORD handles = 0;
  CHECK(GetProcessHandleCount(GetCurrentProcess(), &handles));
  return handles;
}

std::size_t mappings() {
  std::size_t n = 0;
  MEMORY_BASIC_INFORMATION region{};
  for (const char* at = nullptr; VirtualQuery(at, &region, sizeof region) == sizeof region;
       at = static_cast<const char*>(region.BaseAddress) + region.RegionSize) {
    if (region.State != MEM_FREE) ++n;
  }
  return n;
}

bool shm_name_left(const std::string&) { return false; }  // Windows' sections here have no name

std::string shm_prefix() { return ""; }
#else
#if defined(AUDIORING_LINUX)
// What each request must give on Linux.
MemoryKind expected_kind(MemoryRequest request) {
  switch (request) {
    case MemoryRequest::best:
    case MemoryRequest::memfd:
      return MemoryKind::memfd;
    case MemoryRequest::shm:
      return MemoryKind::shm;
    case MemoryRequest::plain:
      return MemoryKind::plain;
  }
  return MemoryKind::plain;
}

const MemoryRequest kRequests[] = {MemoryRequest::memfd, MemoryRequest::shm, MemoryRequest::plain,
                                   MemoryRequest::best};
#else
// What each request must give on the other POSIX systems (macOS; on Linux with the non-Linux
// paths forced, csrc/audioring/platform.hpp): no memfd; the mirrored kind is shm_open's.
MemoryKind expected_kind(MemoryRequest request) {
  switch (request) {
    case MemoryRequest::best:
    case MemoryRequest::memfd:  // not asked for: refused (see main)
    case MemoryRequest::shm:
      return MemoryKind::shm;
    case MemoryRequest::plain:
      return MemoryKind::plain;
  }
  return MemoryKind::plain;
}

const MemoryRequest kRequests[] = {MemoryRequest::shm, MemoryRequest::plain, MemoryRequest::best};
#endif

std::size_t count_entries(const char* directory, const std::string& prefix = "") {
  DIR* dir = opendir(directory);
  CHECK_MSG(dir != nullptr, "cannot list %s", directory);
  std::size_t n = 0;
  while (const dirent* entry = readdir(dir)) {
    if (std::string(entry->d_name).rfind(prefix, 0) == 0) ++n;
  }
  closedir(dir);
  return n;
}

std::size_t count_lines(const char* path) {
  std::FILE* file = std::fopen(path, "r");
  CHECK_MSG(file != nullptr, "cannot open %s", path);
  std::size_t n = 0;
  for (int c; (c = std::fgetc(file)) != EOF;) n += c == '\n';
  std::fclose(file);
  return n;
}

std::size_t system_page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }
std::size_t open_descriptors() { return count_entries("/proc/self/fd"); }
std::size_t mappings() { return count_lines("/proc/self/maps"); }
std::string shm_prefix() { return "audioring-" + std::to_string(getpid()) + "-"; }
bool shm_name_left(const std::string& prefix) { return count_entries("/dev/shm", prefix) != 0; }
#endif

void test_page_size() {
  const std::size_t page = RingMemory::page_size();
  CHECK(page == system_page_size());
  CHECK(page >= 4096 && (page & (page - 1)) == 0);
}

void test_properties(MemoryRequest request, std::size_t half, std::mt19937_64& rng) {
  const std::shared_ptr<RingMemory> memory = RingMemory::create(half, request);
  CHECK(memory != nullptr);
  CHECK_MSG(memory->half_bytes() == half, "%s: half_bytes %zu, want %zu", to_string(request), memory->half_bytes(), half);
  CHECK_MSG(memory->kind() == expected_kind(request), "%s: got kind %s", to_string(request),
            audioring::to_string(memory->kind()));
  CHECK(memory->mirrored() == (memory->kind() != MemoryKind::plain));
  CHECK(reinterpret_cast<std::uintptr_t>(memory->data()) % RingMemory::page_size() == 0);

  auto* bytes = reinterpret_cast<volatile unsigned char*>(memory->data());
  for (std::size_t i = 0; i < 2 * half; ++i) {
    CHECK_MSG(bytes[i] == 0, "%s: byte %zu of %zu is %u, not zero", to_string(request), i, 2 * half, bytes[i]);
  }

  // Offsets at the edges of both halves and of a few pages, plus random ones.
  std::vector<std::size_t> offsets = {0, 1, half / 2, half - 1};
  for (std::size_t page = RingMemory::page_size(); page < half; page += RingMemory::page_size()) {
    offsets.push_back(page - 1);
    offsets.push_back(page);
  }
  for (int i = 0; i < 64; ++i) offsets.push_back(static_cast<std::size_t>(rng() % half));

  unsigned char value = 1;
  for (const std::size_t i : offsets) {
    value = static_cast<unsigned char>(value % 250 + 1);
    bytes[i] = value;  // first half
    if (memory->mirrored()) {
      CHECK_MSG(bytes[i + half] == value, "%s: write at %zu not mirrored at %zu", to_string(request), i, i + half);
      bytes[i + half] = static_cast<unsigned char>(value + 1);  // second half
      CHECK_MSG(bytes[i] == static_cast<unsigned char>(value + 1), "%s: write at %zu not mirrored at %zu",
                to_string(request), i + half, i);
    } else {
      // Plain memory: two independent copies (the producer writes both).
      CHECK_MSG(bytes[i + half] == 0, "%s: plain halves alias at %zu", to_string(request), i);
      bytes[i + half] = static_cast<unsigned char>(value + 1);
      CHECK(bytes[i] == value);
    }
    bytes[i] = 0;
    bytes[i + half] = 0;
  }

  // The memory outlives every owner but the last.
  std::shared_ptr<RingMemory> other = memory;
  CHECK(other->data() == memory->data());
}

void test_bad_sizes() {
  const std::size_t page = RingMemory::page_size();
  for (const MemoryRequest request : kRequests) {
    for (const std::size_t bad : {std::size_t{0}, std::size_t{1}, page / 2, page - 1, page + 1, 3 * page + 7}) {
      CHECK_THROWS(RingMemory::create(bad, request), std::invalid_argument);
    }
    // Page multiples whose two halves do not fit in the address space.
    const std::size_t top = SIZE_MAX / page * page;
    CHECK_THROWS(RingMemory::create(top, request), std::length_error);
    CHECK_THROWS(RingMemory::create(SIZE_MAX / 2 / page * page + page, request), std::length_error);
    // Representable but far more than any machine has: a clean error, not a crash.
    CHECK_THROWS(RingMemory::create(std::size_t{1} << 50, request), OutOfMemory);
    CHECK_THROWS(RingMemory::create(SIZE_MAX / 2 / page * page, request), OutOfMemory);
  }
}

// Rings are created and dropped by Python code in loops: nothing may leak.
void test_no_leaks() {
  const std::size_t page = RingMemory::page_size();
  const std::string prefix = shm_prefix();
  for (const MemoryRequest request : kRequests) {
    // Warm up whatever the runtime (and sanitizers) allocate once.
    for (int i = 0; i < 4; ++i) RingMemory::create(4 * page, request);
    const std::size_t fds = open_descriptors();
    const std::size_t maps = mappings();
    for (int i = 0; i < 300; ++i) {
      const auto memory = RingMemory::create(static_cast<std::size_t>(1 + i % 5) * page, request);
      memory->data()[0] = std::byte{1};
      CHECK(!shm_name_left(prefix));  // the shm name is unlinked at once
    }
    const std::size_t fds_after = open_descriptors();
    const std::size_t maps_after = mappings();
    CHECK_MSG(fds_after <= fds, "%s: open descriptors %zu -> %zu", to_string(request), fds, fds_after);
    // Sanitizer runtimes map memory of their own: allow a little slack, a
    // leak would add at least one mapping per ring (300).
    CHECK_MSG(maps_after <= maps + 20, "%s: mappings %zu -> %zu", to_string(request), maps, maps_after);
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(audioring_test::seed("ring_memory", 1));
  test_page_size();
  const std::size_t page = RingMemory::page_size();
  for (const MemoryRequest request : kRequests) {
    for (const std::size_t pages : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{16}, std::size_t{257}}) {
      try {
        test_properties(request, pages * page, rng);
      } catch (const MappingUnavailable& error) {
        audioring_test::fail(__FILE__, __LINE__, std::string(to_string(request)) + " unavailable: " + error.what());
      }
    }
  }
#if !defined(AUDIORING_LINUX)
  // Asked for by name, memfd is refused: there is none on Windows or the other POSIX systems.
  CHECK_THROWS(RingMemory::create(page, MemoryRequest::memfd), MappingUnavailable);
#endif
  test_bad_sizes();
  test_no_leaks();
  std::printf("ring_memory: all tests passed\n");
  return 0;
}
