#include "audioring/shared_ring.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "audioring/doorbell.hpp"
#include "audioring/platform.hpp"
#include "audioring/ring_memory.hpp"

#if defined(AUDIORING_LINUX)
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace audioring {
namespace {

// `name` in quotes, bytes outside printable ASCII as \xNN (a bad name may hold anything).
std::string quoted(const std::string& name) {
  std::string out = "'";
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '\'' && c != '\\') {
      out += c;
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    }
  }
  return out + "'";
}

}  // namespace

bool SharedRing::valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxNameLength || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

void SharedRing::check_name(const std::string& name, const char* argument) {
  if (!valid_name(name)) {
    throw std::invalid_argument(std::string(argument) + " must be " + kNameRule + ", got " + quoted(name));
  }
}

#if defined(AUDIORING_LINUX)

namespace {

using Reason = SharedRingError::Reason;


// How long attach() waits for a file whose maker holds its lock but has not
// finished it. This version's producers never show such a file (create()
// names the file only once it is complete); earlier ones, or other programs
// writing the format, may.
constexpr auto kMakingTimeout = std::chrono::seconds(5);
// How often create() starts over when the name keeps changing under it.
constexpr int kCreateAttempts = 8;

// POSIX shared memory on Linux is the tmpfs at /dev/shm (shm_open() opens
// files there). This file opens them itself: it needs O_NONBLOCK, which
// POSIX does not promise for shm_open(), and O_TMPFILE, which needs the directory.
constexpr const char* kShmDirectory = "/dev/shm";

// Names are per user: "audioring-<uid>-<name>" in /dev/shm, so two users
// can share the same name without meeting.
std::string user_prefix(uid_t uid) { return "audioring-" + std::to_string(uid) + "-"; }
std::string object_path(const std::string& name) {
  return std::string(kShmDirectory) + "/" + user_prefix(geteuid()) + name;
}

// The files in /dev/shm (none if it does not exist).
std::vector<std::string> shm_files() {
  std::vector<std::string> files;
  if (DIR* dir = opendir("/dev/shm")) {
    while (const dirent* entry = readdir(dir)) files.emplace_back(entry->d_name);
    closedir(dir);
  } else if (errno != ENOENT) {
    throw SharedRingError(Reason::system, std::string("cannot list /dev/shm: ") + std::strerror(errno));
  }
  return files;
}

// The user other than this process's who shares `name`, if one does; so a
// reader that may not attach is told why instead of "not found" (the
// memory is mode 0600: the system refuses it to this user anyway).
std::optional<uid_t> other_user_sharing(const std::string& name) {
  for (const std::string& file : shm_files()) {
    unsigned long uid = 0;
    int prefix_length = 0;
    // Only the canonical form counts: sscanf alone would also take "audioring-+7-" or "audioring- 7-".
    if (std::sscanf(file.c_str(), "audioring-%lu-%n", &uid, &prefix_length) == 1 && prefix_length > 0 &&
        uid != geteuid() && file.compare(static_cast<std::size_t>(prefix_length), std::string::npos, name) == 0 &&
        file.compare(0, static_cast<std::size_t>(prefix_length), user_prefix(static_cast<uid_t>(uid))) == 0) {
      return static_cast<uid_t>(uid);
    }
  }
  return std::nullopt;
}

// A descriptor that closes itself.
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_;
};

// Opens the file at `path` without ever blocking (open(2) of a FIFO waits
// for a writer: anyone may plant one under a user's prefix in /dev/shm),
// following a symbolic link or taking a controlling terminal. Only a
// regular file is used afterwards (open_checked()).
int open_file(const std::string& path, int flags) noexcept {
  return open(path.c_str(), flags | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
}

SharedRingError failure(const char* call, const std::string& name, int error) {
  const Reason reason = error == ENOENT                                      ? Reason::not_found
                        : error == EACCES || error == EPERM || error == ELOOP ? Reason::permission
                                                                              : Reason::system;
  return SharedRingError(reason, "shared recording " + quoted(name) + ": " + call + ": " + std::strerror(error));
}

SharedRingError in_use(const std::string& name, std::int64_t pid) {
  return SharedRingError(Reason::in_use, "shared name " + quoted(name) + " is in use by " +
                                             (pid > 0 ? "process " + std::to_string(pid) : "another process"));
}

// ---- what is at a name ------------------------------------------------------------

const char* file_kind(mode_t mode) noexcept {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "regular file";
    case S_IFDIR:
      return "directory";
    case S_IFIFO:
      return "FIFO";
    case S_IFLNK:
      return "symbolic link";
    case S_IFSOCK:
      return "socket";
    case S_IFCHR:
      return "character device";
    case S_IFBLK:
      return "block device";
    default:
      return "file of unknown type";
  }
}

