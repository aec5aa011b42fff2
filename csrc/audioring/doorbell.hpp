// Wakes threads that wait for a producer's progress, without ever making the
// producer wait, lock or allocate.
//
// The futex word lives in the ring's control block (ring_control.hpp): in
// private memory, or in a shared ring's mapping, where threads of other
// processes sleep on it too. Everything else here (the waiter count, the
// interrupt count) belongs to this process. Three scopes:
//  - process: a private ring. Private futex operations; ring() makes a
//    system call only while a thread of this process waits.
//  - shared: the producer's side of a shared ring. Shared futex operations
//    (the kernel keys them by the mapped file, so they meet across
//    processes); ring() wakes unconditionally, because readers of other
//    processes cannot announce themselves: their mapping is read-only.
//  - read_only: a reader's side of a shared ring. Shared futex operations;
//    the word cannot be changed from here (see interrupt()).
//
// Threading: ring() from the producer (never in read_only scope);
// interrupt() from any thread; wait() from any number of threads at once.
//
// Why no lost wake-up: a waiter reads the word before it tests its
// conditions; a waker changes what the conditions test (publishes frames,
// counts an interrupt), then bumps the word, then wakes. All of it is
// seq_cst, so either the waiter's read of the word comes after the bump (and
// its tests see the change) or the futex finds the word changed, or the wake
// finds the waiter asleep. In process scope the waker skips the wake when no
// waiter announced itself (waiters_, incremented before the waiter reads the
// word): either the waker sees the count or the waiter sees the bump.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <thread>

#include "audioring/platform.hpp"

#if defined(AUDIORING_LINUX)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace audioring {

enum class WaitStatus { ready, timeout, interrupted };

class Doorbell {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Scope { process, shared, read_only };

  // A read-only waiter looks at its conditions at least this often:
  // interrupt() cannot bump the word there, so a waiter between its tests and
  // its sleep misses that wake and sees the interrupt at its next look.
  static constexpr std::chrono::milliseconds kReadOnlySlice{10};

  Doorbell(std::atomic<std::uint32_t>& word, Scope scope) noexcept : word_(word), scope_(scope) {}
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  Scope scope() const noexcept { return scope_; }

  // Producer side, after each publish: wait-free; in process scope a system
  // call only while someone waits, in shared scope always (a futex wake that
  // finds no waiter costs about a hundred nanoseconds).
  void ring() noexcept {
    assert(scope_ != Scope::read_only && "Doorbell::ring on a read-only mapping");
    word_.fetch_add(1, std::memory_order_seq_cst);
    if (scope_ == Scope::shared || waiters_.load(std::memory_order_seq_cst) != 0) wake_all();
  }

  // Makes every current wait() of this process whose interrupted() tests
  // interrupts() return `interrupted` (used by stop() and close()).
  void interrupt() noexcept {
    interrupts_.fetch_add(1, std::memory_order_seq_cst);
    if (scope_ != Scope::read_only) word_.fetch_add(1, std::memory_order_seq_cst);
    wake_all();  // read_only: also wakes other processes' waiters, which look and sleep again
  }

  // How many times interrupt() was called in this process. A caller that
  // reads it before checking its own state and compares it in wait()'s
  // interrupted() cannot miss an interrupt that comes in between.
  std::uint64_t interrupts() const noexcept { return interrupts_.load(std::memory_order_seq_cst); }

  // Blocks until ready() is true (-> ready), interrupted() is true
  // (-> interrupted) or the deadline passes (-> timeout). Both are tested
  // after each wake-up and, in read_only scope, at least every kReadOnlySlice.
  template <class Ready, class Interrupted>
  WaitStatus wait(Ready ready, Interrupted interrupted, Clock::time_point deadline) noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    WaitStatus status;
    for (;;) {
      const std::uint32_t seen = word_.load(std::memory_order_seq_cst);
      if (ready()) {
        status = WaitStatus::ready;
        break;
      }
      if (interrupted()) {
        status = WaitStatus::interrupted;
        break;
      }
      const Clock::time_point now = Clock::now();
      if (now >= deadline) {
        status = WaitStatus::timeout;
        break;
      }
      Clock::duration left = deadline - now;
      if (scope_ == Scope::read_only) left = std::min<Clock::duration>(left, kReadOnlySlice);
      sleep_while_unchanged(seen, left);
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return status;
  }

 private:
#if defined(AUDIORING_LINUX)
  long futex(int private_op, int shared_op, std::uint32_t value, const timespec* timeout) const noexcept {
    // FUTEX_WAIT and FUTEX_WAKE only read the word: they work on a read-only
    // mapping too.
    return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word_),
                   scope_ == Scope::process ? private_op : shared_op, value, timeout, nullptr, 0);
  }
#endif

  void wake_all() const noexcept {
#if defined(AUDIORING_LINUX)
    futex(FUTEX_WAKE_PRIVATE, FUTEX_WAKE, INT32_MAX, nullptr);
#endif
  }

  void sleep_while_unchanged(std::uint32_t seen, Clock::duration left) const noexcept {
#if defined(AUDIORING_LINUX)
    // Spurious returns (EINTR, EAGAIN) are fine: wait() re-checks everything.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{};
    timeout.tv_sec = static_cast<time_t>(ns / 1000000000);
    timeout.tv_nsec = static_cast<long>(ns % 1000000000);
    futex(FUTEX_WAIT_PRIVATE, FUTEX_WAIT, seen, &timeout);
#else
    // No futex: poll. Latency up to 1 ms, still no work for the producer.
    (void)seen;
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(1)));
#endif
  }

  std::atomic<std::uint32_t>& word_;          // in the ring's control block; see the top comment
  const Scope scope_;
  std::atomic<std::uint32_t> waiters_{0};     // threads of this process inside wait(); see ring()
  std::atomic<std::uint64_t> interrupts_{0};  // bumped by interrupt(); waiters compare with their start value
};

}  // namespace audioring
