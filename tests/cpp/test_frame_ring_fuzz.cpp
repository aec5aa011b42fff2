// The two-thread fuzz test of FrameRing, the heart of the ring's tests.
//
// A producer writes a frame-counter ramp in random block sizes (some larger
// than the ring, some clear()s) while readers take random windows at the same
// time: the latest n frames, arbitrary older windows inside the readable
// range, and windows already overwritten; in place (zero-copy, read under
// SpeculativeReads and then judged with intact()) and through copy(). A
// follower reads every frame in order with wait_for_frame(), as a lossless
// stream does.
//
// Frame f's content is a pure function of f, so every byte is checkable: with
// 4-byte samples, channel c holds the uint32 f * channels + c; otherwise byte
// j holds a hash of f * frame_bytes + j. Frames < 0 and frames inside a
// clear() are zeros. A misplaced, stale or torn byte shows.
//
// The invariants, for a window [s, s + n) read after loading W = written():
//  - intact() true   => every byte is as expected, and s >= W - capacity;
//  - intact() false  => the window really was (being) overwritten: s < I -
//    capacity for the producer's intent I, and I <= the first written() value
//    published after the check, so s < W3 - capacity where W3 is read once
//    written() has moved past the value seen right after the check;
//  - s < W - capacity (overwritten before the read began) => intact() false.
// Each run must see intact windows and windows overwritten before the read
// on both paths, and windows overwritten during the read, so it cannot pass
// vacuously. A lockstep run first checks the publish order itself under
// ThreadSanitizer (see lockstep_produce).
//
// "shared" runs it all on a ring shared by name (shared_ring.hpp), whose
// doorbell wakes with shared futex operations; the producer's process reads
// it through the producer's own mapping (test_shared_ring_fuzz reads one
// from another process).
//
// Usage: test_frame_ring_fuzz memfd|shm|plain|best|shared  (env AUDIORING_SEED,
// AUDIORING_FUZZ_SECONDS = seconds per configuration, default 0.6).
#include "check.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "audioring/frame_ring.hpp"
#include "audioring/shared_ring.hpp"

#include <unistd.h>

namespace {

using audioring::FrameRing;
using audioring::MemoryRequest;
using audioring::SpeculativeReads;
using audioring::WaitStatus;
using Frame = FrameRing::Frame;
using Clock = FrameRing::Clock;

// Where a run's ring lives: private memory of `request`, or a shared ring.
struct Memory {
  MemoryRequest request;
  bool shared;
};

// A ring of `frame_bytes` frames (returned as a prvalue: FrameRing does not move).
FrameRing make_ring(std::size_t frame_bytes, Frame min_capacity, const Memory& memory) {
  if (!memory.shared) return FrameRing(frame_bytes, min_capacity, memory.request);
  static int rings = 0;  // a name per ring: each is unshared when its run ends
  audioring::SharedRingSpec spec;
  spec.channels = frame_bytes;  // bytes as uint8 samples: the 24-bit configuration has no sample format
  spec.format = audioring::SampleFormat::uint8;
  spec.capacity = FrameRing::rounded_capacity(frame_bytes, min_capacity);
  return FrameRing(audioring::SharedRing::create(
      "ring-fuzz-" + std::to_string(getpid()) + "-" + std::to_string(rings++), spec));
}

struct Config {
  const char* label;
  std::size_t channels;
  std::size_t sample_bytes;
  Frame min_capacity;
  bool big_blocks;  // also blocks of capacity/2 .. 2 x capacity frames, and clear()
  bool follower;    // a third thread that follows every frame with wait_for_frame()
};

const Config kConfigs[] = {
    {"1 x int32", 1, 4, 1000, false, false},   {"2 x float32", 2, 4, 3000, true, true},
    {"8 x int32", 8, 4, 500, false, true},     {"3 x int16", 3, 2, 700, true, false},
    {"3 x 24-bit", 3, 3, 100, false, false},
};

constexpr int kMaxClears = 4096;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// State shared by the threads of one run.
struct Shared {
  Shared(const Config& run_config, const Memory& memory)
      : config(run_config),
        ring(make_ring(run_config.channels * run_config.sample_bytes, run_config.min_capacity, memory)),
        frame_bytes(ring.frame_bytes()),
        capacity(ring.capacity()) {}

  const Config& config;
  FrameRing ring;
  const std::size_t frame_bytes;
  const Frame capacity;
  std::atomic<bool> stop{false};

  // Where each clear() began; entries [0, clears) are final. The producer
  // stores the entry, then clears (release), before the clear's zeros are
  // published, so a reader that loads clears after written() (acquire)
  // knows every clear inside the frames it may read.
  Frame clear_start[kMaxClears] = {};
  std::atomic<int> clears{0};

