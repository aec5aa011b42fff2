// The two-process fuzz test of FrameRing's load-only reader protocol: a
// forked child produces into a shared ring while this process reads it
// through a read-only mapping, as another program would.
//
// The child writes random blocks (some larger than the ring) in calm and
// burst phases; byte j of frame f is a hash of f * frame_bytes + j, so every
// byte tells which frame it belongs to, and frames < 0 are zeros. The
// parent's main thread takes random windows (the latest n frames, anywhere in
// the readable range, already overwritten), in place and through copy(); a
// follower thread reads every frame in order with wait_for_frame(), woken
// across processes by the shared doorbell. For a window [s, s + n) read after
// loading W = written():
//  - intact() true   => every byte is as expected, and s >= W - capacity;
//  - s < W - capacity (overwritten before the read began) => intact() false;
//  - intact() false although s >= W - capacity => the window really was
//    (being) overwritten: s < W3 - capacity, where W3 is written() once the
//    producer has published past the value seen right after the check.
// Each configuration must see intact windows and windows overwritten before
// the read on both paths, windows overwritten during the read, and followed
// frames, so that it cannot pass vacuously. The parent then tells the child
// to stop; the child sets the state to stopped, which ends the follower's
// wait (interrupted), and exits.
//
// Usage: test_shared_ring_fuzz (env AUDIORING_SEED, AUDIORING_FUZZ_SECONDS =
// seconds per configuration, default 0.6).
#include "check.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audioring/frame_ring.hpp"
#include "audioring/shared_ring.hpp"

namespace {

using audioring::FrameRing;
using audioring::SampleFormat;
using audioring::SharedRing;
using audioring::SharedRingSpec;
using audioring::SharedState;
using audioring::SpeculativeReads;
using audioring::WaitStatus;
using Frame = FrameRing::Frame;
using Clock = FrameRing::Clock;
using std::chrono::milliseconds;

struct Config {
  const char* label;
  std::size_t channels;
  SampleFormat format;
  Frame min_capacity;
  bool follower;
};

const Config kConfigs[] = {
    {"2 x float32", 2, SampleFormat::float32, 3000, true},
    {"3 x int16", 3, SampleFormat::int16, 700, true},
    {"1 x uint8", 1, SampleFormat::uint8, 5000, false},
    {"8 x int32", 8, SampleFormat::int32, 500, true},
};

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void fill(Frame f, std::size_t frame_bytes, std::byte* out) {
  for (std::size_t j = 0; j < frame_bytes; ++j) {
    out[j] = static_cast<std::byte>(mix(static_cast<std::uint64_t>(f) * frame_bytes + j) & 0xFF);
  }
}

// Index of the first frame of [first, first + count) not as expected in `data`, or -1.
Frame first_wrong(Frame first, Frame count, std::size_t frame_bytes, const std::byte* data) {
  std::byte expected[64];
  for (Frame i = 0; i < count; ++i) {
    const Frame f = first + i;
    const std::byte* got = data + static_cast<std::size_t>(i) * frame_bytes;
    if (f < 0) {
      std::memset(expected, 0, frame_bytes);
    } else {
      fill(f, frame_bytes, expected);
    }
    if (std::memcmp(got, expected, frame_bytes) != 0) return i;
  }
  return -1;
}

// Data or a hang-up (POLLHUP is reported whatever was asked).
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

// ---- the child: the producer ----------------------------------------------------

void produce(FrameRing& ring, std::uint64_t seed, int stop_fd) {
  std::mt19937_64 rng(seed);
  const Frame capacity = ring.capacity();
  const std::size_t frame_bytes = ring.frame_bytes();
  std::vector<std::byte> block(static_cast<std::size_t>(2 * capacity) * frame_bytes);
  Frame w = 0;
  bool calm = false;
  std::uint64_t phase_left = 0;
  for (std::uint64_t blocks = 0;; ++blocks) {
    if (blocks % 16 == 0 && readable(stop_fd)) break;
    if (phase_left == 0) {  // alternate bursts (overwrites) with calm stretches (intact reads)
      calm = !calm;
      phase_left = calm ? 2 + rng() % 10 : 100 + rng() % 2000;
    }
    --phase_left;
    const std::uint64_t dice = rng() % 100;
    Frame count;
    if (dice < 3) {
      count = capacity + 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity));
    } else if (dice < 8) {
      count = capacity / 2 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity / 2 + 1));
    } else {
      const Frame most = rng() % 4 == 0 ? std::max<Frame>(1, capacity / 4) : 32;
      count = 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(most));
    }
    const Frame kept = std::min(count, capacity);
    std::memset(block.data(), 0xEE, static_cast<std::size_t>(count - kept) * frame_bytes);  // must be skipped
    for (Frame i = count - kept; i < count; ++i) fill(w + i, frame_bytes, block.data() + static_cast<std::size_t>(i) * frame_bytes);
    ring.write(block.data(), count);
    w += count;
    if (calm) {  // pause by spinning: a sleep's wake-up would depend on the scheduler's load
      const auto until = Clock::now() + std::chrono::microseconds(10 + rng() % 200);
      while (Clock::now() < until) {
      }
    } else {
      for (volatile std::uint64_t spin = rng() % 64; spin > 0; spin = spin - 1) {
      }
    }
  }
  SharedRing::of(ring.storage())->set_state(SharedState::stopped);
}