// The file at `path` must be a regular file of this user, as a producer
// makes it: another user's is a permission error; this user's FIFO,
// directory, socket or link is `not_regular` (invalid for a reader: not a
// shared ring; in_use for a producer: the name is taken).
void check_file(const struct stat& st, const std::string& path, const std::string& name, Reason not_regular) {
  if (st.st_uid != geteuid()) {
    throw SharedRingError(Reason::permission, "shared recording " + quoted(name) + " belongs to user " +
                                                  std::to_string(st.st_uid) + ", not to this process's user " +
                                                  std::to_string(geteuid()) + " (" + path + " is a " +
                                                  file_kind(st.st_mode) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    throw SharedRingError(not_regular, "shared name " + quoted(name) + ": " + path + " is a " +
                                           file_kind(st.st_mode) + ", not a shared recording (a regular file)");
  }
}

// Opens `path` (flags: O_RDONLY or O_RDWR) and checks what it is
// (check_file()); fills `st`. Returns an invalid Fd if nothing is there.
// Where open(2) refuses the file for what it is (a link, a socket, a
// directory opened for writing), lstat() tells what.
Fd open_checked(const std::string& path, const std::string& name, int flags, Reason not_regular, struct stat& st) {
  Fd fd(open_file(path, flags));
  if (fd) {
    if (fstat(fd.get(), &st) != 0) throw failure("fstat", name, errno);
  } else {
    const int error = errno;
    if (error == ENOENT) return fd;
    if (lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return fd;  // gone meanwhile
      throw failure("open", name, error);
    }
    check_file(st, path, name, not_regular);
    throw failure("open", name, error);  // a regular file of ours that cannot be opened
  }
  check_file(st, path, name, not_regular);
  return fd;
}

// ---- locks and liveness ----------------------------------------------------------

flock whole_file(short type) noexcept {
  flock lock{};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file, however it grows; l_pid must be 0 (OFD)
  return lock;
}

bool try_write_lock(int fd) noexcept {
  flock lock = whole_file(F_WRLCK);
  return fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

void unlock(int fd) noexcept {
  flock lock = whole_file(F_UNLCK);
  fcntl(fd, F_OFD_SETLK, &lock);
}

// Whether another open file description holds a write lock (a producer's,
// or a reclaimer's) on the file.
bool lock_held(int fd) noexcept {
  flock lock = whole_file(F_RDLCK);
  return fcntl(fd, F_OFD_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
}

bool pid_exists(std::int64_t pid) noexcept {
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) return false;  // kill(0 or -n) means a group
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Whether `path` still names the file open as `fd` (same device and inode).
bool names_file(const std::string& path, int fd) noexcept {
  struct stat mine {};
  struct stat theirs {};
  const Fd other(open_file(path, O_RDONLY));
  return other && fstat(fd, &mine) == 0 && fstat(other.get(), &theirs) == 0 && mine.st_dev == theirs.st_dev &&
         mine.st_ino == theirs.st_ino;
}

// A header field read with pread (no mapping: the file may be short), 0 if
// the file does not reach it.
template <class T>
T read_field(int fd, std::size_t offset) noexcept {
  T value{};
  if (pread(fd, &value, sizeof value, static_cast<off_t>(offset)) != static_cast<ssize_t>(sizeof value)) return T{};
  return value;
}

// ---- what a reader checks -----------------------------------------------------------

struct stat stat_checked(int fd, const std::string& name) {
  struct stat st {};
  if (fstat(fd, &st) != 0) throw failure("fstat", name, errno);
  return st;
}

// The file (this user's, check_file()) must be closed to everyone else, as a producer makes it.
void check_private(const struct stat& st, const std::string& name) {
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw SharedRingError(Reason::permission, "shared recording " + quoted(name) +
                                                  " is open to group or others (mode " + mode +
                                                  "); a producer makes it 0600");
  }
}

// Whether a producer is still making the file: it holds the lock and has not
// stored the header's version yet.
bool being_made(int fd) noexcept {
  struct stat st {};
  if (!lock_held(fd) || fstat(fd, &st) != 0) return false;
  return static_cast<std::size_t>(st.st_size) < RingMemory::page_size() ||
         read_field<std::uint32_t>(fd, offsetof(SharedHeader, version)) == 0;
}

// The header's fields, checked, and a snapshot of its counters.
struct Layout {
  std::size_t header_bytes;
  std::size_t data_bytes;
  std::size_t channels;
  SampleFormat format;
  std::size_t frame_bytes;
  std::int64_t capacity;
  std::uint32_t sampling_rate;
  std::int64_t pid;
  SharedState state;
  std::int64_t written;
  std::int64_t first_frame;
};

class InvalidHeader {
 public:
  explicit InvalidHeader(const std::string& name) : name_(name) {}
  [[noreturn]] void operator()(const std::string& what) const {
    throw SharedRingError(Reason::invalid, "invalid shared ring " + quoted(name_) + ": " + what);
  }

 private:
  const std::string& name_;
};

// A mapping that unmaps itself.
class Mapping {
 public:
  Mapping(void* address, std::size_t bytes) noexcept : address_(address), bytes_(bytes) {}
  ~Mapping() {
    if (address_ != MAP_FAILED) munmap(address_, bytes_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  void* get() const noexcept { return address_; }

 private:
  void* address_;
  std::size_t bytes_;
};

// Reads the header of the open object `fd` and checks every field before it
// trusts any; throws SharedRingError(invalid) naming the field and its value.
Layout inspect(int fd, const std::string& path, const std::string& name) {
  const InvalidHeader invalid(name);
  const struct stat st = stat_checked(fd, name);
  check_file(st, path, name, Reason::invalid);
  check_private(st, name);
  const std::size_t page = RingMemory::page_size();
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < page) {
    invalid("the file is " + std::to_string(size) + " bytes, less than one page (" + std::to_string(page) + ")");
  }
  const Mapping first_page(mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, 0), page);
  if (first_page.get() == MAP_FAILED) throw failure("mmap", name, errno);
  const auto& h = *static_cast<const SharedHeader*>(first_page.get());
  const auto show = [](auto value) { return std::to_string(value); };

  const std::uint32_t version = h.version.load(std::memory_order_acquire);  // orders the reads below
  if (version == 0) invalid("layout version is 0: its producer is still making it, or died doing so");
  if (std::memcmp(h.magic, kSharedMagic, sizeof kSharedMagic) != 0) {
    invalid("magic is " + quoted(std::string(h.magic, sizeof h.magic)) + ", expected 'audiorng' (not an audioring "
            "shared ring)");
  }
  if (version != kSharedVersion) {
    invalid("layout version is " + show(version) + ", this audioring reads version " + show(kSharedVersion));
  }
  const std::uint64_t header_bytes = h.header_bytes;
  if (header_bytes % page != 0 || header_bytes < sizeof(SharedHeader) || header_bytes > size) {
    invalid("header_bytes is " + show(header_bytes) + ", expected a multiple of the page size (" + show(page) +
            ") from " + show(sizeof(SharedHeader)) + " to the file's size (" + show(size) + ")");
  }
  const std::uint32_t channels = h.channels;
  if (channels < 1 || channels > kSharedMaxChannels) {
    invalid("channels is " + show(channels) + ", expected 1.." + show(kSharedMaxChannels));
  }
  const std::uint32_t format = h.format;
  if (format >= std::size(kSampleFormats)) {
    invalid("sample format is " + show(format) + ", expected 0.." + show(std::size(kSampleFormats) - 1));
  }
  const std::size_t item = format_info(static_cast<SampleFormat>(format)).bytes;
  const std::uint64_t frame_bytes = h.frame_bytes;
  if (frame_bytes != channels * item) {
    invalid("frame_bytes is " + show(frame_bytes) + ", expected channels x item size = " + show(channels) + " x " +
            show(item));
  }
  const std::int64_t capacity = h.capacity;
  if (capacity < 1) invalid("capacity is " + show(capacity) + " frames, expected at least 1");
  const std::uint64_t data_bytes = h.data_bytes;
  const auto frames = static_cast<std::uint64_t>(capacity);
  if (frames > std::numeric_limits<std::uint64_t>::max() / frame_bytes || frames * frame_bytes != data_bytes) {
    invalid("data_bytes is " + show(data_bytes) + ", expected capacity x frame_bytes = " + show(capacity) + " x " +
            show(frame_bytes));
  }
  if (data_bytes % page != 0 || data_bytes > std::numeric_limits<std::size_t>::max() / 4) {
    invalid("data_bytes is " + show(data_bytes) + ", expected a multiple of the page size (" + show(page) +
            ") that fits the address space twice");
  }
  if (h.data_offset != header_bytes) {
    invalid("data_offset is " + show(h.data_offset) + ", expected header_bytes (" + show(header_bytes) + ")");
  }
  if (data_bytes != size - header_bytes) {  // no overflow: header_bytes <= size
    invalid("the file is " + show(size) + " bytes, expected data_offset + data_bytes = " + show(header_bytes) +
            " + " + show(data_bytes));
  }
  const std::int64_t pid = h.producer_pid;
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) invalid("producer_pid is " + show(pid));
  if (h.producer_uid != st.st_uid) {
    invalid("producer_uid is " + show(h.producer_uid) + ", expected the file's owner (" + show(st.st_uid) + ")");
  }
  const std::uint32_t state = h.state.load(std::memory_order_acquire);
  if (state >= kSharedStates) invalid("state is " + show(state) + ", expected 0.." + show(kSharedStates - 1));
  // The counters move while we look: each is checked against the bounds that
  // hold at every instant (written <= intent, both in 0..2^62).
  const std::int64_t written = h.control.written.load(std::memory_order_acquire);
  const std::int64_t intent = h.control.intent.load(std::memory_order_acquire);
  if (written < 0 || written > kSharedMaxFrame || intent < written || intent > kSharedMaxFrame) {
    invalid("frame counters are written = " + show(written) + ", intent = " + show(intent) +
            ", expected 0 <= written <= intent <= 2^62");
  }
  const std::int64_t first_frame = h.first_frame.load(std::memory_order_relaxed);
  if (first_frame < 0 || first_frame > kSharedMaxFrame) invalid("first_frame is " + show(first_frame));
  const RecordingCounters& r = h.recording;
  const std::uint32_t published_flag = r.published.load(std::memory_order_acquire);
  const std::uint32_t converting_flag = r.converting.load(std::memory_order_acquire);
  if (published_flag > 1 || converting_flag > 1) {
    invalid("recording flags are published = " + show(published_flag) + ", converting = " + show(converting_flag) +
            ", expected 0 or 1");
  }
  const double input_rate = r.input_rate.load(std::memory_order_relaxed);
  if (converting_flag == 1 && !(std::isfinite(input_rate) && input_rate > 0)) {
    invalid("the converter's input rate is " + std::to_string(input_rate) + ", expected a finite rate > 0");
  }
  return {static_cast<std::size_t>(header_bytes), static_cast<std::size_t>(data_bytes), channels,
          static_cast<SampleFormat>(format),       static_cast<std::size_t>(frame_bytes), capacity,
          h.sampling_rate,                          pid,
          static_cast<SharedState>(state),          written,
          first_frame};
}

// Maps the file as [header][frames][frames]: header_bytes at offset 0, then
// data_bytes at offset header_bytes twice, back to back (ring_memory.cpp's
// map_twice with a header in front). Returns nullptr with errno set on failure.
std::byte* map_ring_file(int fd, std::size_t header_bytes, std::size_t data_bytes, bool writable) noexcept {
  const std::size_t total = header_bytes + 2 * data_bytes;  // callers bound both by SIZE_MAX / 4
  void* reserved = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reserved == MAP_FAILED) return nullptr;
  auto* base = static_cast<std::byte*>(reserved);
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  const int flags = MAP_SHARED | MAP_FIXED | MAP_POPULATE;
  const auto at = static_cast<off_t>(header_bytes);
  const bool ok = mmap(base, header_bytes, prot, flags, fd, 0) != MAP_FAILED &&
                  mmap(base + header_bytes, data_bytes, prot, flags, fd, at) != MAP_FAILED &&
                  mmap(base + header_bytes + data_bytes, data_bytes, prot, flags, fd, at) != MAP_FAILED;
  if (!ok) {
    const int saved = errno;
    munmap(base, total);
    errno = saved;
    return nullptr;
  }
  return base;
}

