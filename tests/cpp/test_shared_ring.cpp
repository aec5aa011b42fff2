// Tests of rings shared by name between processes (shared_ring.hpp): names,
// the producer's file (owner, mode, size), a reader's read-only view of the
// frames and the header, set_state() interrupting waits, unshare() and the
// destructor unlinking only their own file, "in use" while a producer lives,
// reclaiming stale names (also via list_shared()), liveness (a producer
// killed with SIGKILL interrupts a reader's wait within 250 ms; a forked
// child does not keep a dead producer's name), the doorbell waking a reader
// in another process, permission checks on forged files, FIFOs, directories,
// links and sockets planted at a name, and the counters a Capture or
// Converter publishes in the header giving the reader exactly the
// producer's stats and time anchor. Where sharing is not built (not Linux, or
// the non-Linux paths forced: csrc/audioring/platform.hpp), that create(),
// attach() and list_shared() refuse it, naming the name, and still check names.
//
// Every name includes this process's pid: test runs in parallel do not meet.
#include "check.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audioring/capture.hpp"
#include "audioring/converter.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/platform.hpp"
#include "audioring/shared_ring.hpp"

namespace {

using audioring::Capture;
using audioring::Converter;
using audioring::ConverterConfig;
using audioring::FrameRing;
using audioring::PaTimeInfo;
using audioring::RecordingStats;
using audioring::SampleFormat;
using audioring::SharedRing;
using audioring::SharedRingError;
using audioring::SharedRingSpec;
using audioring::SharedState;
using audioring::TimeAnchor;
using audioring::WaitStatus;
using Reason = SharedRingError::Reason;
using Clock = FrameRing::Clock;
using Frame = FrameRing::Frame;
using std::chrono::milliseconds;

// The shared mapping `ring` lives in (its storage).
SharedRing& mapping(const FrameRing& ring) {
  SharedRing* const shared = SharedRing::of(ring.storage());
  CHECK(shared != nullptr);
  return *shared;
}

std::string unique(const std::string& label) { return "test-" + std::to_string(getpid()) + "-" + label; }
std::string object_path(const std::string& name) { return "/audioring-" + std::to_string(geteuid()) + "-" + name; }
std::string file_path(const std::string& name) { return "/dev/shm" + object_path(name); }
bool exists(const std::string& name) {
  struct stat st {};
  return stat(file_path(name).c_str(), &st) == 0;
}

SharedRingSpec spec(std::size_t channels, SampleFormat format, Frame min_capacity, std::uint32_t rate = 0) {
  SharedRingSpec s;
  s.channels = channels;
  s.format = format;
  s.capacity = FrameRing::rounded_capacity(channels * audioring::format_info(format).bytes, min_capacity);
  s.sampling_rate = rate;
  return s;
}

std::shared_ptr<FrameRing> produce(const std::string& name, const SharedRingSpec& s) {
  return std::make_shared<FrameRing>(SharedRing::create(name, s));
}
std::shared_ptr<FrameRing> attach(const std::string& name) {
  return std::make_shared<FrameRing>(SharedRing::attach(name));
}

// Runs `call`; checks that it throws SharedRingError with `reason` and a
// message naming `name` (and `also`, if given).
template <class Call>
void check_error(Call call, Reason reason, const std::string& name, const char* also, const char* what) {
  try {
    call();
  } catch (const SharedRingError& error) {
    CHECK_MSG(error.reason() == reason, "%s: reason %d, expected %d (%s)", what, static_cast<int>(error.reason()),
              static_cast<int>(reason), error.what());
    CHECK_MSG(std::strstr(error.what(), name.c_str()) != nullptr, "%s: message does not name '%s': %s", what,
              name.c_str(), error.what());
    CHECK_MSG(also == nullptr || std::strstr(error.what(), also) != nullptr, "%s: message lacks '%s': %s", what,
              also, error.what());
    return;
  }
  audioring_test::fail(__FILE__, __LINE__, std::string(what) + ": no SharedRingError");
}

// ---- processes -------------------------------------------------------------------

// A forked child running `body`; a CHECK failing in it ends it with status 1.
template <class Body>
pid_t spawn(Body body) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    try {
      body();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "child %d: FAILED: %s\n", static_cast<int>(getpid()), error.what());
      std::fflush(stderr);
      _exit(3);
    }
    _exit(0);  // no destructors or atexit handlers: the parent owns everything inherited
  }
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  return status;
}