// ---- the parent: readers ------------------------------------------------------------

struct Reader {
  explicit Reader(const std::string& name)
      : ring(SharedRing::attach(name)), frame_bytes(ring.frame_bytes()), capacity(ring.capacity()) {}

  FrameRing ring;
  const std::size_t frame_bytes;
  const Frame capacity;
  std::uint64_t intact[2] = {}, raced[2] = {}, stale[2] = {}, unjudged = 0;  // [0] in place, [1] copy()
  std::atomic<std::uint64_t> followed{0}, follower_laps{0}, follower_interrupted{0};

  bool enough(bool follower) const {
    for (int path = 0; path < 2; ++path) {
      if (intact[path] == 0 || stale[path] == 0) return false;
    }
    return raced[0] + raced[1] > 0 && (!follower || followed.load() > 0);
  }

  // One random window, checked as the top comment says.
  void read_window(std::mt19937_64& rng, std::vector<std::byte>& out, std::uint64_t interrupts_seen) {
    const Frame w = ring.written();
    const auto limit = static_cast<std::uint64_t>(rng() % 2 ? capacity : std::min<Frame>(capacity, 64));
    const Frame n = 1 + static_cast<Frame>(rng() % limit);
    const std::uint64_t where = rng() % 100;
    Frame s;
    if (where < 45) {
      s = w - n;
    } else if (where < 85) {
      s = rng() % 4 == 0 ? w - capacity
                         : w - capacity + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity - n + 1));
    } else {
      s = w - capacity - 1 - static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity));
    }
    const int path = static_cast<int>(rng() % 2);
    if (rng() % 4 == 0) {  // a reader delayed between written() and its read: more overwrites
      for (volatile std::uint64_t spin = rng() % 4096; spin > 0; spin = spin - 1) {
      }
    }
    Frame bad;
    bool ok;
    if (path == 0) {
      {
        [[maybe_unused]] SpeculativeReads speculative;
        bad = first_wrong(s, n, frame_bytes, ring.frame_address(s));
      }
      ok = ring.intact(s);
    } else {
      out.back() = std::byte{0x5A};
      ok = ring.copy(s, n, out.data());
      CHECK(out.back() == std::byte{0x5A});
      bad = first_wrong(s, n, frame_bytes, out.data());
    }
    const Frame w2 = ring.written();
    if (ok) {
      CHECK_MSG(bad < 0, "%s: window [%lld, +%lld) judged intact but frame %lld is wrong (written %lld -> %lld)",
                path == 0 ? "in place" : "copy()", static_cast<long long>(s), static_cast<long long>(n),
                static_cast<long long>(s + bad), static_cast<long long>(w), static_cast<long long>(w2));
      CHECK(s >= w - capacity);
      ++intact[path];
      return;
    }
    if (s < w - capacity) {
      ++stale[path];
      return;
    }
    if (ring.wait_for_frame(w2 + 1, Clock::now() + milliseconds(200), interrupts_seen) != WaitStatus::ready) {
      ++unjudged;  // the producer stopped
      return;
    }
    const Frame w3 = ring.written();
    CHECK_MSG(s < w3 - capacity,
              "%s: window [%lld, +%lld) judged overwritten spuriously: written %lld before the read, %lld after, "
              "%lld after the next write; capacity %lld",
              path == 0 ? "in place" : "copy()", static_cast<long long>(s), static_cast<long long>(n),
              static_cast<long long>(w), static_cast<long long>(w2), static_cast<long long>(w3),
              static_cast<long long>(capacity));
    ++raced[path];
  }

  // Every frame in order, as a lossless stream reads them, until the state
  // change to stopped interrupts its wait (once it has caught up: ready
  // wins over interrupted).
  void follow() {
    const std::uint64_t interrupts_seen = ring.interrupts();
    std::vector<std::byte> out(static_cast<std::size_t>(capacity) * frame_bytes);
    Frame p = 0;
    for (;;) {
      const WaitStatus status = ring.wait_for_frame(p + 1, Clock::now() + milliseconds(200), interrupts_seen);
      if (status == WaitStatus::interrupted) {  // the state changed to stopped
        CHECK(SharedRing::of(ring.storage())->state() == SharedState::stopped);
        follower_interrupted.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (status == WaitStatus::timeout) continue;
      const Frame w = ring.written();
      if (w - p > capacity) {
        follower_laps.fetch_add(1, std::memory_order_relaxed);
        p = w - capacity / 2;
        continue;
      }
      const Frame n = w - p;
      Frame bad;
      {
        [[maybe_unused]] SpeculativeReads speculative;
        bad = first_wrong(p, n, frame_bytes, ring.frame_address(p));
      }
      if (!ring.intact(p)) {
        follower_laps.fetch_add(1, std::memory_order_relaxed);
        p = ring.written() - capacity / 2;
        continue;
      }
      CHECK_MSG(bad < 0, "follower: block [%lld, +%lld) judged intact but frame %lld is wrong",
                static_cast<long long>(p), static_cast<long long>(n), static_cast<long long>(p + bad));
      followed.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      p = w;
    }
  }
};

