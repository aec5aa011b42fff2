// Single-threaded tests of FrameRing against a simple model (every frame ever
// written, negative frames zero), for every memory kind, plus capacity
// rounding and wait_for_frame() with a second thread.
#include "check.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "audioring/frame_ring.hpp"
#include "audioring/platform.hpp"

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace {

using audioring::FrameRing;
using audioring::MemoryKind;
using audioring::MemoryRequest;
using audioring::RingMemory;
using audioring::SpeculativeReads;
using audioring::WaitStatus;
using Frame = FrameRing::Frame;
using Clock = FrameRing::Clock;
using std::chrono::milliseconds;

// What MemoryRequest::best gives: memfd on Linux; elsewhere shm (on Windows a section mapped
// twice, on the other POSIX systems shm_open's object mapped twice).
#if !defined(AUDIORING_LINUX)
constexpr MemoryKind kBestKind = MemoryKind::shm;
#else
constexpr MemoryKind kBestKind = MemoryKind::memfd;
#endif

std::size_t gcd(std::size_t a, std::size_t b) { return b == 0 ? a : gcd(b, a % b); }

// Wide enough for any frame count x frame size (GCC and Clang; -Wpedantic-clean).
__extension__ typedef unsigned __int128 U128;

// ---- rounded_capacity --------------------------------------------------------

void check_rounding(std::size_t frame_bytes, Frame wanted) {
  const std::size_t page = RingMemory::page_size();
  const Frame got = FrameRing::rounded_capacity(frame_bytes, wanted);
  CHECK_MSG(got >= wanted, "frame_bytes %zu, wanted %lld: got %lld", frame_bytes, static_cast<long long>(wanted),
            static_cast<long long>(got));
  const auto bytes = [&](Frame frames) { return static_cast<U128>(frames) * frame_bytes; };
  CHECK_MSG(bytes(got) % page == 0, "frame_bytes %zu, wanted %lld: %lld frames are not whole pages", frame_bytes,
            static_cast<long long>(wanted), static_cast<long long>(got));
  // Smallest such: no capacity in [wanted, got) is a whole number of pages.
  // (Page multiples of frame_bytes recur every page / gcd frames.)
  const auto step = static_cast<Frame>(page / gcd(frame_bytes, page));
  CHECK_MSG(got - wanted < step, "frame_bytes %zu, wanted %lld: got %lld, not the smallest", frame_bytes,
            static_cast<long long>(wanted), static_cast<long long>(got));
  if (got - wanted <= 4096) {
    for (Frame c = wanted; c < got; ++c) CHECK(bytes(c) % page != 0);
  }
}

void test_rounded_capacity() {
  const std::size_t page = RingMemory::page_size();
  for (const std::size_t frame_bytes :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{4}, std::size_t{6}, std::size_t{8},
        std::size_t{9}, std::size_t{12}, std::size_t{24}, std::size_t{32}, std::size_t{96}, std::size_t{100},
        std::size_t{1536}, page - 1, page, page + 1, 2 * page, 3 * page, 3 * page + 2, std::size_t{1} << 20,
        (std::size_t{1} << 20) + 1}) {
    for (const Frame wanted : {Frame{1}, Frame{2}, Frame{3}, Frame{7}, Frame{100}, Frame{1000}, Frame{1023},
                               Frame{1024}, Frame{1025}, Frame{4095}, Frame{4096}, Frame{4097}, Frame{16000},
                               Frame{48000}, Frame{1} << 20, (Frame{1} << 20) + 1}) {
      check_rounding(frame_bytes, wanted);
    }
  }
  CHECK(FrameRing::rounded_capacity(4, 1) == static_cast<Frame>(page / 4));
  CHECK(FrameRing::rounded_capacity(8, static_cast<Frame>(page / 8)) == static_cast<Frame>(page / 8));
  CHECK(FrameRing::rounded_capacity(3, 1) == static_cast<Frame>(page));
  CHECK(FrameRing::rounded_capacity(page, 5) == 5);

  CHECK_THROWS(FrameRing::rounded_capacity(0, 100), std::invalid_argument);
  for (const Frame bad : {Frame{0}, Frame{-1}, Frame{-4096}, std::numeric_limits<Frame>::min()}) {
    CHECK_THROWS(FrameRing::rounded_capacity(4, bad), std::invalid_argument);
    CHECK_THROWS(FrameRing(4, bad), std::invalid_argument);
  }
  CHECK_THROWS(FrameRing(0, 100), std::invalid_argument);

  // Byte counts that do not fit: must throw, never wrap around to a small
  // ring. The exact rounded size, in 128 bits, says what to expect: more
  // than SIZE_MAX / 4 bytes (both halves plus slack) must throw a size error,
  // up to SIZE_MAX / 8 must not (the ring itself then fails with
  // OutOfMemory). A size error is std::length_error or OutOfMemory: the core
  // has used both for "more than the address space holds".
  const auto size_error = [](auto&& call) {
    try {
      call();
    } catch (const std::length_error&) {
      return true;
    } catch (const audioring::OutOfMemory&) {
      return true;
    }
    return false;
  };
  const Frame max_frame = std::numeric_limits<Frame>::max();
  const std::size_t frame_sizes[] = {
      1, 4, 9, std::size_t{1} << 40, std::size_t{1} << 52, (std::size_t{1} << 52) + 1, (std::size_t{1} << 60) + 1,
      SIZE_MAX / 8,  // odd
      SIZE_MAX / 4, SIZE_MAX / 4 + 1, SIZE_MAX / 2, SIZE_MAX};
  for (const std::size_t frame_bytes : frame_sizes) {
    for (const Frame wanted : {Frame{1}, Frame{4097}, Frame{1} << 30, Frame{1} << 61, max_frame / 4, max_frame - 1,
                               max_frame}) {
      const auto step = static_cast<U128>(page / gcd(frame_bytes, page));
      const U128 rounded = (static_cast<U128>(wanted) + step - 1) / step * step;
      const U128 bytes = rounded * frame_bytes;
      Frame got = 0;
      const bool threw = size_error([&] { got = FrameRing::rounded_capacity(frame_bytes, wanted); });
      if (bytes > SIZE_MAX / 4) {
        CHECK_MSG(threw, "rounded_capacity(%zu, %lld) returned %lld instead of throwing "
                  "(%lld x %zu bytes %s 2^64)", frame_bytes, static_cast<long long>(wanted),
                  static_cast<long long>(got), static_cast<long long>(got), frame_bytes,
                  static_cast<U128>(got) * frame_bytes > SIZE_MAX ? "overflows" : "fits in");
        CHECK(size_error([&] { FrameRing ring(frame_bytes, wanted); }));
      } else if (bytes <= SIZE_MAX / 8) {
        CHECK_MSG(!threw && static_cast<U128>(got) == rounded, "rounded_capacity(%zu, %lld)", frame_bytes,
                  static_cast<long long>(wanted));
      }
    }
  }
}