  // Counters (relaxed: read by main after join()).
  std::atomic<std::uint64_t> blocks{0}, big_blocks{0};
  std::atomic<std::uint64_t> intact[2]{}, raced[2]{}, stale[2]{};  // [0] in place, [1] copy()
  std::atomic<std::uint64_t> unjudged{0};                          // producer stopped before W3
  std::atomic<std::uint64_t> followed{0}, follower_laps{0}, follower_interrupted{0};
  std::atomic<Frame> acked{0};  // lockstep only: the written() value the reader has checked

  // ---- the pattern -----------------------------------------------------------

  void fill(Frame f, std::byte* out) const {
    if (config.sample_bytes == 4) {
      for (std::size_t c = 0; c < config.channels; ++c) {
        const auto value = static_cast<std::uint32_t>(static_cast<std::uint64_t>(f) * config.channels + c);
        std::memcpy(out + 4 * c, &value, 4);
      }
    } else {
      for (std::size_t j = 0; j < frame_bytes; ++j) {
        out[j] = static_cast<std::byte>(mix(static_cast<std::uint64_t>(f) * frame_bytes + j) & 0xFF);
      }
    }
  }

  // Index of the first frame of [first, first + count) that is not as
  // expected in `data`, or -1. `known_clears` = clears loaded after written().
  Frame mismatch(Frame first, Frame count, const std::byte* data, int known_clears) const {
    // Zero runs that meet the window: before frame 0, and clear()s.
    Frame zero_begin[4];
    Frame zero_end[4];
    int zeros = 0;
    zero_begin[zeros] = first;
    zero_end[zeros++] = 0;
    for (int i = known_clears - 1; i >= 0 && zeros < 4; --i) {
      const Frame begin = clear_start[i];
      if (begin + capacity <= first) break;  // this and all earlier clears end before the window
      if (begin < first + count) {
        zero_begin[zeros] = begin;
        zero_end[zeros++] = begin + capacity;
      }
    }
    std::byte expected[64];
    for (Frame i = 0; i < count; ++i) {
      const Frame f = first + i;
      const std::byte* got = data + static_cast<std::size_t>(i) * frame_bytes;
      bool zero = false;
      for (int z = 0; z < zeros; ++z) zero = zero || (f >= zero_begin[z] && f < zero_end[z]);
      if (zero) {
        for (std::size_t j = 0; j < frame_bytes; ++j) {
          if (got[j] != std::byte{0}) return i;
        }
      } else {
        fill(f, expected);
        if (std::memcmp(got, expected, frame_bytes) != 0) return i;
      }
    }
    return -1;
  }

  // ---- producer ----------------------------------------------------------------

