// wake_floor: how fast one process can wake another on this machine, with no
// Python in the way: the floor under benchmarks/cases/share.py's wake-up
// latencies (Linux only).
//
// Two processes share an anonymous MAP_SHARED page: a futex word and a
// stamp. The parent (the producer) publishes every --period-us, paced by
// clock_nanosleep to each due time: it writes CLOCK_MONOTONIC into the stamp,
// bumps the word and calls FUTEX_WAKE (shared: no FUTEX_PRIVATE_FLAG, as
// audioring's shared rings), then notes when that call returned. The child
// (the reader) sleeps in FUTEX_WAIT on the word and, on waking, notes
// CLOCK_MONOTONIC minus the stamp. This is what audioring's shared stream does
// per block, without the ring, the frames and the interpreter.
//
// Usage: wake_floor --blocks N [--period-us 10000]
// Prints one JSON object: {"wake_ns": [...], "publish_ns": [...]}, one entry per
// block, in order (the caller drops the first ones, as it does for Python); a
// wake_ns of 0 is a block the reader missed (woken once for two bumps).
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <vector>

namespace {

// The shared page's head; the reader's latencies, one atomic per block,
// follow it (0: the block was missed, its bump came with the next one's).
struct Shared {
  std::atomic<std::uint32_t> word{0};  // the futex word: the number of blocks published
  std::atomic<std::int64_t> stamp{0};  // CLOCK_MONOTONIC ns just before the newest block's bump
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free,
              "the shared page holds lock-free atomics only");

std::int64_t now_ns() noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value) noexcept {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "wake_floor: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

// The child: wake for each block, note its latency, exit after the last.
[[noreturn]] void read_blocks(Shared* shared, std::atomic<std::int64_t>* wake_ns, std::uint32_t blocks) {
  std::uint32_t seen = 0;
  while (seen < blocks) {
    std::uint32_t word = shared->word.load(std::memory_order_acquire);
    while (word == seen) {
      futex(&shared->word, FUTEX_WAIT, seen);  // EAGAIN/EINTR: look again
      word = shared->word.load(std::memory_order_acquire);
    }
    // The stamp was stored before the bump this acquire load saw.
    const std::int64_t latency = now_ns() - shared->stamp.load(std::memory_order_relaxed);
    wake_ns[word - 1].store(latency, std::memory_order_relaxed);
    seen = word;
  }
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  long blocks = 0;
  long period_us = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--blocks") {
      blocks = std::strtol(argv[i + 1], nullptr, 10);
    } else if (option == "--period-us") {
      period_us = std::strtol(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr, "wake_floor: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (blocks <= 0 || blocks > 10'000'000 || period_us <= 0) {
    std::fprintf(stderr, "usage: wake_floor --blocks 1..10000000 [--period-us N > 0]\n");
    return 2;
  }
  const std::size_t bytes = sizeof(Shared) + static_cast<std::size_t>(blocks) * sizeof(std::atomic<std::int64_t>);
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) fail("mmap");
  auto* shared = new (memory) Shared{};
  auto* wake_ns = reinterpret_cast<std::atomic<std::int64_t>*>(static_cast<char*>(memory) + sizeof(Shared));
  for (long block = 0; block < blocks; ++block) new (&wake_ns[block]) std::atomic<std::int64_t>(0);

  const pid_t child = fork();
  if (child < 0) fail("fork");
  if (child == 0) read_blocks(shared, wake_ns, static_cast<std::uint32_t>(blocks));

  std::vector<std::int64_t> publish_ns(static_cast<std::size_t>(blocks));
  timespec due{};
  clock_gettime(CLOCK_MONOTONIC, &due);
  for (long block = 0; block < blocks; ++block) {
    due.tv_nsec += period_us * 1000;
    while (due.tv_nsec >= 1000000000) {
      due.tv_nsec -= 1000000000;
      ++due.tv_sec;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr) == EINTR) {
    }
    const std::int64_t stamp = now_ns();
    shared->stamp.store(stamp, std::memory_order_relaxed);
    shared->word.fetch_add(1, std::memory_order_release);
    futex(&shared->word, FUTEX_WAKE, 1);
    publish_ns[static_cast<std::size_t>(block)] = now_ns() - stamp;
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "wake_floor: the reader process failed\n");
    return 2;
  }
  std::printf("{\"wake_ns\": [");
  for (long block = 0; block < blocks; ++block) {
    std::printf("%s%lld", block ? ", " : "", static_cast<long long>(wake_ns[block].load()));
  }
  std::printf("], \"publish_ns\": [");
  for (long block = 0; block < blocks; ++block) {
    std::printf("%s%lld", block ? ", " : "", static_cast<long long>(publish_ns[static_cast<std::size_t>(block)]));
  }
  std::printf("]}\n");
  return 0;
}