// ---- model -------------------------------------------------------------------

// Every frame ever written, in order; frames < 0 are zeros.
class Model {
 public:
  explicit Model(std::size_t frame_bytes) : frame_bytes_(frame_bytes) {}

  void write(const std::byte* frames, Frame count) {
    if (frames == nullptr) {
      bytes_.resize(bytes_.size() + static_cast<std::size_t>(count) * frame_bytes_, std::byte{0});
    } else {
      bytes_.insert(bytes_.end(), frames, frames + static_cast<std::size_t>(count) * frame_bytes_);
    }
  }
  Frame written() const { return static_cast<Frame>(bytes_.size() / frame_bytes_); }
  std::byte byte(Frame frame, std::size_t offset) const {
    return frame < 0 ? std::byte{0} : bytes_[static_cast<std::size_t>(frame) * frame_bytes_ + offset];
  }
  // Index of the first frame of [first, first + count) that differs from `data`, or -1.
  Frame mismatch(Frame first, Frame count, const std::byte* data) const {
    Frame i = 0;
    for (; i < count && first + i < 0; ++i) {  // never written: zeros
      for (std::size_t j = 0; j < frame_bytes_; ++j) {
        if (data[static_cast<std::size_t>(i) * frame_bytes_ + j] != std::byte{0}) return i;
      }
    }
    if (i == count) return -1;
    const std::byte* expected = bytes_.data() + static_cast<std::size_t>(first + i) * frame_bytes_;
    const std::byte* got = data + static_cast<std::size_t>(i) * frame_bytes_;
    const std::size_t n = static_cast<std::size_t>(count - i) * frame_bytes_;
    if (std::memcmp(got, expected, n) == 0) return -1;
    std::size_t k = 0;
    while (got[k] == expected[k]) ++k;
    return i + static_cast<Frame>(k / frame_bytes_);
  }

 private:
  std::size_t frame_bytes_;
  std::vector<std::byte> bytes_;
};

