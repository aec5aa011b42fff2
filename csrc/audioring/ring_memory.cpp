#include "audioring/ring_memory.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "audioring/platform.hpp"

#if defined(__unix__) || defined(__APPLE__)
#define AUDIORING_POSIX 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#elif defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#endif

namespace audioring {
namespace {

// Used by the POSIX paths only.
[[maybe_unused]] std::string system_error(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

#if defined(AUDIORING_LINUX)
namespace {

constexpr unsigned long long kUnlimited = ~0ULL;

// The first number on the line of `path` that starts with `key` (the whole
// file if `key` is empty), or nothing.
bool read_number(const std::string& path, const char* key, unsigned long long& value) noexcept {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return false;
  char line[256];
  bool found = false;
  const std::size_t key_length = std::strlen(key);
  while (!found && std::fgets(line, sizeof line, file) != nullptr) {
    if (std::strncmp(line, key, key_length) != 0) continue;
    found = std::sscanf(line + key_length, " %llu", &value) == 1;
    if (!found && key_length == 0) break;  // "max": no limit
  }
  std::fclose(file);
  return found;
}

// Room left under one memory cgroup's limit: limit minus usage, where the
// inactive file cache counts as free (the kernel reclaims it before it
// kills), as MemAvailable counts it; kUnlimited without a limit.
unsigned long long cgroup_room(const std::string& dir, bool v2) noexcept {
  unsigned long long limit = 0;
  unsigned long long usage = 0;
  unsigned long long reclaimable = 0;
  if (!read_number(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"), "", limit)) return kUnlimited;
  if (!read_number(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"), "", usage)) return kUnlimited;
  read_number(dir + "/memory.stat", v2 ? "inactive_file" : "total_inactive_file", reclaimable);
  const unsigned long long used = usage > reclaimable ? usage - reclaimable : 0;
  return limit > used ? limit - used : 0;
}

// The least room under the memory limits of this process's cgroup and its
// ancestors (each binds its descendants): past it the cgroup's OOM killer
// ends the process, whatever MemAvailable says. cgroup v2, or v1's memory
// controller; kUnlimited if there is neither or no limit. Throws only
// std::bad_alloc (its strings).
unsigned long long cgroup_memory_room() {
  FILE* mounts = std::fopen("/proc/self/mountinfo", "r");
  if (mounts == nullptr) return kUnlimited;
  // Where each hierarchy is mounted, and which part of it (a container's mount root).
  std::string v2_mount, v2_root, v1_mount, v1_root;
  char line[1024];
  while (std::fgets(line, sizeof line, mounts) != nullptr) {
    char root[256], point[256], type[64], options[512];
    // id parent major:minor root mount-point options [optional fields] - type source super-options
    if (std::sscanf(line, "%*s %*s %*s %255s %255s", root, point) != 2) continue;
    const char* separator = std::strstr(line, " - ");
    if (separator == nullptr || std::sscanf(separator, " - %63s %*s %511s", type, options) != 2) continue;
    if (std::strcmp(type, "cgroup2") == 0 && v2_mount.empty()) {
      v2_mount = point, v2_root = root;
    } else if (std::strcmp(type, "cgroup") == 0 && v1_mount.empty() &&
               (std::strstr(options, ",memory") != nullptr || std::strncmp(options, "memory", 6) == 0)) {
      v1_mount = point, v1_root = root;
    }
  }
  std::fclose(mounts);
  FILE* groups = std::fopen("/proc/self/cgroup", "r");
  if (groups == nullptr) return kUnlimited;
  unsigned long long room = kUnlimited;
  while (std::fgets(line, sizeof line, groups) != nullptr) {
    // hierarchy-id:controllers:path; v2's line is "0::path"
    std::string entry(line);
    if (!entry.empty() && entry.back() == '\n') entry.pop_back();
    const std::size_t first = entry.find(':');
    const std::size_t second = first == std::string::npos ? first : entry.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = entry.substr(first + 1, second - first - 1);
    std::string path = entry.substr(second + 1);
    const bool v2 = controllers.empty();
    bool memory = false;
    for (std::size_t at = 0; !v2 && at != std::string::npos;) {
      const std::size_t end = controllers.find(',', at);
      memory = memory || controllers.compare(at, end == std::string::npos ? end : end - at, "memory") == 0;
      at = end == std::string::npos ? end : end + 1;
    }
    const std::string& mount = v2 ? v2_mount : v1_mount;
    const std::string& mount_root = v2 ? v2_root : v1_root;
    if ((!v2 && !memory) || mount.empty()) continue;
    if (mount_root != "/" && path.compare(0, mount_root.size(), mount_root) == 0) path.erase(0, mount_root.size());
    // From the process's cgroup up to the mount's top.
    for (;;) {
      room = std::min(room, cgroup_room(mount + path, v2));
      if (path.empty() || path == "/") break;
      path.erase(path.rfind('/'));
    }
  }
  std::fclose(groups);
  return room;
}

}  // namespace
#endif

// Bytes of memory available: Linux's MemAvailable (free plus reclaimable
// cache), or less if a memory cgroup's limit leaves less room; elsewhere free
// pages; 0 if unknown.
unsigned long long available_memory() noexcept {
#if defined(AUDIORING_LINUX)
  if (FILE* meminfo = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (!found && std::fgets(line, sizeof line, meminfo) != nullptr) {
      found = std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    }
    std::fclose(meminfo);
    if (found) {
      unsigned long long room = kUnlimited;
      try {
        room = cgroup_memory_room();
      } catch (const std::bad_alloc&) {  // no memory for a path: MemAvailable alone must do
      }
      return std::min(kib * 1024, room);
    }
  }
#endif
#if defined(AUDIORING_POSIX) && defined(_SC_AVPHYS_PAGES)
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<unsigned long long>(pages) * static_cast<unsigned long long>(page);
#elif defined(_WIN32)
  MEMORYSTATUSEX status{};
  status.dwLength = sizeof status;
  if (GlobalMemoryStatusEx(&status)) return status.ullAvailPhys;
#endif
  return 0;
}

void check_fits_in_memory(std::size_t bytes, const std::string& what) {
  const unsigned long long available = available_memory();
  if (available != 0 && bytes > available) {
    throw OutOfMemory(what + " needs " + std::to_string(bytes) + " bytes but only " + std::to_string(available) +
                      " bytes of memory are available");
  }
}

void prefault(std::byte* data, std::size_t bytes) noexcept {
  const std::size_t step = RingMemory::page_size();
  for (std::size_t i = 0; i < bytes; i += step) {
    reinterpret_cast<volatile unsigned char*>(data)[i] = 0;
  }
}

bool is_mirrored(std::byte* data, std::size_t half_bytes) noexcept {
  volatile auto* bytes = reinterpret_cast<volatile unsigned char*>(data);
  bytes[0] = 0xA5;
  const bool same = bytes[half_bytes] == 0xA5;
  bytes[0] = 0;
  return same;
}

#if defined(AUDIORING_POSIX)
bool size_file(int fd, std::size_t bytes) noexcept {
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) return false;
#if defined(AUDIORING_LINUX)
  const int rc = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
    errno = rc;
    return false;
  }
#endif
  return true;
}
#endif

namespace {

#if defined(AUDIORING_POSIX)

// Maps the first half_bytes of `fd` twice, back to back. Closes fd. Returns
// nullptr with errno set on failure.
std::byte* map_twice(int fd, std::size_t half_bytes) noexcept {
  // Reserve 2 * half_bytes of address space first so that both halves land
  // next to each other; MAP_FIXED then replaces the reservation in place.
  void* reserved = mmap(nullptr, 2 * half_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reserved == MAP_FAILED) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return nullptr;
  }
  auto* base = static_cast<std::byte*>(reserved);
  int populate = 0;
#if defined(MAP_POPULATE)
  populate = MAP_POPULATE;
#endif
  // cppcheck-suppress badBitmaskCheck ; `populate` is 0 only where the system has no MAP_POPULATE
  const int flags = MAP_SHARED | MAP_FIXED | populate;
  const bool ok = mmap(base, half_bytes, PROT_READ | PROT_WRITE, flags, fd, 0) != MAP_FAILED &&
                  mmap(base + half_bytes, half_bytes, PROT_READ | PROT_WRITE, flags, fd, 0) != MAP_FAILED;
  const int saved = errno;
  close(fd);  // the mappings keep the memory alive
  if (!ok) {
    munmap(base, 2 * half_bytes);
    errno = saved;
    return nullptr;
  }
  return base;
}

std::byte* map_memfd(std::size_t half_bytes) {
#if defined(AUDIORING_LINUX) && defined(MFD_CLOEXEC)
  const int fd = memfd_create("audioring", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  if (!size_file(fd, half_bytes)) {
    const int saved = errno;
    close(fd);
    if (saved == ENOSPC || saved == ENOMEM) throw OutOfMemory(system_error("memfd ring buffer"));
    errno = saved;
    return nullptr;
  }
  return map_twice(fd, half_bytes);
#else
  (void)half_bytes;
  errno = ENOSYS;
  return nullptr;
#endif
}

std::byte* map_shm(std::size_t half_bytes) {
  // A unique name that lives only until shm_unlink below: the mappings, not
  // the name, keep the memory.
  static std::atomic<std::uint64_t> counter{0};
  int fd = -1;
  std::string name;
  for (int tries = 0; fd < 0 && tries < 16; ++tries) {  // O_EXCL: retry if another process holds the name
    name = "/audioring-" + std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
    fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);
    if (fd < 0 && errno != EEXIST) return nullptr;
  }
  if (fd < 0) return nullptr;
  shm_unlink(name.c_str());
  if (!size_file(fd, half_bytes)) {
    const int saved = errno;
    close(fd);
    if (saved == ENOSPC || saved == ENOMEM) throw OutOfMemory(system_error("shm ring buffer"));
    errno = saved;
    return nullptr;
  }
  return map_twice(fd, half_bytes);
}

std::byte* allocate_plain(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw OutOfMemory(system_error("ring buffer"));
  return static_cast<std::byte*>(p);
}

void release(std::byte* data, std::size_t bytes, MemoryKind) noexcept { munmap(data, bytes); }

#elif defined(_WIN32)

// Windows: the `shm` kind is a pagefile-backed section (CreateFileMapping on
// INVALID_HANDLE_VALUE, Windows' anonymous shared memory) mapped twice, back
// to back. There is no memfd. Views must start on the allocation granularity
// (64 KiB), which page_size() returns.

// VirtualAlloc2 and MapViewOfFile3 (Windows 10 1803 and later), looked up at
// run time so that the module loads on older Windows too.
using VirtualAlloc2Fn = PVOID(WINAPI*)(HANDLE, PVOID, SIZE_T, ULONG, ULONG, MEM_EXTENDED_PARAMETER*, ULONG);
using MapViewOfFile3Fn = PVOID(WINAPI*)(HANDLE, HANDLE, PVOID, ULONG64, SIZE_T, ULONG, ULONG,
                                        MEM_EXTENDED_PARAMETER*, ULONG);
// Placeholder flags, for SDK headers that predate them.
constexpr ULONG kReservePlaceholder = 0x00040000;  // MEM_RESERVE_PLACEHOLDER
constexpr ULONG kReplacePlaceholder = 0x00004000;  // MEM_REPLACE_PLACEHOLDER
constexpr DWORD kPreservePlaceholder = 0x00000002;  // MEM_PRESERVE_PLACEHOLDER

template <class Function>
Function kernelbase_function(const char* name) noexcept {
  const HMODULE module = GetModuleHandleW(L"kernelbase.dll");
  if (module == nullptr) return nullptr;
  return reinterpret_cast<Function>(reinterpret_cast<void*>(GetProcAddress(module, name)));
}

int errno_of(DWORD error) noexcept {
  return error == ERROR_NOT_ENOUGH_MEMORY || error == ERROR_COMMITMENT_LIMIT || error == ERROR_OUTOFMEMORY ? ENOMEM
                                                                                                             : EINVAL;
}

// The standard technique: reserve 2 * half_bytes as one placeholder, split it
// in two, and replace each half with a view of the section. No other thread
// can take the address range in between. nullptr (errno set) where the system
// has no placeholders.
std::byte* map_with_placeholders(HANDLE section, std::size_t half_bytes) noexcept {
  static const auto virtual_alloc2 = kernelbase_function<VirtualAlloc2Fn>("VirtualAlloc2");
  static const auto map_view3 = kernelbase_function<MapViewOfFile3Fn>("MapViewOfFile3");
  if (virtual_alloc2 == nullptr || map_view3 == nullptr) {
    errno = ENOSYS;
    return nullptr;
  }
  auto* base = static_cast<std::byte*>(
      virtual_alloc2(nullptr, nullptr, 2 * half_bytes, MEM_RESERVE | kReservePlaceholder, PAGE_NOACCESS, nullptr, 0));
  if (base == nullptr) {
    errno = errno_of(GetLastError());
    return nullptr;
  }
  if (!VirtualFree(base, half_bytes, MEM_RELEASE | kPreservePlaceholder)) {
    errno = errno_of(GetLastError());
    VirtualFree(base, 0, MEM_RELEASE);
    return nullptr;
  }
  void* first = map_view3(section, nullptr, base, 0, half_bytes, kReplacePlaceholder, PAGE_READWRITE, nullptr, 0);
  void* second =
      first == nullptr
          ? nullptr
          : map_view3(section, nullptr, base + half_bytes, 0, half_bytes, kReplacePlaceholder, PAGE_READWRITE, nullptr, 0);
  if (second == nullptr) {
    errno = errno_of(GetLastError());
    if (first != nullptr) UnmapViewOfFile(first);
    // What is left are placeholders: release both halves.
    VirtualFree(base, 0, MEM_RELEASE);
    VirtualFree(base + half_bytes, 0, MEM_RELEASE);
    return nullptr;
  }
  return base;
}

// Before placeholders (and where a system refuses them, as Wine 8 does): find
// a free range of 2 * half_bytes, release it and map both views at fixed
// addresses in it. Another thread may take the range in between; then the
// views fail and it is tried again elsewhere.
std::byte* map_at_free_range(HANDLE section, std::size_t half_bytes) noexcept {
  for (int tries = 0; tries < 16; ++tries) {
    auto* base = static_cast<std::byte*>(VirtualAlloc(nullptr, 2 * half_bytes, MEM_RESERVE, PAGE_NOACCESS));
    if (base == nullptr) {
      errno = errno_of(GetLastError());
      return nullptr;
    }
    VirtualFree(base, 0, MEM_RELEASE);
    void* first = MapViewOfFileEx(section, FILE_MAP_ALL_ACCESS, 0, 0, half_bytes, base);
    void* second = first == nullptr
                       ? nullptr
                       : MapViewOfFileEx(section, FILE_MAP_ALL_ACCESS, 0, 0, half_bytes, base + half_bytes);
    if (second != nullptr) return base;
    if (first != nullptr) UnmapViewOfFile(first);
  }
  errno = EBUSY;
  return nullptr;
}

std::byte* map_memfd(std::size_t) {
  errno = ENOSYS;
  return nullptr;
}

std::byte* map_shm(std::size_t half_bytes) {
  const auto size = static_cast<unsigned long long>(half_bytes);
  // SEC_COMMIT (the default): the whole section is charged against the commit
  // limit now, so running out shows here, not as a fault on the audio thread.
  HANDLE section = CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE, static_cast<DWORD>(size >> 32),
                                      static_cast<DWORD>(size & 0xFFFFFFFFULL), nullptr);
  if (section == nullptr) {
    const DWORD error = GetLastError();
    if (errno_of(error) == ENOMEM) throw OutOfMemory("shm ring buffer: the section does not fit the commit limit");
    errno = EINVAL;
    return nullptr;
  }
  std::byte* base = map_with_placeholders(section, half_bytes);
  if (base == nullptr) base = map_at_free_range(section, half_bytes);
  const int saved = errno;
  CloseHandle(section);  // the views keep the section alive
  errno = saved;
  return base;
}

std::byte* allocate_plain(std::size_t bytes) {
  void* p = VirtualAlloc(nullptr, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);  // zeroed
  if (p == nullptr) throw OutOfMemory("ring buffer: cannot allocate " + std::to_string(bytes) + " bytes");
  return static_cast<std::byte*>(p);
}

void release(std::byte* data, std::size_t bytes, MemoryKind kind) noexcept {
  if (kind == MemoryKind::plain) {
    VirtualFree(data, 0, MEM_RELEASE);
    return;
  }
  UnmapViewOfFile(data);
  UnmapViewOfFile(data + bytes / 2);
}

#else  // neither POSIX nor Windows: no mirroring implemented; plain memory only.

std::byte* map_memfd(std::size_t) {
  errno = ENOSYS;
  return nullptr;
}
std::byte* map_shm(std::size_t) {
  errno = ENOSYS;
  return nullptr;
}
std::byte* allocate_plain(std::size_t bytes) {
  void* p = std::calloc(bytes, 1);
  if (p == nullptr) throw OutOfMemory("ring buffer: cannot allocate " + std::to_string(bytes) + " bytes");
  return static_cast<std::byte*>(p);
}
void release(std::byte* data, std::size_t, MemoryKind) noexcept { std::free(data); }

#endif

}  // namespace

const char* to_string(MemoryKind kind) noexcept {
  switch (kind) {
    case MemoryKind::memfd:
      return "memfd";
    case MemoryKind::shm:
      return "shm";
    case MemoryKind::plain:
      return "plain";
  }
  return "unknown";
}

const char* to_string(MemoryRequest request) noexcept {
  switch (request) {
    case MemoryRequest::best:
      return "best";
    case MemoryRequest::memfd:
      return "memfd";
    case MemoryRequest::shm:
      return "shm";
    case MemoryRequest::plain:
      return "plain";
  }
  return "unknown";
}

std::size_t RingMemory::page_size() noexcept {
#if defined(AUDIORING_POSIX)
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
#elif defined(_WIN32)
  // Views of a section start on the allocation granularity (64 KiB), not the page.
  static const std::size_t size = [] {
    SYSTEM_INFO info{};
    GetSystemInfo(&info);
    return static_cast<std::size_t>(info.dwAllocationGranularity);
  }();
  return size;
#else
  return 65536;
#endif
}

std::shared_ptr<RingMemory> RingMemory::create(std::size_t half_bytes, MemoryRequest request) {
  if (half_bytes == 0 || half_bytes % page_size() != 0) {
    throw std::invalid_argument("ring memory size must be a positive multiple of the page size, got " +
                                std::to_string(half_bytes));
  }
  if (half_bytes > SIZE_MAX / 2) {
    throw std::length_error("ring memory size " + std::to_string(half_bytes) + " bytes overflows the address space");
  }
  // Mirrored memory needs half_bytes of RAM, plain memory twice that.
  check_fits_in_memory(request == MemoryRequest::plain ? 2 * half_bytes : half_bytes, "ring buffer");

  struct Attempt {
    MemoryRequest request;
    MemoryKind kind;
    std::byte* (*map)(std::size_t);
  };
  const Attempt attempts[] = {{MemoryRequest::memfd, MemoryKind::memfd, map_memfd},
                              {MemoryRequest::shm, MemoryKind::shm, map_shm}};
  std::string failures;
  for (const Attempt& attempt : attempts) {
    if (request != MemoryRequest::best && request != attempt.request) continue;
    std::byte* mapped = attempt.map(half_bytes);
    if (mapped != nullptr && is_mirrored(mapped, half_bytes)) {
      prefault(mapped, 2 * half_bytes);
      return std::shared_ptr<RingMemory>(new RingMemory(mapped, half_bytes, attempt.kind));
    }
    if (mapped != nullptr) {
      release(mapped, 2 * half_bytes, attempt.kind);
      errno = ENOTSUP;
    }
    failures += std::string(failures.empty() ? "" : "; ") + to_string(attempt.kind) + ": " + std::strerror(errno);
  }
  if (request == MemoryRequest::memfd || request == MemoryRequest::shm) {
    throw MappingUnavailable("cannot create mirrored ring memory (" + failures + ")");
  }
  check_fits_in_memory(2 * half_bytes, "ring buffer");
  std::byte* plain = allocate_plain(2 * half_bytes);
  prefault(plain, 2 * half_bytes);
  return std::shared_ptr<RingMemory>(new RingMemory(plain, half_bytes, MemoryKind::plain));
}

RingMemory::~RingMemory() { release(data_, 2 * half_bytes_, kind_); }

}  // namespace audioring
