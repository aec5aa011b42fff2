// FrameWatcher: bells ring when their frame is published or the ring is
// interrupted, never before, and never get lost; the thread starts lazily and
// close() joins it even while it sleeps on the ring; a forked child neither
// hangs nor uses the parent's thread. Ends with a two-thread stress test
// (a producer writing random blocks, a consumer arming random frames).
#include "check.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "audioring/frame_ring.hpp"
#include "audioring/frame_watcher.hpp"

namespace {

using audioring::FrameRing;
using audioring::FrameWatcher;
using Frame = FrameRing::Frame;
using std::chrono::milliseconds;

std::shared_ptr<FrameRing> make_ring() { return std::make_shared<FrameRing>(4, 1024); }

void write_frames(FrameRing& ring, Frame count) {
  std::vector<std::uint32_t> frames(static_cast<std::size_t>(count), 7u);
  ring.write(frames.data(), count);
}

// Whether `fd` becomes readable within `timeout`.
bool rings_within(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && (p.revents & POLLIN) != 0;
}

constexpr milliseconds kSoon{5000};   // a ring that must come: generous on a loaded machine
constexpr milliseconds kQuiet{100};  // how long a ring that must not come is awaited

void test_rings_when_the_frame_arrives() {
  const auto ring = make_ring();
  FrameWatcher watcher(ring);
  const auto bell = watcher.bell();
  CHECK(!watcher.running());  // lazily started
  CHECK(!bell->arm(100, ring->interrupts()));
  CHECK(watcher.running());
  write_frames(*ring, 99);
  CHECK(!rings_within(bell->fd(), kQuiet));  // one frame short
  write_frames(*ring, 1);
  CHECK(rings_within(bell->fd(), kSoon));
  bell->clear();
  CHECK(!rings_within(bell->fd(), milliseconds(0)));
  // Rung bells are disarmed: more frames do not ring again.
  write_frames(*ring, 10);
  CHECK(!rings_within(bell->fd(), kQuiet));
}

void test_a_due_arm_rings_at_once() {
  const auto ring = make_ring();
  FrameWatcher watcher(ring);
  const auto bell = watcher.bell();
  write_frames(*ring, 10);
  CHECK(bell->arm(10, ring->interrupts()));
  CHECK(rings_within(bell->fd(), milliseconds(0)));
  CHECK(!watcher.running());  // nothing had to wait
  bell->clear();
  // A stale interrupt count rings at once too (an interrupt came since it was read).
  const std::uint64_t seen = ring->interrupts();
  ring->interrupt();
  CHECK(bell->arm(1000, seen));
  CHECK(rings_within(bell->fd(), milliseconds(0)));
}

void test_interrupt_rings_armed_bells() {
  const auto ring = make_ring();
  FrameWatcher watcher(ring);
  const auto a = watcher.bell();
  const auto b = watcher.bell();
  CHECK(!a->arm(1000, ring->interrupts()));
  CHECK(!b->arm(2000, ring->interrupts()));
  std::this_thread::sleep_for(milliseconds(20));  // let the thread sleep on the ring
  ring->interrupt();
  CHECK(rings_within(a->fd(), kSoon));
  CHECK(rings_within(b->fd(), kSoon));
}

// A bell armed with a lower frame than the thread sleeps for rings when that
// lower frame is published, not when the higher one is.
void test_a_lower_frame_armed_later_is_seen() {
  const auto ring = make_ring();
  FrameWatcher watcher(ring);
  const auto far = watcher.bell();
  const auto near = watcher.bell();
  CHECK(!far->arm(10000, ring->interrupts()));
  std::this_thread::sleep_for(milliseconds(20));
  CHECK(!near->arm(50, ring->interrupts()));
  write_frames(*ring, 20);
  CHECK(!rings_within(near->fd(), kQuiet));
  write_frames(*ring, 30);
  CHECK(rings_within(near->fd(), kSoon));
  CHECK(!rings_within(far->fd(), kQuiet));
  // Re-arming replaces: the far bell now wants frame 60.
  CHECK(!far->arm(60, ring->interrupts()));
  write_frames(*ring, 10);
  CHECK(rings_within(far->fd(), kSoon));
}

void test_disarm_and_closed_bells_stay_quiet() {
  const auto ring = make_ring();
  FrameWatcher watcher(ring);
  const auto bell = watcher.bell();
  CHECK(!bell->arm(10, ring->interrupts()));
  bell->disarm();
  write_frames(*ring, 20);
  CHECK(!rings_within(bell->fd(), kQuiet));
  const auto other = watcher.bell();
  CHECK(!other->arm(30, ring->interrupts()));
  other->close();
  CHECK(other->fd() == -1);
  CHECK_THROWS(other->arm(40, ring->interrupts()), std::logic_error);
  write_frames(*ring, 20);  // the thread must not touch the closed bell
  CHECK(!rings_within(bell->fd(), kQuiet));
}

void test_close_joins_even_while_the_thread_sleeps_on_the_ring() {
  const auto ring = make_ring();
  auto watcher = std::make_unique<FrameWatcher>(ring);
  const auto bell = watcher->bell();
  CHECK(!bell->arm(1 << 20, ring->interrupts()));  // never comes
  std::this_thread::sleep_for(milliseconds(20));
  const auto started = std::chrono::steady_clock::now();
  watcher->close();
  CHECK(std::chrono::steady_clock::now() - started < kSoon);
  CHECK(watcher->closed() && !watcher->running());
  CHECK(rings_within(bell->fd(), milliseconds(0)));  // close rings every bell
  bell->clear();
  CHECK(bell->arm(1 << 21, ring->interrupts()));  // a closed watcher's bell rings at once
  CHECK(rings_within(bell->fd(), milliseconds(0)));
  CHECK(bell->watcher_closed());
  watcher->close();  // idempotent
  watcher.reset();   // the bell outlives its watcher
  bell->clear();
  CHECK(bell->arm(1 << 22, ring->interrupts()));
  bell->close();
}

void test_destructor_joins_an_idle_thread() {
  const auto ring = make_ring();
  {
    FrameWatcher watcher(ring);
    const auto bell = watcher.bell();
    CHECK(!bell->arm(5, ring->interrupts()));
    write_frames(*ring, 5);
    CHECK(rings_within(bell->fd(), kSoon));  // the thread is idle again now
  }
  CHECK(ring->written() == 5);
}

// In a forked child the watcher's thread does not exist: arm() refuses,
// close() and the destructors return at once (no join, no lock), and the
// parent's watcher goes on working.
void test_fork() {
  const auto ring = make_ring();
  auto watcher = std::make_unique<FrameWatcher>(ring);
  const auto bell = watcher->bell();
  CHECK(!bell->arm(100, ring->interrupts()));  // the thread sleeps on the ring at the fork
  std::this_thread::sleep_for(milliseconds(20));
  const pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int code = 0;
    if (!watcher->forked() || !watcher->closed() || watcher->running()) code = 1;
    try {
      bell->arm(200, ring->interrupts());
      code = 2;
    } catch (const std::logic_error&) {
    }
    watcher->close();
    watcher.reset();
    bell->close();
    FrameWatcher own(ring);  // a child's own watcher works
    if (own.forked()) code = 3;
    const auto own_bell = own.bell();
    if (!own_bell->arm(0, ring->interrupts())) code = 4;
    _exit(code);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  write_frames(*ring, 100);
  CHECK(rings_within(bell->fd(), kSoon));
  watcher->close();
}

// A producer writes random blocks (sometimes pausing, sometimes
// interrupting); a consumer arms random frames near the end and waits on
// poll(). Every ring must be due when it comes (written >= frame, or an
// interrupt since the count was read), and none may be lost (poll times out).
void test_stress() {
  std::mt19937_64 random(audioring_test::seed("frame_watcher stress", 12));
  const auto ring = make_ring();
  FrameWatcher watcher(ring);
  const auto bell = watcher.bell();
  std::atomic<bool> done{false};
  const std::uint64_t producer_seed = random();
  std::thread producer([&] {
    std::mt19937_64 r(producer_seed);
    while (!done.load()) {
      write_frames(*ring, static_cast<Frame>(1 + r() % 64));
      if (r() % 50 == 0) ring->interrupt();
      if (r() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(r() % 300));
    }
  });
  int rings = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t seen = ring->interrupts();
    const Frame frame = ring->written() + static_cast<Frame>(random() % 200);
    bell->arm(frame, seen);
    CHECK_MSG(rings_within(bell->fd(), kSoon), "no ring for frame %lld (written %lld)",
              static_cast<long long>(frame), static_cast<long long>(ring->written()));
    bell->clear();
    CHECK_MSG(ring->written() >= frame || ring->interrupts() != seen, "rang early: frame %lld, written %lld",
              static_cast<long long>(frame), static_cast<long long>(ring->written()));
    ++rings;
  }
  done.store(true);
  producer.join();
  watcher.close();
  CHECK(rings == 20000);
}

}  // namespace

int main() {
  test_rings_when_the_frame_arrives();
  test_a_due_arm_rings_at_once();
  test_interrupt_rings_armed_bells();
  test_a_lower_frame_armed_later_is_seen();
  test_disarm_and_closed_bells_stay_quiet();
  test_close_joins_even_while_the_thread_sleeps_on_the_ring();
  test_destructor_joins_an_idle_thread();
  test_fork();
  test_stress();
  std::printf("frame_watcher: all passed\n");
  return 0;
}