[[noreturn]] void mapping_failed(const std::string& name, int error) {
  if (error == ENOMEM || error == ENOSPC) {
    throw OutOfMemory("shared recording " + quoted(name) + ": " + std::strerror(error));
  }
  throw failure("mmap", name, error);
}

// The name exists: throws in_use if a live producer has it; otherwise
// unlinks it under its lock (see shared_ring.hpp), or finds it gone.
// A file that is not ours, or not a regular file, is never unlinked.
void reclaim(const std::string& path, const std::string& name) {
  struct stat st {};
  const Fd fd = open_checked(path, name, O_RDWR, Reason::in_use, st);
  if (!fd) return;  // gone meanwhile
  const auto pid = read_field<std::int64_t>(fd.get(), offsetof(SharedHeader, producer_pid));
  if (lock_held(fd.get()) && pid_exists(pid)) throw in_use(name, pid);
  if (!try_write_lock(fd.get())) {
    // Not its producer, which is gone: a process that inherited the lock
    // without fork handlers (a raw clone), or another process reclaiming the name.
    throw SharedRingError(Reason::in_use, "shared name " + quoted(name) + " is held by another process (its producer" +
                                              (pid > 0 ? ", process " + std::to_string(pid) + "," : "") +
                                              " is gone); try again once that process lets go of it");
  }
  if (names_file(path, fd.get())) unlink(path.c_str());
}  // closing fd drops the lock