void check_exited_ok(pid_t pid, const char* what) {
  const int status = wait_child(pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child status %d", what, status);
}

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { CHECK(pipe(fd) == 0); }
  ~Pipe() {
    for (const int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void send(char c = 'x') const { CHECK(write(fd[1], &c, 1) == 1); }
  // One byte, or a failure after `timeout`.
  char receive(milliseconds timeout = milliseconds(20000)) const {
    pollfd p{fd[0], POLLIN, 0};
    CHECK_MSG(poll(&p, 1, static_cast<int>(timeout.count())) == 1, "no message within %lld ms",
              static_cast<long long>(timeout.count()));
    char c = 0;
    CHECK(read(fd[0], &c, 1) == 1);
    return c;
  }
};

// The permissions of the mapping that contains `address`, from /proc/self/maps ("r--s", ...).
std::string mapping_permissions(const void* address) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  while (std::getline(maps, line)) {
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    char permissions[8] = {};
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %7s", &begin, &end, permissions) == 3 && begin <= at &&
        at < end) {
      return permissions;
    }
  }
  return "";
}

// How many of this process's descriptors are open on the file at `path` (same inode).
int descriptors_of(const std::string& path) {
  struct stat target {};
  CHECK(stat(path.c_str(), &target) == 0);
  int count = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    struct stat st {};
    if (fstat(fd, &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino) ++count;
  }
  return count;
}

// ---- tests -----------------------------------------------------------------------

void test_names() {
  const SharedRingSpec s = spec(1, SampleFormat::float32, 1);
  for (const std::string& bad : {std::string(), std::string(".hidden"), std::string("a/b"), std::string("a b"),
                                 std::string("caf\xc3\xa9"), std::string(65, 'a'), std::string("x\n"),
                                 std::string("../x"), std::string("a\0b", 3)}) {
    CHECK_THROWS(SharedRing::create(bad, s), std::invalid_argument);
    CHECK_THROWS(SharedRing::attach(bad), std::invalid_argument);
    try {
      SharedRing::check_name(bad);
    } catch (const std::invalid_argument& error) {
      CHECK_MSG(std::strstr(error.what(), "1..64") != nullptr && std::strstr(error.what(), "A-Z") != nullptr,
                "message: %s", error.what());
    }
  }
  // The longest and the oddest valid names.
  const std::string prefix = std::to_string(getpid()) + "-";
  for (const std::string& good : {prefix + std::string(64 - prefix.size(), 'z'), prefix + "a.b-c_D9.", prefix + "-"}) {
    SharedRing::check_name(good);
    const auto producer = produce(good, s);
    CHECK(mapping(*attach(good)).name() == good);
  }
  check_error([&] { SharedRing::attach(unique("missing")); }, Reason::not_found, unique("missing"), "no shared",
              "attach of a missing name");
}