// Checks window [first, first + count) in place and through copy().
void check_window(const FrameRing& ring, const Model& model, Frame first, Frame count, const char* what) {
  const Frame written = ring.written();
  const Frame capacity = ring.capacity();
  const bool should_be_intact = written - first <= capacity;
  CHECK_MSG(ring.intact(first) == should_be_intact, "%s: intact(%lld) with written %lld, capacity %lld", what,
            static_cast<long long>(first), static_cast<long long>(written), static_cast<long long>(capacity));
  if (!should_be_intact) return;
  Frame bad;
  {
    [[maybe_unused]] SpeculativeReads speculative;
    bad = model.mismatch(first, count, ring.frame_address(first));
  }
  CHECK_MSG(bad < 0, "%s: in-place window [%lld, +%lld) differs at frame %lld (written %lld, capacity %lld)", what,
            static_cast<long long>(first), static_cast<long long>(count), static_cast<long long>(first + bad),
            static_cast<long long>(written), static_cast<long long>(capacity));
  std::vector<std::byte> out(static_cast<std::size_t>(count) * ring.frame_bytes() + 1, std::byte{0x5A});
  CHECK(ring.copy(first, count, out.data()));
  bad = model.mismatch(first, count, out.data());
  CHECK_MSG(bad < 0, "%s: copied window [%lld, +%lld) differs at frame %lld", what, static_cast<long long>(first),
            static_cast<long long>(count), static_cast<long long>(first + bad));
  CHECK(out.back() == std::byte{0x5A});  // copy() wrote exactly count frames
}

// Checks every intact() boundary and a selection of windows.
void check_ring(const FrameRing& ring, const Model& model, std::mt19937_64& rng, const char* what) {
  const Frame written = ring.written();
  const Frame capacity = ring.capacity();
  CHECK_MSG(written == model.written(), "%s: written %lld, model %lld", what, static_cast<long long>(written),
            static_cast<long long>(model.written()));
  // intact() exactly at its boundary (no writer: intent == written).
  CHECK(ring.intact(written - capacity));
  CHECK(!ring.intact(written - capacity - 1));
  CHECK(ring.intact(written));
  CHECK(ring.intact(written - 1));
  // Latest-n windows, the oldest readable ones, and random ones.
  for (const Frame n : {Frame{1}, Frame{2}, capacity / 3, capacity - 1, capacity}) {
    if (n < 1) continue;
    check_window(ring, model, written - n, n, what);
    check_window(ring, model, written - capacity, n, what);
  }
  // Every slot as a start once: windows crossing the wrap point, and on
  // plain memory every slot's second copy.
  const Frame n = std::min<Frame>(capacity, 37);
  for (Frame s = written - capacity; s <= written - n; s += std::max<Frame>(1, capacity / 97)) {
    check_window(ring, model, s, n, what);
  }
  for (int i = 0; i < 8; ++i) {
    const Frame count = 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity));
    const Frame first = written - capacity + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity - count + 1));
    check_window(ring, model, first, count, what);
  }
  // Overwritten windows are reported as such.
  check_window(ring, model, written - capacity - 1, 1, what);
  check_window(ring, model, written - 2 * capacity - 5, capacity, what);
}