void run(const Config& config, std::size_t index, std::uint64_t seed, double seconds) {
  const std::string name = "fuzz-" + std::to_string(getpid()) + "-" + std::to_string(index);
  SharedRingSpec spec;
  spec.channels = config.channels;
  spec.format = config.format;
  spec.capacity = FrameRing::rounded_capacity(config.channels * audioring::format_info(config.format).bytes,
                                              config.min_capacity);
  int ready[2];
  int stop[2];
  CHECK(pipe(ready) == 0 && pipe(stop) == 0);
  std::fflush(stdout);
  const pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    // Only the ends it uses: if the parent dies, the stop pipe hangs up and
    // counts as a stop.
    close(ready[0]);
    close(stop[1]);
    {
      FrameRing ring(SharedRing::create(name, spec));
      SharedRing::of(ring.storage())->set_state(SharedState::recording);
      CHECK(write(ready[1], "r", 1) == 1);
      produce(ring, seed, stop[0]);
    }  // unshares the name
    _exit(0);
  }
  close(ready[1]);
  close(stop[0]);
  char byte = 0;
  CHECK(read(ready[0], &byte, 1) == 1);
  Reader reader(name);
  std::printf("  %-11s frame %2zu bytes, capacity %5lld%s ...", config.label, reader.frame_bytes,
              static_cast<long long>(reader.capacity), config.follower ? ", follower" : "");
  std::fflush(stdout);
  CHECK(reader.ring.read_only() && SharedRing::of(reader.ring.storage())->producer_pid() == child);

  const auto start = Clock::now();
  std::thread follower;
  if (config.follower) follower = std::thread([&] { reader.follow(); });
  std::mt19937_64 rng(mix(seed + 1));
  std::vector<std::byte> out(static_cast<std::size_t>(reader.capacity) * reader.frame_bytes + 1);
  const std::uint64_t interrupts_seen = reader.ring.interrupts();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  while (elapsed() < seconds || (!reader.enough(config.follower) && elapsed() < 5 * seconds)) {
    reader.read_window(rng, out, interrupts_seen);
  }
  CHECK(write(stop[1], "s", 1) == 1);
  // The child sets the state to stopped: the follower's wait ends, and so does ours.
  CHECK(reader.ring.wait_for_frame(FrameRing::Frame{1} << 62, Clock::now() + milliseconds(20000), interrupts_seen) ==
        WaitStatus::interrupted);
  CHECK(SharedRing::of(reader.ring.storage())->state() == SharedState::stopped);
  if (follower.joinable()) follower.join();
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer child status %d", status);
  close(ready[0]);
  close(stop[1]);

  const auto count = [](std::uint64_t c) { return static_cast<unsigned long long>(c); };
  std::printf(" %.2f s, %llu frames\n", elapsed(), count(static_cast<std::uint64_t>(reader.ring.written())));
  std::printf("    windows in place: %llu intact, %llu overwritten while read, %llu stale; copy(): %llu / %llu / %llu;"
              " %llu unjudged\n",
              count(reader.intact[0]), count(reader.raced[0]), count(reader.stale[0]), count(reader.intact[1]),
              count(reader.raced[1]), count(reader.stale[1]), count(reader.unjudged));
  if (config.follower) {
    std::printf("    follower: %llu frames checked, %llu laps, interrupted %llu\n", count(reader.followed.load()),
                count(reader.follower_laps.load()), count(reader.follower_interrupted.load()));
  }
  std::fflush(stdout);
  for (int path = 0; path < 2; ++path) {
    CHECK_MSG(reader.intact[path] > 0, "no intact window on path %d: the test checked nothing", path);
    CHECK_MSG(reader.stale[path] > 0, "no stale window on path %d", path);
  }
  CHECK_MSG(reader.raced[0] + reader.raced[1] > 0, "no window was overwritten while read");
  if (config.follower) CHECK(reader.followed.load() > 0 && reader.follower_interrupted.load() == 1);
}

}  // namespace

int main() {
  double seconds = 0.6;
  if (const char* env = std::getenv("AUDIORING_FUZZ_SECONDS"); env != nullptr && *env != '\0') {
    seconds = std::atof(env);
  }
  const std::uint64_t seed = audioring_test::seed("shared_ring_fuzz", 5);
  std::printf("shared_ring_fuzz: a producer process and a reader process, %.2f s per configuration\n", seconds);
  for (std::size_t i = 0; i < sizeof kConfigs / sizeof kConfigs[0]; ++i) {
    run(kConfigs[i], i, mix(seed + 1000 * i), seconds);
  }
  std::printf("shared_ring_fuzz: all tests passed\n");
  return 0;
}