void test_producer_and_reader() {
  const std::string name = unique("basic");
  const SharedRingSpec s = spec(2, SampleFormat::int16, 1000, 16000);
  const mode_t saved_umask = umask(0277);  // would make the file 0400: the producer sets 0600 itself
  const auto producer = produce(name, s);
  umask(saved_umask);
  const Frame capacity = producer->capacity();
  CHECK(capacity == s.capacity && producer->frame_bytes() == 4 && !producer->read_only());
  CHECK(producer->memory_kind() == audioring::MemoryKind::shm && producer->mirrored());
  // The ring lives in the SharedRing; a private ring's storage is none.
  SharedRing& made = mapping(*producer);
  CHECK(&producer->storage() == &made && made.doorbell_scope() == audioring::Doorbell::Scope::shared);
  CHECK(made.data() == producer->frame_address(0) && &made.control() == &made.header().control);
  CHECK(made.published_counters() == &made.header().recording && made.max_frame() == audioring::kSharedMaxFrame);
  CHECK(SharedRing::of(FrameRing(4, 1).storage()) == nullptr);

  struct stat st {};
  CHECK(stat(file_path(name).c_str(), &st) == 0);
  CHECK_MSG((st.st_mode & 07777) == 0600, "mode %o", static_cast<unsigned>(st.st_mode & 07777));
  CHECK(st.st_uid == geteuid());
  const std::size_t page = audioring::RingMemory::page_size();
  CHECK(static_cast<std::size_t>(st.st_size) == page + static_cast<std::size_t>(capacity) * 4);

  const auto reader = attach(name);
  const SharedRing& shared = mapping(*reader);
  CHECK(reader->read_only() && shared.read_only() && shared.name() == name);
  CHECK(shared.doorbell_scope() == audioring::Doorbell::Scope::read_only && shared.published_counters() == nullptr);
  CHECK(shared.channels() == 2 && shared.format() == SampleFormat::int16 && reader->frame_bytes() == 4);
  CHECK(reader->capacity() == capacity && shared.sampling_rate() == 16000);
  CHECK(shared.producer_pid() == getpid() && shared.producer_alive());
  CHECK(shared.state() == SharedState::idle && reader->first() == 0);
  CHECK(reader->written() == 0 && reader->intact(-capacity) && !reader->intact(-capacity - 1));

  // The reader's mapping is read-only (header and frames); the producer's is not.
  CHECK_MSG(mapping_permissions(reader->frame_address(0)).rfind("r--s", 0) == 0, "reader frames: %s",
            mapping_permissions(reader->frame_address(0)).c_str());
  CHECK(mapping_permissions(reader->frame_address(0) + capacity * 4).rfind("r--s", 0) == 0);
  CHECK(mapping_permissions(&shared.header()).rfind("r--s", 0) == 0);
  CHECK(mapping_permissions(producer->frame_address(0)).rfind("rw-s", 0) == 0);

  // Frames written by the producer are the reader's, in both halves.
  std::vector<std::int16_t> block(static_cast<std::size_t>(3 * capacity) * 2);
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<std::int16_t>(i * 7 + 1);
  producer->write(block.data(), 5);
  producer->write(block.data() + 10, 2 * capacity + 7);  // laps the ring
  const Frame written = 2 * capacity + 12;
  CHECK(reader->written() == written);
  for (const Frame n : {Frame{1}, Frame{17}, capacity}) {
    std::vector<std::int16_t> out(static_cast<std::size_t>(n) * 2);
    CHECK(reader->copy(written - n, n, out.data()));
    CHECK(std::memcmp(out.data(), producer->frame_address(written - n), static_cast<std::size_t>(n) * 4) == 0);
    CHECK(std::memcmp(reader->frame_address(written - n), producer->frame_address(written - n),
                      static_cast<std::size_t>(n) * 4) == 0);
  }
  CHECK(reader->intact(written - capacity) && !reader->intact(written - capacity - 1));

  // State and first frame; a state change counts as an interrupt, a repeat does not.
  const std::uint64_t before = reader->interrupts();
  mapping(*producer).set_state(SharedState::recording);
  CHECK(shared.state() == SharedState::recording && reader->interrupts() == before + 1);
  CHECK(producer->interrupts() == reader->interrupts());  // the producer's own waiters too
  mapping(*producer).set_state(SharedState::recording);
  CHECK(reader->interrupts() == before + 1);

  // list_shared() knows it.
  std::vector<std::string> skipped;
  const auto listed = audioring::list_shared(&skipped);
  const auto it = std::find_if(listed.begin(), listed.end(), [&](const auto& e) { return e.name == name; });
  CHECK(it != listed.end());
  CHECK(it->pid == getpid() && it->alive && it->channels == 2 && it->format == SampleFormat::int16);
  CHECK(it->capacity == capacity && it->sampling_rate == 16000 && it->state == SharedState::recording);
  CHECK(it->frames_written == written && it->first_frame == 0);

  // A clear() begins a recording: the reader sees its first frame.
  producer->clear();
  CHECK(reader->first() == written + capacity && producer->first() == written + capacity);
}