void test_model(MemoryRequest request, std::size_t frame_bytes, Frame wanted, std::mt19937_64& rng) {
  char what[96];
  std::snprintf(what, sizeof what, "%s, %zu-byte frames, capacity >= %lld", to_string(request), frame_bytes,
                static_cast<long long>(wanted));
  FrameRing ring(frame_bytes, wanted, request);
  const Frame capacity = ring.capacity();
  CHECK(capacity == FrameRing::rounded_capacity(frame_bytes, wanted));
  CHECK(ring.frame_bytes() == frame_bytes);
  CHECK(ring.mirrored() == (request != MemoryRequest::plain));
  CHECK(ring.memory_kind() == (request == MemoryRequest::plain  ? MemoryKind::plain
                               : request == MemoryRequest::shm ? MemoryKind::shm
                                                                : kBestKind));
  // Its storage is private: laid out as the ring says, a process-scope
  // doorbell, and no liveness to tell (its producer is this process).
  const audioring::RingStorage& storage = ring.storage();
  CHECK(storage.capacity() == capacity && storage.frame_bytes() == frame_bytes);
  CHECK(storage.data() == ring.frame_address(0) && storage.kind() == ring.memory_kind());
  CHECK(storage.doorbell_scope() == audioring::Doorbell::Scope::process && !storage.read_only() && !ring.read_only());
  CHECK(storage.state_changes() == 0 && !storage.producer_found_dead() && !storage.known_dead());
  CHECK(storage.published_counters() == nullptr);
  Model model(frame_bytes);

  // Fresh ring: nothing written, every readable window is zeros.
  CHECK(ring.written() == 0);
  check_ring(ring, model, rng, what);

  std::vector<std::byte> source(static_cast<std::size_t>(3 * capacity + 64) * frame_bytes);  // the largest write below
  const auto write = [&](Frame count, bool silence) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(count) * frame_bytes; i += 8) {
      const std::uint64_t bits = rng();
      std::memcpy(&source[i], &bits, std::min<std::size_t>(8, source.size() - i));
    }
    CHECK(static_cast<std::size_t>(count) * frame_bytes <= source.size());
    const Frame before = ring.written();
    ring.write(silence ? nullptr : source.data(), count);
    model.write(silence ? nullptr : source.data(), count);
    CHECK(ring.written() == before + count);  // advances by the full count, even past capacity
  };

  // Writes of every interesting size, each followed by a full check.
  const Frame sizes[] = {1, 2, capacity - 1, capacity, capacity + 1, 1, 2 * capacity + 3, 3, capacity / 2 + 1,
                         capacity / 2, capacity - 2, 3 * capacity, capacity + 7};
  for (const Frame count : sizes) {
    if (count < 1) continue;
    write(count, false);
    check_ring(ring, model, rng, what);
  }
  write(0, false);  // a no-op
  check_ring(ring, model, rng, what);
  write(5, true);  // silence
  check_ring(ring, model, rng, what);

  // Random sizes, mostly small, sometimes larger than the ring.
  for (int i = 0; i < 60; ++i) {
    const std::uint64_t kind = rng() % 10;
    const Frame count = kind < 7   ? 1 + static_cast<Frame>(rng() % 64)
                        : kind < 9 ? 1 + static_cast<Frame>(rng() % static_cast<std::uint64_t>(capacity))
                                   : capacity + static_cast<Frame>(rng() % static_cast<std::uint64_t>(2 * capacity));
    write(count, rng() % 16 == 0);
    if (i % 6 == 0) check_ring(ring, model, rng, what);
  }
  check_ring(ring, model, rng, what);

  // clear(): zeros, counted as capacity frames written; no earlier window is intact.
  const Frame before = ring.written();
  ring.clear();
  model.write(nullptr, capacity);
  CHECK(ring.written() == before + capacity);
  check_ring(ring, model, rng, what);
  CHECK(!ring.intact(before - 1));
  CHECK(!ring.intact(before - capacity));
  CHECK(ring.intact(before));
  {
    [[maybe_unused]] SpeculativeReads speculative;
    const std::byte* data = ring.frame_address(ring.written() - capacity);
    for (std::size_t i = 0; i < static_cast<std::size_t>(capacity) * frame_bytes; ++i) CHECK(data[i] == std::byte{0});
  }
  write(3, false);
  check_ring(ring, model, rng, what);
}

// ---- wait_for_frame ----------------------------------------------------------