// ---- producers' locks across fork() -------------------------------------------------

// A producer's lock belongs to its open file description, which fork()
// shares with the child: a child that outlived its parent would keep the
// name "in use" by a dead process. So every live producer's descriptor is
// listed here, and a pthread_atfork child handler closes the child's copies
// (the parent's lock stays: it goes only when the last reference to the
// description goes). A mapping is such a reference too, and children inherit
// mappings: the producer maps the file through another description
// (reopen()), so that the locked one is referenced by its descriptor alone.
// The list's mutex is held across fork() (prepare/parent/child handlers), so
// no descriptor is ever opened but not yet listed when a child is made.
// Children made without fork handlers (vfork, posix_spawn) exec at once, and
// O_CLOEXEC closes the descriptor then.
struct Producers {
  std::mutex mutex;
  std::vector<int*> descriptors;  // SharedRing::fd_ of each live producer
};

Producers& producers() {
  static Producers* const list = new Producers();  // never destroyed: rings may outlive static destructors
  return *list;
}

void before_fork() noexcept { producers().mutex.lock(); }
void after_fork_in_parent() noexcept { producers().mutex.unlock(); }
void after_fork_in_child() noexcept {
  Producers& list = producers();
  for (int* fd : list.descriptors) {
    if (*fd >= 0) close(*fd);
    *fd = -1;  // the child's ring object no longer has it (unshare() and the destructor skip it)
  }
  list.mutex.unlock();
}