void test_unshare() {
  const std::string name = unique("unshare");
  const SharedRingSpec s = spec(1, SampleFormat::float32, 100);
  auto producer = produce(name, s);
  const float x[3] = {1.0f, 2.0f, 3.0f};
  producer->write(x, 3);
  const auto reader = attach(name);
  CHECK(mapping(*reader).producer_alive());

  mapping(*producer).unshare();
  CHECK(!exists(name) && mapping(*producer).unshared() && !mapping(*producer).producer_alive());
  check_error([&] { SharedRing::attach(name); }, Reason::not_found, name, nullptr, "attach after unshare");
  mapping(*producer).unshare();  // idempotent
  // The reader keeps its mapping and sees the producer gone: a wait ends at once.
  float out[3] = {};
  CHECK(reader->copy(0, 3, out) && out[2] == 3.0f);
  CHECK(!mapping(*reader).producer_alive());
  auto start = Clock::now();
  CHECK(reader->wait_for_frame(1'000'000, start + milliseconds(10000), reader->interrupts()) ==
        WaitStatus::interrupted);
  CHECK(Clock::now() - start < milliseconds(1000));

  // The name is free again; the old producer's end does not unlink the new file.
  const auto second = produce(name, s);
  producer.reset();
  CHECK(exists(name));
  CHECK(attach(name)->written() == 0);

  // Someone else unlinked the name and made a new file there: unshare()
  // leaves that one alone.
  CHECK(shm_unlink(object_path(name).c_str()) == 0);
  const auto third = produce(name, s);
  mapping(*second).unshare();
  CHECK(exists(name));

  // The destructor unlinks its own name.
  { const auto scoped = produce(unique("scoped"), s); }
  CHECK(!exists(unique("scoped")));
}

void test_in_use() {
  const std::string name = unique("in-use");
  const SharedRingSpec s = spec(1, SampleFormat::int8, 10);
  const auto producer = produce(name, s);
  const std::string pid = "process " + std::to_string(getpid());
  check_error([&] { SharedRing::create(name, s); }, Reason::in_use, name, pid.c_str(), "second producer");
  const pid_t child = spawn([&] {
    check_error([&] { SharedRing::create(name, s); }, Reason::in_use, name, pid.c_str(), "producer in a child");
  });
  check_exited_ok(child, "in use from another process");
  CHECK(exists(name) && mapping(*attach(name)).producer_alive());
}

void test_stale_reclaim() {
  const SharedRingSpec s = spec(1, SampleFormat::int16, 100);
  // A producer that dies without unsharing leaves its name behind, unlocked.
  const std::string name = unique("stale");
  const pid_t child = spawn([&] {
    const auto ring = produce(name, s);
    const std::int16_t frames[100] = {};
    ring->write(frames, 100);
    mapping(*ring).set_state(SharedState::recording);
    _exit(0);  // no destructor: the name stays; the kernel drops the lock
  });
  check_exited_ok(child, "stale producer");
  CHECK(exists(name));
  const auto old = attach(name);  // a finished recording can still be read
  CHECK(old->written() == 100 && mapping(*old).state() == SharedState::recording);
  CHECK(!mapping(*old).producer_alive());
  const auto start = Clock::now();
  CHECK(old->wait_for_frame(101, start + milliseconds(10000), old->interrupts()) == WaitStatus::interrupted);
  CHECK(Clock::now() - start < milliseconds(1000));
  // A new producer reclaims the name.
  const auto fresh = produce(name, s);
  CHECK(fresh->written() == 0 && attach(name)->written() == 0 && old->written() == 100);

  // list_shared() reclaims stale names and does not list them.
  const std::string name2 = unique("stale2");
  const pid_t child2 = spawn([&] {
    const auto ring = produce(name2, s);
    mapping(*ring).set_state(SharedState::stopped);
    _exit(0);
  });
  check_exited_ok(child2, "second stale producer");
  CHECK(exists(name2));
  for (const auto& entry : audioring::list_shared()) CHECK(entry.name != name2);
  CHECK(!exists(name2));

  // The producer died but a forked child of it lives on, with its copies of
  // the producer's descriptors and mappings: it does not keep the lock (the
  // fork handler closed its copy of the lock's descriptor; the mapping is
  // made through another open file description), so the name is stale at once.
  const std::string name3 = unique("forked");
  Pipe release;
  Pipe ready;
  const pid_t producer_pid = spawn([&] {
    const auto ring = produce(name3, s);
    spawn([&] {  // stays until released, holding whatever it inherited
      CHECK(descriptors_of(file_path(name3)) == 0);
      ready.send();
      release.receive();
    });
    CHECK(mapping(*attach(name3)).producer_alive());  // the parent's own lock outlived the child's close
    _exit(0);
  });
  ready.receive();
  check_exited_ok(producer_pid, "producer that leaves a forked child behind");
  CHECK(!mapping(*attach(name3)).producer_alive());
  for (const auto& entry : audioring::list_shared()) CHECK(entry.name != name3);  // reclaimed
  const auto third = produce(name3, s);
  CHECK(mapping(*third).producer_alive() && mapping(*third).producer_pid() == getpid());
  release.send();
}