void test_wait_for_frame(MemoryRequest request) {
  FrameRing ring(8, 1000, request);
  const std::byte frame[8] = {};
  const auto past = Clock::now() - milliseconds(1);
  const std::uint64_t seen = ring.interrupts();

  // Ready at once, even with a deadline in the past.
  CHECK(ring.wait_for_frame(0, past, seen) == WaitStatus::ready);
  CHECK(ring.wait_for_frame(-5, past, seen) == WaitStatus::ready);
  CHECK(ring.wait_for_frame(1, past, seen) == WaitStatus::timeout);
  ring.write(frame, 1);
  CHECK(ring.wait_for_frame(1, past, seen) == WaitStatus::ready);
  CHECK(ring.wait_for_frame(2, past, seen) == WaitStatus::timeout);

  // Timeout: waits until the deadline, not much longer.
  auto start = Clock::now();
  CHECK(ring.wait_for_frame(2, start + milliseconds(50), seen) == WaitStatus::timeout);
  auto waited = Clock::now() - start;
  CHECK(waited >= milliseconds(50));
  CHECK_MSG(waited < milliseconds(5000), "timeout of 50 ms took %lld ms",
            static_cast<long long>(std::chrono::duration_cast<milliseconds>(waited).count()));

  // Ready when another thread writes the frame.
  start = Clock::now();
  std::thread producer([&] {
    std::this_thread::sleep_for(milliseconds(30));
    ring.write(frame, 1);
  });
  CHECK(ring.wait_for_frame(2, start + milliseconds(10000), seen) == WaitStatus::ready);
  CHECK(ring.written() >= 2);
  producer.join();

  // No lost wake-up: follow a producer frame by frame (each wait may block).
  {
    const Frame first = ring.written();
    constexpr Frame kFrames = 3000;
    std::thread writer([&] {
      for (Frame i = 0; i < kFrames; ++i) {
        ring.write(frame, 1);
        if (i % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
    for (Frame f = first + 1; f <= first + kFrames; ++f) {
      const WaitStatus status = ring.wait_for_frame(f, Clock::now() + milliseconds(10000), seen);
      CHECK_MSG(status == WaitStatus::ready, "wait for frame %lld: status %d", static_cast<long long>(f),
                static_cast<int>(status));
      CHECK(ring.written() >= f);
    }
    writer.join();
  }

  // interrupt() wakes every waiter that read interrupts() before it, whether
  // it is already asleep or not yet waiting.
  {
    constexpr int kWaiters = 3;
    std::atomic<int> interrupted{0};
    std::atomic<int> ready_to_wait{0};
    std::vector<std::thread> waiters;
    start = Clock::now();
    for (int i = 0; i < kWaiters; ++i) {
      waiters.emplace_back([&, i] {
        const std::uint64_t before = ring.interrupts();
        ready_to_wait.fetch_add(1);
        if (i == 0) {  // this one starts waiting only after the interrupt
          while (ring.interrupts() == before) std::this_thread::yield();
        }
        const WaitStatus status = ring.wait_for_frame(1'000'000, Clock::now() + milliseconds(20000), before);
        if (status == WaitStatus::interrupted) interrupted.fetch_add(1);
      });
    }
    while (ready_to_wait.load() < kWaiters) std::this_thread::yield();
    std::this_thread::sleep_for(milliseconds(20));  // let the others fall asleep
    ring.interrupt();
    for (std::thread& t : waiters) t.join();
    CHECK(interrupted.load() == kWaiters);
    CHECK(Clock::now() - start < milliseconds(10000));
  }

  // Waits that start from the current count are not cancelled by earlier interrupts.
  ring.interrupt();
  const std::uint64_t now_seen = ring.interrupts();
  CHECK(now_seen >= seen + 2);
  CHECK(ring.wait_for_frame(1'000'000, Clock::now() + milliseconds(20), now_seen) == WaitStatus::timeout);
  CHECK(ring.wait_for_frame(1, Clock::now() + milliseconds(20), now_seen) == WaitStatus::ready);
  // Readiness wins over a pending interrupt; a stale count interrupts at once.
  CHECK(ring.wait_for_frame(1, Clock::now() + milliseconds(20), seen) == WaitStatus::ready);
  start = Clock::now();
  CHECK(ring.wait_for_frame(1'000'000, Clock::now() + milliseconds(10000), seen) == WaitStatus::interrupted);
  CHECK(Clock::now() - start < milliseconds(5000));
}

// ---- fork ------------------------------------------------------------------------

#if !defined(_WIN32)
// A ring knows it is its parent's in a forked child, and only there.
void test_fork_guard() {
  FrameRing ring(4, 1024);
  CHECK(!ring.forked());
  const pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    FrameRing own(4, 1024);  // made in the child: the child's
    _exit(ring.forked() && !own.forked() ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw forked() wrong (status %d)", status);
  CHECK(!ring.forked());
}
#endif

// The memory requests this system serves: only Linux has memfd (elsewhere the mirrored kind is shm).
std::vector<MemoryRequest> requests() {
#if !defined(AUDIORING_LINUX)
  return {MemoryRequest::shm, MemoryRequest::plain, MemoryRequest::best};
#else
  return {MemoryRequest::memfd, MemoryRequest::shm, MemoryRequest::plain, MemoryRequest::best};
#endif
}

}  // namespace

int main() {
  std::mt19937_64 rng(audioring_test::seed("frame_ring", 2));
  auto start = Clock::now();
  const auto lap = [&](const char* what) {
    const auto now = Clock::now();
    std::printf("  %-28s %.2f s\n", what, std::chrono::duration<double>(now - start).count());
    std::fflush(stdout);
    start = now;
  };
  test_rounded_capacity();
  lap("rounded_capacity");
  for (const MemoryRequest request : requests()) {
    // (frame bytes, wanted capacity): 1 x int32, 2 x float32, 3 x int16,
    // 3 x 24-bit, 8 x int32, and frames of 2 and 1.5 pages.
    for (const auto& [frame_bytes, wanted] :
         {std::pair<std::size_t, Frame>{4, 1}, {4, 1500}, {8, 700}, {6, 100}, {9, 10}, {32, 300}, {8192, 3},
          {6144, 2}}) {
      test_model(request, frame_bytes, wanted, rng);
    }
    lap((std::string("model, ") + to_string(request)).c_str());
    test_wait_for_frame(request);
    lap((std::string("wait_for_frame, ") + to_string(request)).c_str());
  }
#if !defined(_WIN32)
  test_fork_guard();
  lap("fork guard");
#endif
  std::printf("frame_ring: all tests passed\n");
  return 0;
}