// Opens the producer's new, unnamed file (O_TMPFILE: it gets the name only
// once complete, see create()) into `*fd`, listed as a producer's descriptor.
void open_producer_file(int* fd, const std::string& name) {
  // Registered once, before the first producer's descriptor exists. If it
  // fails (ENOMEM), forked children keep the lock, as without this list.
  [[maybe_unused]] static const int registered =
      pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);
  Producers& list = producers();
  const std::lock_guard<std::mutex> guard(list.mutex);
  list.descriptors.reserve(list.descriptors.size() + 1);  // may throw: before the descriptor exists
  *fd = open(kShmDirectory, O_TMPFILE | O_RDWR | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (*fd < 0) throw failure("open(O_TMPFILE)", name, errno);
  list.descriptors.push_back(fd);
}

void forget_producer_file(int* fd) noexcept {
  Producers& list = producers();
  const std::lock_guard<std::mutex> guard(list.mutex);
  list.descriptors.erase(std::remove(list.descriptors.begin(), list.descriptors.end(), fd), list.descriptors.end());
}

// A new open file description of the file open as `fd` (read-write), through
// /proc; an invalid Fd where /proc is missing.
Fd reopen(int fd) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  return Fd(open(proc.c_str(), O_RDWR | O_CLOEXEC));
}