// The planted things anyone can put at a name in /dev/shm (the directory is
// world-writable): a FIFO (whose open(2) would block forever), a directory,
// a symbolic link, a socket. Each is refused at once, naming the path and
// what it is, by attach() (invalid), create() (in use) and list_shared()
// (skipped, described); and left in place.
void test_planted_files() {
  const SharedRingSpec s = spec(1, SampleFormat::int16, 100);
  const std::string fifo = unique("fifo");
  const std::string directory = unique("directory");
  const std::string link = unique("link");
  const std::string sock = unique("socket");
  CHECK(mkfifo(file_path(fifo).c_str(), 0600) == 0);
  CHECK(mkdir(file_path(directory).c_str(), 0700) == 0);
  CHECK(symlink("/dev/null", file_path(link).c_str()) == 0);
  const int server = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(server >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  CHECK(file_path(sock).size() < sizeof address.sun_path);
  std::strcpy(address.sun_path, file_path(sock).c_str());
  CHECK(bind(server, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);

  const std::pair<std::string, const char*> planted[] = {
      {fifo, "is a FIFO"}, {directory, "is a directory"}, {link, "is a symbolic link"}, {sock, "is a socket"}};
  for (const auto& entry : planted) {
    // Named copies, not a structured binding: lambdas capture those only from C++20 (clang < 16 refuses).
    const std::string& name = entry.first;
    const char* const kind = entry.second;
    check_error([&] { SharedRing::attach(name); }, Reason::invalid, file_path(name), kind, "attach");
    check_error([&] { SharedRing::create(name, s); }, Reason::in_use, file_path(name), kind, "create");
  }
  std::vector<std::string> skipped;
  for (const auto& entry : audioring::list_shared(&skipped)) {
    for (const auto& [name, kind] : planted) CHECK(entry.name != name);
  }
  for (const auto& [name, kind] : planted) {
    CHECK_MSG(std::any_of(skipped.begin(), skipped.end(),
                          [&, k = kind, n = name](const std::string& why) {
                            return why.find(file_path(n)) != std::string::npos && why.find(k) != std::string::npos;
                          }),
              "list_shared() did not report %s", name.c_str());
    struct stat st {};
    CHECK(lstat(file_path(name).c_str(), &st) == 0);  // left in place
  }
  close(server);
  CHECK(unlink(file_path(fifo).c_str()) == 0 && rmdir(file_path(directory).c_str()) == 0);
  CHECK(unlink(file_path(link).c_str()) == 0 && unlink(file_path(sock).c_str()) == 0);
}

void test_permissions() {
  const std::string name = unique("perm");
  const SharedRingSpec s = spec(1, SampleFormat::float32, 10);
  const auto producer = produce(name, s);
  const int fd = shm_open(object_path(name).c_str(), O_RDWR, 0);
  CHECK(fd >= 0);
  // Open to the group: refused, by attach and by list_shared (with a reason).
  CHECK(fchmod(fd, 0640) == 0);
  check_error([&] { SharedRing::attach(name); }, Reason::permission, name, "0640", "group-readable");
  std::vector<std::string> skipped;
  for (const auto& entry : audioring::list_shared(&skipped)) CHECK(entry.name != name);
  CHECK(std::any_of(skipped.begin(), skipped.end(),
                    [&](const std::string& why) { return why.find(name) != std::string::npos; }));
  CHECK(fchmod(fd, 0604) == 0);
  check_error([&] { SharedRing::attach(name); }, Reason::permission, name, "0604", "other-readable");
  CHECK(fchmod(fd, 0600) == 0);
  CHECK(attach(name)->read_only());
  // Another user's file at our name (only root can make one).
  if (geteuid() == 0) {
    CHECK(fchown(fd, 12345, static_cast<gid_t>(-1)) == 0);
    check_error([&] { SharedRing::attach(name); }, Reason::permission, name, "user 12345", "another owner");
    check_error([&] { SharedRing::create(name, s); }, Reason::permission, name, "user 12345",
                "create over another owner's file");
    CHECK(fchown(fd, geteuid(), static_cast<gid_t>(-1)) == 0);
    CHECK(attach(name)->read_only());
  } else {
    std::printf("  (not root: the test of another owner's file is skipped)\n");
  }
  close(fd);
}

// A reader in another process, asleep in wait_for_frame(), wakes when the
// producer writes: most wake-ups come within 2.5 ms, where a reader that
// only looked every Doorbell::kReadOnlySlice (10 ms) would take 5 ms on
// average. A state change interrupts its wait.
void test_doorbell_across_processes() {
  const std::string name = unique("doorbell");
  const auto producer = produce(name, spec(1, SampleFormat::float32, 1000));
  constexpr int kRounds = 60;
  Pipe ack;
  const pid_t child = spawn([&] {
    const auto reader = attach(name);
    const std::uint64_t seen = reader->interrupts();
    for (Frame f = 1; f <= kRounds; ++f) {
      CHECK(reader->wait_for_frame(f, Clock::now() + milliseconds(20000), seen) == WaitStatus::ready);
      ack.send();
    }
    ack.send();  // asleep again next
    CHECK(reader->wait_for_frame(kRounds + 1, Clock::now() + milliseconds(20000), seen) == WaitStatus::interrupted);
    CHECK(mapping(*reader).state() == SharedState::stopped);
    ack.send();
  });
  const float frame = 0.5f;
  int fast = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::this_thread::sleep_for(milliseconds(3));  // the reader is asleep in the futex by now
    const auto start = Clock::now();
    producer->write(&frame, 1);
    ack.receive();
    if (Clock::now() - start < std::chrono::microseconds(2500)) ++fast;
  }
  ack.receive();
  std::this_thread::sleep_for(milliseconds(20));
  mapping(*producer).set_state(SharedState::stopped);
  ack.receive();
  check_exited_ok(child, "reader in another process");
  std::printf("  doorbell: %d of %d wake-ups within 2.5 ms\n", fast, kRounds);
  CHECK_MSG(fast >= kRounds / 2, "only %d of %d wake-ups within 2.5 ms: is the reader woken at all?", fast, kRounds);
}

// A producer killed with SIGKILL: a reader's wait ends (interrupted) within
// 250 ms, and producer_alive() turns false.
void test_producer_killed() {
  const std::string name = unique("killed");
  Pipe ready;
  const pid_t child = spawn([&] {
    const auto ring = produce(name, spec(2, SampleFormat::float32, 100));
    const float frames[20] = {};
    ring->write(frames, 10);
    ready.send();
    for (;;) pause();
  });
  ready.receive();
  const auto reader = attach(name);
  CHECK(mapping(*reader).producer_alive() && reader->written() == 10);
  std::atomic<Clock::rep> killed_at{0};
  std::thread killer([&] {
    std::this_thread::sleep_for(milliseconds(150));
    killed_at.store(Clock::now().time_since_epoch().count());
    kill(child, SIGKILL);
  });
  const WaitStatus status = reader->wait_for_frame(1'000'000, Clock::now() + milliseconds(20000), reader->interrupts());
  const auto returned = Clock::now();
  killer.join();
  const auto after_kill = returned - Clock::time_point(Clock::duration(killed_at.load()));
  CHECK_MSG(status == WaitStatus::interrupted, "wait returned %d", static_cast<int>(status));
  std::printf("  producer killed: the wait returned %.1f ms after SIGKILL\n",
              std::chrono::duration<double, std::milli>(after_kill).count());
  CHECK_MSG(after_kill < milliseconds(250), "the wait returned %lld ms after SIGKILL",
            static_cast<long long>(std::chrono::duration_cast<milliseconds>(after_kill).count()));
  CHECK(!mapping(*reader).producer_alive());
  const int wstatus = wait_child(child);
  CHECK(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
  // Later waits end at once; what was written stays readable.
  CHECK(reader->wait_for_frame(11, Clock::now() + milliseconds(10000), reader->interrupts()) ==
        WaitStatus::interrupted);
  CHECK(reader->wait_for_frame(10, Clock::now(), reader->interrupts()) == WaitStatus::ready);
  CHECK(shm_unlink(object_path(name).c_str()) == 0);  // the killed producer's stale name
}

// set_state() interrupts waits that began before it, in another mapping of
// the same process too; waits that begin after it are not interrupted.
void test_state_interrupts() {
  const std::string name = unique("state");
  const auto producer = produce(name, spec(1, SampleFormat::float32, 100));
  const auto reader = attach(name);
  std::atomic<int> waiting{0};
  std::atomic<int> interrupted{0};
  std::vector<std::thread> waiters;
  for (const auto& ring : {reader, producer}) {
    waiters.emplace_back([&, ring] {
      const std::uint64_t seen = ring->interrupts();
      waiting.fetch_add(1);
      if (ring->wait_for_frame(1'000'000, Clock::now() + milliseconds(20000), seen) == WaitStatus::interrupted) {
        interrupted.fetch_add(1);
      }
    });
  }
  while (waiting.load() < 2) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(30));
  const auto start = Clock::now();
  mapping(*producer).set_state(SharedState::recording);
  for (std::thread& t : waiters) t.join();
  CHECK(interrupted.load() == 2 && Clock::now() - start < milliseconds(5000));
  CHECK(reader->wait_for_frame(1'000'000, Clock::now() + milliseconds(30), reader->interrupts()) ==
        WaitStatus::timeout);
  // A local interrupt() on the read-only side still works.
  std::thread local([&] {
    std::this_thread::sleep_for(milliseconds(30));
    reader->interrupt();
  });
  CHECK(reader->wait_for_frame(1'000'000, Clock::now() + milliseconds(20000), reader->interrupts()) ==
        WaitStatus::interrupted);
  local.join();
}

void check_same(const RecordingStats& a, const RecordingStats& b) {
  CHECK(a.callbacks == b.callbacks && a.frames == b.frames && a.input_overflows == b.input_overflows);
  CHECK(a.input_underflows == b.input_underflows && a.min_block == b.min_block && a.max_block == b.max_block);
  CHECK(a.device_frames == b.device_frames && a.device_frames_lost == b.device_frames_lost);
  CHECK(a.conversion_overruns == b.conversion_overruns);
}

void check_same(const TimeAnchor& a, const TimeAnchor& b) {
  CHECK(a.valid == b.valid && a.adc_time == b.adc_time && a.frame == b.frame);
}

// Counters in the header: a reader computes what the producer computes.
void test_published_counters() {
  // A recording without conversion: the Capture counts in its ring's header.
  const std::string name = unique("counters");
  const auto ring = produce(name, spec(1, SampleFormat::float32, 1000, 48000));
  const auto reader = attach(name);
  const audioring::RecordingCounters& header = mapping(*reader).header().recording;
  CHECK(!audioring::published(header));
  Capture capture(ring);
  CHECK(capture.shared_counters() != nullptr && audioring::published(header) && audioring::conversion(header) == nullptr);
  std::vector<float> block(512, 0.25f);
  const unsigned long sizes[] = {256, 512, 128, 300};
  double adc = 12.5;
  for (int i = 0; i < 4; ++i) {
    const PaTimeInfo time{adc, adc + 0.01, 0.0};
    capture.on_block(block.data(), sizes[i], &time, i == 2 ? audioring::kInputOverflow : 0);
    adc += 0.01;
  }
  check_same(audioring::recording_stats(header), audioring::recording_stats(capture.counters(), nullptr));
  CHECK(audioring::recording_stats(header).frames == 1196 && audioring::recording_stats(header).input_overflows == 1);
  check_same(audioring::recording_anchor(header), capture.anchor());
  CHECK(capture.anchor().valid && capture.anchor().adc_time == 12.5);

  // Read-only rings neither take a Capture nor its counters.
  CHECK_THROWS(Capture(reader), std::invalid_argument);
  CHECK_THROWS(Capture(std::make_shared<FrameRing>(4, 100), reader), std::invalid_argument);

  // A converting recording: the device's ring is private, the Capture and
  // the Converter count in the recording's header.
  const std::string converted = unique("converted");
  const auto user = produce(converted, spec(1, SampleFormat::int16, 16000, 16000));
  const auto device_ring = std::make_shared<FrameRing>(2 * sizeof(float), 48000);
  ConverterConfig config;
  config.input_rate = 48000;
  config.output_rate = 16000;
  config.input_channels = 2;
  config.mapping = {1};
  config.output_format = SampleFormat::int16;
  // Its Capture must count there too.
  CHECK_THROWS(Converter(std::make_shared<Capture>(device_ring), user, config), std::invalid_argument);
  CHECK_THROWS(Converter(std::make_shared<Capture>(device_ring), attach(converted), config), std::invalid_argument);
  const auto device = std::make_shared<Capture>(device_ring, user);
  Converter converter(device, user, config);
  const auto user_reader = attach(converted);
  const audioring::RecordingCounters& h = mapping(*user_reader).header().recording;
  CHECK(audioring::published(h) && audioring::conversion(h) != nullptr);
  converter.start();
  std::vector<float> stereo(2 * 480);
  for (std::size_t i = 0; i < stereo.size(); ++i) stereo[i] = static_cast<float>(std::sin(0.01 * static_cast<double>(i)));
  adc = 100.0;
  for (int i = 0; i < 100; ++i) {
    const PaTimeInfo time{adc, adc, 0.0};
    device->on_block(stereo.data(), 480, &time, 0);
    adc += 0.01;
  }
  converter.stop();
  const RecordingStats theirs = audioring::recording_stats(h);
  check_same(theirs, audioring::recording_stats(device->counters(), &converter.counters()));
  CHECK(theirs.device_frames == 48000 && theirs.frames == converter.stats().frames_out && theirs.frames > 15000);
  check_same(audioring::recording_anchor(h), converter.anchor());
  CHECK(converter.anchor().valid && converter.anchor().adc_time == 100.0);
  CHECK(audioring::conversion(h)->delay.load() == converter.delay());
  CHECK(h.input_rate.load() == 48000.0);
}

#if !defined(AUDIORING_LINUX)
// Without Linux: every way in is refused with Reason::unsupported (Python's NotImplementedError).
void test_unsupported() {
  const std::string name = unique("unsupported");
  const SharedRingSpec s = spec(2, SampleFormat::float32, 1000);
  check_error([&] { SharedRing::create(name, s); }, Reason::unsupported, name, "needs Linux", "create");
  check_error([&] { SharedRing::attach(name); }, Reason::unsupported, name, "needs Linux", "attach");
  check_error([&] { audioring::list_shared(); }, Reason::unsupported, "", "needs Linux", "list_shared");
  CHECK(!exists(name));
  // A bad name is still the caller's error first.
  CHECK_THROWS(SharedRing::create("", s), std::invalid_argument);
  CHECK_THROWS(SharedRing::attach("a/b"), std::invalid_argument);
}
#endif

}  // namespace

int main() {
#if !defined(AUDIORING_LINUX)
  test_unsupported();
  std::printf("shared_ring: sharing refused without Linux, as it must be\n");
  return 0;
#endif
  auto start = Clock::now();
  const auto lap = [&](const char* what) {
    const auto now = Clock::now();
    std::printf("  %-28s %.2f s\n", what, std::chrono::duration<double>(now - start).count());
    std::fflush(stdout);
    start = now;
  };
  test_names();
  lap("names");
  test_producer_and_reader();
  lap("producer and reader");
  test_unshare();
  lap("unshare");
  test_in_use();
  lap("in use");
  test_stale_reclaim();
  lap("stale names");
  test_permissions();
  lap("permissions");
  test_planted_files();
  lap("planted files");
  test_doorbell_across_processes();
  lap("doorbell across processes");
  test_producer_killed();
  lap("producer killed");
  test_state_interrupts();
  lap("state interrupts");
  test_published_counters();
  lap("published counters");
  std::printf("shared_ring: all tests passed\n");
  return 0;
}
