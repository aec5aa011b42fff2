// Wakes threads that wait for a producer's progress, without ever making the
// producer wait, lock or allocate.
//
// Threading: ring() and interrupt() from any thread (the producer calls
// ring() after each publish); wait() from any number of threads at once.
//
// Why no lost wake-up: a waiter announces itself (waiters_) and reads seq_
// before it tests its condition; the producer publishes, then bumps seq_,
// then reads waiters_. All four are seq_cst, so either the producer sees the
// waiter and wakes it, or the waiter's read of seq_ is ordered after the
// bump, its condition sees the publish, and the futex compare fails at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#if defined(__linux__)
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

  // Producer side: wait-free; makes a system call only while someone waits.
  void ring() noexcept {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake_all();
  }

  // Makes every current wait() return `interrupted` (used by stop() and close()).
  void interrupt() noexcept {
    interrupts_.fetch_add(1, std::memory_order_seq_cst);
    seq_.fetch_add(1, std::memory_order_seq_cst);
    wake_all();
  }

  // How many times interrupt() was called. A caller that reads it before
  // checking its own state and passes it to wait() cannot miss an interrupt
  // that comes in between.
  std::uint64_t interrupts() const noexcept { return interrupts_.load(std::memory_order_seq_cst); }

  // Blocks until ready() is true, the deadline passes or interrupts() differs
  // from `interrupts_seen`.
  template <class Ready>
  WaitStatus wait(Ready ready, Clock::time_point deadline, std::uint64_t interrupts_seen) noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    WaitStatus status;
    for (;;) {
      const std::uint32_t seen = seq_.load(std::memory_order_seq_cst);
      if (ready()) {
        status = WaitStatus::ready;
        break;
      }
      if (interrupts_.load(std::memory_order_seq_cst) != interrupts_seen) {
        status = WaitStatus::interrupted;
        break;
      }
      const Clock::time_point now = Clock::now();
      if (now >= deadline) {
        status = WaitStatus::timeout;
        break;
      }
      sleep_while_unchanged(seen, deadline - now);
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return status;
  }

 private:
  void wake_all() noexcept {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#endif
  }

  void sleep_while_unchanged(std::uint32_t seen, Clock::duration left) noexcept {
#if defined(__linux__)
    // Spurious returns (EINTR, EAGAIN) are fine: wait() re-checks everything.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{};
    timeout.tv_sec = static_cast<time_t>(ns / 1000000000);
    timeout.tv_nsec = static_cast<long>(ns % 1000000000);
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAIT_PRIVATE, seen, &timeout, nullptr, 0);
#else
    // No futex: poll. Latency up to 1 ms, still no work for the producer.
    (void)seen;
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(1)));
#endif
  }

  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "futex needs a plain 32-bit word");

  std::atomic<std::uint32_t> seq_{0};        // bumped after every publish; the futex word
  std::atomic<std::uint32_t> waiters_{0};    // threads inside wait(); producer skips the wake when 0
  std::atomic<std::uint64_t> interrupts_{0};  // bumped by interrupt(); waiters compare with their start value
};

}  // namespace audioring