// Gives the unnamed file `fd` the name `path`, atomically: fails with EEXIST
// if the name exists. Through /proc (any user); where /proc is missing,
// AT_EMPTY_PATH (which needs CAP_DAC_READ_SEARCH).
bool link_file(int fd, const std::string& path) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
  if (errno != ENOENT) return false;
  return linkat(fd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH) == 0;
}

}  // namespace

std::shared_ptr<SharedRing> SharedRing::create(const std::string& name, const SharedRingSpec& spec) {
  check_name(name);
  const std::string what = "shared ring " + quoted(name);
  if (spec.channels < 1 || spec.channels > kSharedMaxChannels) {
    throw std::invalid_argument(what + ": channels must be 1.." + std::to_string(kSharedMaxChannels) + ", got " +
                                std::to_string(spec.channels));
  }
  if (static_cast<std::size_t>(spec.format) >= std::size(kSampleFormats)) {
    throw std::invalid_argument(what + ": unknown sample format");
  }
  const std::size_t page = RingMemory::page_size();
  const std::size_t frame_size = spec.channels * format_info(spec.format).bytes;
  const auto frames = static_cast<std::size_t>(spec.capacity);
  if (spec.capacity < 1 || frames > std::numeric_limits<std::size_t>::max() / 4 / frame_size) {
    throw std::invalid_argument(what + ": capacity must be 1.." +
                                std::to_string(std::numeric_limits<std::size_t>::max() / 4 / frame_size) +
                                " frames, got " + std::to_string(spec.capacity));
  }
  const std::size_t data_bytes = frames * frame_size;
  if (data_bytes % page != 0) {
    throw std::invalid_argument(what + ": capacity x frame size must be a multiple of the page size (see "
                                       "FrameRing::rounded_capacity)");
  }
  const std::size_t header_bytes = (sizeof(SharedHeader) + page - 1) / page * page;
  check_fits_in_memory(header_bytes + data_bytes, what);

  // The file is made complete, locked and private before it gets its name
  // (link_file()): a reader or a reclaimer never finds it half made.
  const std::string path = object_path(name);
  std::shared_ptr<SharedRing> ring(new SharedRing(false));  // its destructor releases what is made below
  ring->name_ = name;
  ring->path_ = path;
  open_producer_file(&ring->fd_, name);
  if (!try_write_lock(ring->fd_)) throw failure("fcntl(F_OFD_SETLK)", name, errno);
  if (fchmod(ring->fd_, S_IRUSR | S_IWUSR) != 0) throw failure("fchmod", name, errno);  // whatever the umask
  if (!size_file(ring->fd_, header_bytes + data_bytes)) {
    if (errno == ENOSPC || errno == ENOMEM) throw OutOfMemory(what + ": " + std::strerror(errno));
    throw failure("ftruncate", name, errno);
  }
  {
    // Mapped through a description without the lock (see Producers); where
    // /proc is missing, through the locked one: then a forked child that
    // outlives the producer keeps the name in use until it exits.
    const Fd unlocked = reopen(ring->fd_);
    ring->base_ = map_ring_file(unlocked ? unlocked.get() : ring->fd_, header_bytes, data_bytes, true);
  }
  if (ring->base_ == nullptr) mapping_failed(name, errno);
  ring->mapped_bytes_ = header_bytes + 2 * data_bytes;
  std::byte* const data = ring->base_ + header_bytes;
  if (!is_mirrored(data, data_bytes)) {
    throw SharedRingError(Reason::system, what + ": the system did not mirror the mapping");
  }
  prefault(ring->base_, ring->mapped_bytes_);
  ring->channels_ = spec.channels;
  ring->format_ = spec.format;
  ring->sampling_rate_ = spec.sampling_rate;
  ring->producer_pid_ = getpid();

  SharedHeader& h = *new (ring->base_) SharedHeader();
  ring->header_ = &h;
  ring->lay_out(data, spec.capacity, frame_size, MemoryKind::shm, h.control, h.first_frame);
  h.producer_pid = ring->producer_pid_;
  h.producer_uid = geteuid();
  std::memcpy(h.magic, kSharedMagic, sizeof kSharedMagic);
  h.channels = static_cast<std::uint32_t>(spec.channels);
  h.header_bytes = header_bytes;
  h.frame_bytes = frame_size;
  h.format = static_cast<std::uint32_t>(spec.format);
  h.sampling_rate = spec.sampling_rate;
  h.capacity = spec.capacity;
  h.data_offset = header_bytes;
  h.data_bytes = data_bytes;
  h.version.store(kSharedVersion, std::memory_order_release);  // last: publishes everything above

  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    if (link_file(ring->fd_, path)) return ring;
    if (errno != EEXIST) throw failure("linkat", name, errno);
    reclaim(path, name);  // throws if a live producer, or anything but a stale ring of ours, has the name
  }
  throw SharedRingError(Reason::in_use, "shared name " + quoted(name) +
                                            " keeps changing: other processes are creating or reclaiming it");
}