  // Writes one random block (or clear()s) after frame w; returns the new written().
  Frame produce_one(std::mt19937_64& rng, std::vector<std::byte>& block, Frame w) {
    const std::uint64_t dice = rng() % 100;
    if (config.big_blocks && dice < 2 && clears.load(std::memory_order_relaxed) < kMaxClears) {
      const int n = clears.load(std::memory_order_relaxed);
      clear_start[n] = w;
      clears.store(n + 1, std::memory_order_release);
      ring.clear();
      CHECK(ring.written() == w + capacity);
      return w + capacity;
    }
    Frame count;
    if (config.big_blocks && dice < 5) {
      count = capacity + 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity));
    } else if (config.big_blocks && dice < 10) {
      count = capacity / 2 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity / 2 + 1));
    } else {
      const Frame most = rng() % 4 == 0 ? std::max<Frame>(1, capacity / 4) : 32;
      count = 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(most));
    }
    // Frames that cannot fit are garbage the ring must skip.
    const Frame kept = std::min(count, capacity);
    std::memset(block.data(), 0xEE, static_cast<std::size_t>(count - kept) * frame_bytes);
    for (Frame i = count - kept; i < count; ++i) fill(w + i, block.data() + static_cast<std::size_t>(i) * frame_bytes);
    ring.write(block.data(), count);
    CHECK(ring.written() == w + count);
    blocks.fetch_add(1, std::memory_order_relaxed);
    if (count > capacity) big_blocks.fetch_add(1, std::memory_order_relaxed);
    return w + count;
  }

  void produce(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> block(static_cast<std::size_t>(2 * capacity) * frame_bytes);
    Frame w = 0;
    bool calm = false;
    std::uint64_t phase_left = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (phase_left == 0) {  // alternate bursts (overwrites) with calm stretches (intact reads)
        calm = !calm;
        phase_left = calm ? 2 + rng() % 10 : 100 + rng() % 2000;
      }
      --phase_left;
      w = produce_one(rng, block, w);
      if (calm) {  // pause by spinning: a sleep's wake-up would depend on the scheduler's load
        const auto until = Clock::now() + std::chrono::microseconds(10 + rng() % 200);
        while (Clock::now() < until && !stop.load(std::memory_order_relaxed)) {
        }
      } else {  // vary the interleaving a little (a yield could cost a time slice on a busy machine)
        for (std::uint64_t spin = rng() % 64; spin > 0 && !stop.load(std::memory_order_relaxed); --spin) {
        }
      }
    }
  }

  // ---- lockstep: the publish order, as ThreadSanitizer sees it -------------------
  //
  // The producer waits after each write until the reader has checked it (the
  // acknowledgement orders the reader's loads before the next overwrite,
  // which the ring itself never does). The reader reads WITHOUT
  // SpeculativeReads, relying only on written()'s acquire, so under TSan a
  // publish that does not order the frame bytes is reported as a race. (TSan
  // tracks addresses, so on mirrored memory it sees only accesses through the
  // same half; plain memory is fully covered.)

  void lockstep_produce(std::uint64_t seed, int rounds) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> block(static_cast<std::size_t>(2 * capacity) * frame_bytes);
    Frame w = 0;
    for (int i = 0; i < rounds; ++i) {
      w = produce_one(rng, block, w);
      while (acked.load(std::memory_order_acquire) != w) std::this_thread::yield();
    }
    stop.store(true);
  }

  void lockstep_check(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> out(static_cast<std::size_t>(capacity) * frame_bytes);
    Frame seen = 0;
    for (;;) {
      Frame w;
      while ((w = ring.written()) == seen) {  // spin on written() alone: no other synchronization
        if (stop.load()) return;
        std::this_thread::yield();
      }
      const int known_clears = clears.load(std::memory_order_acquire);
      for (int k = 0; k < 4; ++k) {
        const Frame n = 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity));
        const Frame s = k == 0 ? w - n : w - capacity + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity - n + 1));
        const Frame bad = mismatch(s, n, ring.frame_address(s), known_clears);
        CHECK_MSG(bad < 0, "lockstep: window [%lld, +%lld) differs at frame %lld (written %lld)",
                  static_cast<long long>(s), static_cast<long long>(n), static_cast<long long>(s + bad),
                  static_cast<long long>(w));
        CHECK(ring.intact(s));
        CHECK(ring.copy(s, n, out.data()));
        CHECK(mismatch(s, n, out.data(), known_clears) < 0);
        intact[0].fetch_add(1, std::memory_order_relaxed);
      }
      CHECK(!ring.intact(w - capacity - 1));
      seen = w;
      acked.store(w, std::memory_order_release);
    }
  }

  // ---- recordings: first() after an intact window -------------------------------
  //
  // What a stream relies on: a window judged intact, and at or after the
  // first() loaded after that judgement, holds no zero of any clear(); and
  // a reader that saw a clear's zeros published (written() past them) sees
  // first() at or past that clear's end.
  void check_recording(Frame s, Frame n, Frame w, int known_clears) const {
    const Frame first = ring.first();
    for (int i = known_clears - 1; i >= 0; --i) {
      const Frame begin = clear_start[i];
      if (begin + capacity <= w) {
        CHECK_MSG(first >= begin + capacity, "first() is %lld though the clear of [%lld, +capacity) was published",
                  static_cast<long long>(first), static_cast<long long>(begin));
      }
      if (s >= first) {
        CHECK_MSG(!(begin < s + n && begin + capacity > s),
                  "window [%lld, +%lld) at or after first() %lld holds zeros of the clear at %lld",
                  static_cast<long long>(s), static_cast<long long>(n), static_cast<long long>(first),
                  static_cast<long long>(begin));
      }
    }
  }

  // ---- random windows ----------------------------------------------------------

  void read_windows(std::uint64_t seed) {
    const std::uint64_t interrupts_seen = ring.interrupts();  // before testing stop: main interrupts after setting it
    std::mt19937_64 rng(seed);
    std::vector<std::byte> out(static_cast<std::size_t>(capacity) * frame_bytes + 1);
    Frame last = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const Frame w = ring.written();
      CHECK_MSG(w >= last, "written() went back from %lld to %lld", static_cast<long long>(last),
                static_cast<long long>(w));
      last = w;
      const int known_clears = clears.load(std::memory_order_acquire);  // after written(): see Shared

      const Frame n = 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(rng() % 2 ? capacity : std::min<Frame>(capacity, 64)));
      const std::uint64_t where = rng() % 100;
      Frame s;
      if (where < 45) {  // the latest n frames (read(size) in Python)
        s = w - n;
      } else if (where < 85) {  // anywhere in the readable range, often at its old edge
        s = rng() % 4 == 0 ? w - capacity : w - capacity + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity - n + 1));
      } else {  // already overwritten
        s = w - capacity - 1 - static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity));
      }
      const int path = static_cast<int>(rng() % 2);
      if (rng() % 4 == 0) {  // a reader delayed between written() and its read: more overwrites
        for (std::uint64_t spin = rng() % 4096; spin > 0 && !stop.load(std::memory_order_relaxed); --spin) {
        }
      }
      Frame bad;
      bool ok;
      if (path == 0) {
        {
          [[maybe_unused]] SpeculativeReads speculative;
          bad = mismatch(s, n, ring.frame_address(s), known_clears);
        }
        ok = ring.intact(s);
      } else {
        out.back() = std::byte{0x5A};
        ok = ring.copy(s, n, out.data());
        CHECK(out.back() == std::byte{0x5A});
        bad = mismatch(s, n, out.data(), known_clears);
      }
      const Frame w2 = ring.written();
      if (ok) {
        check_recording(s, n, w, known_clears);
        CHECK_MSG(bad < 0,
                  "%s: window [%lld, +%lld) judged intact but frame %lld is wrong (written %lld -> %lld, capacity %lld)",
                  path == 0 ? "in place" : "copy()", static_cast<long long>(s), static_cast<long long>(n),
                  static_cast<long long>(s + bad), static_cast<long long>(w), static_cast<long long>(w2),
                  static_cast<long long>(capacity));
        CHECK_MSG(s >= w - capacity, "window [%lld, +%lld) judged intact though written was %lld already",
                  static_cast<long long>(s), static_cast<long long>(n), static_cast<long long>(w));
        intact[path].fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (s < w - capacity) {
        stale[path].fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // Rejected although readable when the read began: the producer must
      // have reached past s + capacity by the end of its next write.
      if (ring.wait_for_frame(w2 + 1, Clock::now() + std::chrono::milliseconds(200), interrupts_seen) !=
          WaitStatus::ready) {
        unjudged.fetch_add(1, std::memory_order_relaxed);  // producer stopped
        continue;
      }
      const Frame w3 = ring.written();
      CHECK_MSG(s < w3 - capacity,
                "%s: window [%lld, +%lld) judged overwritten spuriously: written %lld before the read, %lld after, "
                "%lld after the next write; capacity %lld",
                path == 0 ? "in place" : "copy()", static_cast<long long>(s), static_cast<long long>(n),
                static_cast<long long>(w), static_cast<long long>(w2), static_cast<long long>(w3),
                static_cast<long long>(capacity));
      raced[path].fetch_add(1, std::memory_order_relaxed);
    }
  }

  // ---- follower: every frame, in order -------------------------------------------

  void follow() {
    const std::uint64_t interrupts_seen = ring.interrupts();  // as in read_windows()
    Frame p = 0;
    std::vector<std::byte> out(static_cast<std::size_t>(capacity) * frame_bytes);
    for (;;) {
      const WaitStatus status =
          ring.wait_for_frame(p + 1, Clock::now() + std::chrono::milliseconds(200), interrupts_seen);
      if (status == WaitStatus::interrupted) {
        CHECK(stop.load());
        follower_interrupted.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (stop.load()) return;
      if (status == WaitStatus::timeout) continue;
      const Frame w = ring.written();
      CHECK(w >= p + 1);
      const int known_clears = clears.load(std::memory_order_acquire);
      if (w - p > capacity) {  // lapped: frames lost, as a lossless reader would report
        follower_laps.fetch_add(1, std::memory_order_relaxed);
        p = w - capacity / 2;
        continue;
      }
      const Frame n = w - p;
      Frame bad;
      {
        [[maybe_unused]] SpeculativeReads speculative;
        bad = mismatch(p, n, ring.frame_address(p), known_clears);
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

  bool enough() const {
    for (int path = 0; path < 2; ++path) {
      if (intact[path].load() == 0 || stale[path].load() == 0) return false;
    }
    return raced[0].load() + raced[1].load() > 0 && (!config.follower || followed.load() > 0);
  }
};

Memory parse(const std::string& name) {
  if (name == "memfd") return {MemoryRequest::memfd, false};
  if (name == "shm") return {MemoryRequest::shm, false};
  if (name == "plain") return {MemoryRequest::plain, false};
  if (name == "best") return {MemoryRequest::best, false};
  if (name == "shared") return {MemoryRequest::best, true};
  std::fprintf(stderr, "usage: test_frame_ring_fuzz memfd|shm|plain|best|shared\n");
  std::exit(2);
}

void run(const Config& config, const Memory& memory, std::uint64_t seed, double seconds) {
  Shared shared(config, memory);
  std::printf("  %-11s frame %2zu bytes, capacity %5lld, %s blocks%s ...", config.label, shared.frame_bytes,
              static_cast<long long>(shared.capacity), config.big_blocks ? "big" : "small",
              config.follower ? ", follower" : "");
  std::fflush(stdout);

  const auto start = Clock::now();
  std::thread producer([&] { shared.produce(seed); });
  std::thread reader([&] { shared.read_windows(mix(seed + 1)); });
  std::thread follower;
  if (config.follower) follower = std::thread([&] { shared.follow(); });

  // Run for `seconds`, longer (up to 5x) until every outcome was seen.
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  while (elapsed() < seconds || (!shared.enough() && elapsed() < 5 * seconds)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  shared.stop.store(true);
  shared.ring.interrupt();
  producer.join();
  reader.join();
  if (follower.joinable()) follower.join();

  const auto count = [](const std::atomic<std::uint64_t>& c) { return static_cast<unsigned long long>(c.load()); };
  std::printf(" %.2f s, %llu blocks (%llu > capacity), %llu frames\n", elapsed(), count(shared.blocks),
              count(shared.big_blocks), static_cast<unsigned long long>(shared.ring.written()));
  std::printf("    windows in place: %llu intact, %llu overwritten while read, %llu stale; copy(): %llu / %llu / %llu;"
              " %llu unjudged\n",
              count(shared.intact[0]), count(shared.raced[0]), count(shared.stale[0]), count(shared.intact[1]),
              count(shared.raced[1]), count(shared.stale[1]), count(shared.unjudged));
  if (config.follower) {
    std::printf("    follower: %llu frames checked, %llu laps, interrupted %llu\n", count(shared.followed),
                count(shared.follower_laps), count(shared.follower_interrupted));
  }
  std::fflush(stdout);
  // Not vacuous: intact and overwritten windows on both paths (windows
  // overwritten during a copy() are rare on a busy machine: counted together).
  for (int path = 0; path < 2; ++path) {
    CHECK_MSG(shared.intact[path].load() > 0, "no intact window on path %d: the test checked nothing", path);
    CHECK_MSG(shared.stale[path].load() > 0, "no stale window on path %d", path);
  }
  CHECK_MSG(shared.raced[0].load() + shared.raced[1].load() > 0, "no window was overwritten while read");
  if (config.follower) CHECK(shared.followed.load() > 0);
  if (config.big_blocks) CHECK(shared.big_blocks.load() > 0 && shared.clears.load() > 0);
}

void run_lockstep(const Memory& memory, std::uint64_t seed) {
  const Config config{"lockstep", 2, 4, 1000, true, false};
  Shared shared(config, memory);
  const auto start = Clock::now();
  std::thread producer([&] { shared.lockstep_produce(seed, 1500); });
  shared.lockstep_check(mix(seed + 1));
  producer.join();
  std::printf("  lockstep: %llu blocks (%llu > capacity), %d clears, %llu windows checked, %.2f s\n",
              static_cast<unsigned long long>(shared.blocks.load()),
              static_cast<unsigned long long>(shared.big_blocks.load()), shared.clears.load(),
              static_cast<unsigned long long>(shared.intact[0].load()),
              std::chrono::duration<double>(Clock::now() - start).count());
  std::fflush(stdout);
  CHECK(shared.big_blocks.load() > 0 && shared.clears.load() > 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) parse("");
  const Memory memory = parse(argv[1]);
  double seconds = 0.6;
  if (const char* env = std::getenv("AUDIORING_FUZZ_SECONDS"); env != nullptr && *env != '\0') {
    seconds = std::atof(env);
  }
  const std::uint64_t seed = audioring_test::seed("frame_ring_fuzz", 3);
  std::printf("frame_ring_fuzz: %s memory, %.2f s per configuration\n", argv[1], seconds);
  run_lockstep(memory, mix(seed + 999));
  for (std::size_t i = 0; i < sizeof kConfigs / sizeof kConfigs[0]; ++i) {
    run(kConfigs[i], memory, mix(seed + 1000 * i), seconds);
  }
  std::printf("frame_ring_fuzz: all tests passed\n");
  return 0;
}