std::shared_ptr<SharedRing> SharedRing::attach(const std::string& name) {
  check_name(name);
  const std::string path = object_path(name);
  const auto give_up = std::chrono::steady_clock::now() + kMakingTimeout;
  for (;;) {
    struct stat st {};
    Fd fd = open_checked(path, name, O_RDONLY, Reason::invalid, st);
    if (!fd) {
      if (const std::optional<uid_t> owner = other_user_sharing(name)) {
        throw SharedRingError(Reason::permission, quoted(name) + " is shared by another user (uid " +
                                                      std::to_string(*owner) +
                                                      "); only the user who shares a recording can attach to it");
      }
      throw SharedRingError(Reason::not_found, "no shared recording named " + quoted(name));
    }
    check_private(st, name);
    if (being_made(fd.get())) {  // not there yet: wait for it, a while
      if (std::chrono::steady_clock::now() >= give_up) {
        throw SharedRingError(Reason::not_found, "shared recording " + quoted(name) +
                                                     " is still being made: the process making it has held it for " +
                                                     std::to_string(kMakingTimeout.count()) +
                                                     " s without finishing its header");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    const Layout layout = inspect(fd.get(), path, name);
    std::shared_ptr<SharedRing> ring(new SharedRing(true));
    ring->name_ = name;
    ring->path_ = path;
    ring->fd_ = fd.release();
    ring->base_ = map_ring_file(ring->fd_, layout.header_bytes, layout.data_bytes, false);
    if (ring->base_ == nullptr) mapping_failed(name, errno);
    ring->mapped_bytes_ = layout.header_bytes + 2 * layout.data_bytes;
    ring->header_ = reinterpret_cast<SharedHeader*>(ring->base_);
    ring->lay_out(ring->base_ + layout.header_bytes, layout.capacity, layout.frame_bytes, MemoryKind::shm,
                  ring->header_->control, ring->header_->first_frame);
    ring->channels_ = layout.channels;
    ring->format_ = layout.format;
    ring->sampling_rate_ = layout.sampling_rate;
    ring->producer_pid_ = layout.pid;
    return ring;
  }
}

SharedRing::~SharedRing() {
  unshare();
  if (!read_only()) forget_producer_file(&fd_);
  if (base_ != nullptr) munmap(base_, mapped_bytes_);
  if (fd_ >= 0) close(fd_);
}

void SharedRing::set_state(SharedState state) noexcept {
  assert(!read_only() && "SharedRing::set_state needs the producer");
  const auto value = static_cast<std::uint32_t>(state);
  if (header_->state.exchange(value, std::memory_order_acq_rel) != value) {
    // After the state: a reader that sees the count changed sees the state too.
    header_->state_changes.fetch_add(1, std::memory_order_seq_cst);
  }
  // After the count (doorbell.hpp's argument): every waiter of every process
  // wakes and re-checks interrupts(). In shared scope ring() keeps nothing of
  // this process's (it always wakes), so this doorbell rings the header's
  // word exactly as the producer's FrameRing's does.
  Doorbell(header_->control.doorbell, Doorbell::Scope::shared).ring();
}

void SharedRing::unshare() noexcept {
  if (read_only() || fd_ < 0 || owner_.forked()) return;  // a forked child shares the parent's lock: hands off
  if (unshared_.exchange(true, std::memory_order_acq_rel)) return;
  if (names_file(path_, fd_)) unlink(path_.c_str());
  unlock(fd_);
}

bool SharedRing::producer_alive() const noexcept {
  if (!read_only()) return !unshared();
  return lock_held(fd_) && pid_exists(producer_pid_);
}

bool SharedRing::producer_found_dead() const noexcept {
  if (!read_only()) return false;
  if (dead_.load(std::memory_order_relaxed)) return true;
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
  const std::int64_t last = last_check_ns_.load(std::memory_order_relaxed);
  if (last != INT64_MIN && now - last < kLivenessIntervalNs) return false;
  last_check_ns_.store(now, std::memory_order_relaxed);  // racing waiters may both check: harmless
  if (producer_alive()) return false;
  dead_.store(true, std::memory_order_relaxed);  // the lock, once dropped, is never taken again by that producer
  return true;
}

std::vector<SharedRingInfo> list_shared(std::vector<std::string>* skipped) {
  const std::string prefix = user_prefix(geteuid());
  std::vector<std::string> names;
  for (const std::string& file : shm_files()) {
    if (file.compare(0, prefix.size(), prefix) == 0) names.push_back(file.substr(prefix.size()));
  }
  std::sort(names.begin(), names.end());

  std::vector<SharedRingInfo> found;
  for (const std::string& name : names) {
    const std::string path = object_path(name);
    try {
      if (!SharedRing::valid_name(name)) {
        throw SharedRingError(Reason::invalid, path + ": " + quoted(name) + " is not a valid shared name");
      }
      struct stat st {};
      const Fd fd = open_checked(path, name, O_RDONLY, Reason::invalid, st);
      if (!fd) continue;  // gone meanwhile
      check_private(st, name);
      if (!lock_held(fd.get())) {  // stale, whatever it holds
        try {
          reclaim(path, name);
        } catch (const SharedRingError&) {  // someone took it meanwhile: theirs now
        }
        continue;
      }
      if (being_made(fd.get())) continue;
      const Layout layout = inspect(fd.get(), path, name);
      found.push_back({name, layout.pid, pid_exists(layout.pid), layout.channels, layout.format, layout.capacity,
                       layout.sampling_rate, layout.state, layout.written, layout.first_frame});
    } catch (const SharedRingError& error) {
      if (skipped != nullptr) skipped->push_back(error.what());
    }
  }
  return found;
}

#else  // not Linux

namespace {

[[noreturn]] void unsupported(const std::string& what) {
  throw SharedRingError(SharedRingError::Reason::unsupported, what + " needs Linux (POSIX shared memory and OFD locks)");
}

}  // namespace

std::shared_ptr<SharedRing> SharedRing::create(const std::string& name, const SharedRingSpec&) {
  check_name(name);
  unsupported("sharing a recording by name (" + quoted(name) + ")");
}

std::shared_ptr<SharedRing> SharedRing::attach(const std::string& name) {
  check_name(name);
  unsupported("attaching to a shared recording (" + quoted(name) + ")");
}

SharedRing::~SharedRing() = default;
void SharedRing::set_state(SharedState) noexcept {}
void SharedRing::unshare() noexcept {}
bool SharedRing::producer_alive() const noexcept { return false; }
bool SharedRing::producer_found_dead() const noexcept { return true; }

std::vector<SharedRingInfo> list_shared(std::vector<std::string>*) { unsupported("listing shared recordings"); }

#endif

}  // namespace audioring
