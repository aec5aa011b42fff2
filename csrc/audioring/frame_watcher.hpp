// FrameWatcher: tells event loops (asyncio) that a ring's frames arrived,
// without polling, without a thread per waiting consumer, and without any
// work on the audio thread beyond what FrameRing already does.
//
// Why a thread at all: an event loop sleeps in epoll/kqueue on file
// descriptors, and the ring's doorbell (a futex) is not one. The producer
// must not write to a descriptor itself (a system call on the audio thread
// for every block, even with nobody listening), so one native thread per
// watched ring bridges the two: it sleeps in FrameRing::wait_for_frame()
// while some bell is armed, and rings the bells (eventfd on Linux, a pipe
// elsewhere) whose frame has arrived. While no bell is armed it sleeps on a
// condition variable of its own: the ring has no waiter then, so the
// producer's publish costs exactly what it costs without a watcher.
//
// Bells: one per event loop. A loop arms its bell with the lowest frame any
// of its consumers waits for (and the interrupt count they saw); the thread
// disarms a bell when it rings it, and the loop re-arms it after reading.
// Hundreds of consumers on one loop are one armed bell.
//
// What the thread waits for: the next publish (written() + 1), not the
// lowest armed frame. The doorbell wakes every sleeper on every publish
// anyway (it has one futex word), so this costs the same wake-ups, and a
// bell armed with a lower frame while the thread sleeps is seen at the next
// publish instead of needing a way to wake the thread that FrameRing does
// not have. interrupt() (stop, close) ends the wait too and rings every bell
// armed before it, so consumers re-check their producer as stream() does.
//
// Scheduling (Linux): the thread runs SCHED_BATCH, which never preempts the
// thread that woke it. The producer's publish wakes it with a futex (the
// doorbell's, made only while some bell is armed); an audio thread without
// realtime priority would otherwise be preempted inside its callback by the
// watcher, and then by the event loop it wakes (measured on a loaded 2-core
// VM, jackd -r: the callback took 314 us at the median instead of 8 us).
//
// Lifetime: the thread starts with the first arm() that has to wait and is
// joined by close() (also the destructor). close() rings every bell (a
// closed watcher's bells always ring at once). If the thread sleeps on the
// ring at that moment (a bell was armed), close() calls ring.interrupt() to
// wake it: other waiters of the ring then see a spurious `interrupted` and
// re-check their state, as every waiter of a FrameRing must.
//
// Fork: the thread does not exist in a forked child, and its mutex or
// condition variable may have been held there at the fork. In a child,
// close() and the destructor touch neither (the shared state is left to
// leak), bells only close their descriptors, and arm() throws
// std::logic_error. A child makes watchers of its own.
//
// Threading: every method from any thread; the thread never calls into
// Python and never holds the mutex while it sleeps on the ring.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "audioring/fork_guard.hpp"
#include "audioring/frame_ring.hpp"

namespace audioring {

// A descriptor an event loop can watch for readability, made readable from
// any thread: an eventfd on Linux, the read end of a non-blocking pipe on
// other POSIX systems. Not available on Windows (the constructor throws).
class WakeFd {
 public:
  WakeFd();  // throws std::system_error
  ~WakeFd() { close(); }
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  int fd() const noexcept { return read_fd_; }  // -1 once closed
  void notify() noexcept;                       // make fd() readable (idempotent until clear())
  void clear() noexcept;                        // make it unreadable again
  void close() noexcept;

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;  // == read_fd_ for an eventfd
};

class FrameWatcher {
 public:
  using Frame = FrameRing::Frame;
  class Bell;

  explicit FrameWatcher(std::shared_ptr<const FrameRing> ring);
  ~FrameWatcher() { close(); }
  FrameWatcher(const FrameWatcher&) = delete;
  FrameWatcher& operator=(const FrameWatcher&) = delete;

  // A new bell with its own descriptor; throws std::system_error if the
  // system has none to give.
  std::shared_ptr<Bell> bell();

  // Rings every bell, stops the thread and joins it. Idempotent. Arms
  // after it ring at once.
  void close() noexcept;

  bool closed() const noexcept;
  // Whether the thread was started and not yet joined.
  bool running() const noexcept;
  bool forked() const noexcept;
  const std::shared_ptr<const FrameRing>& ring() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

class FrameWatcher::Bell {
 public:
  ~Bell() { close(); }
  Bell(const Bell&) = delete;
  Bell& operator=(const Bell&) = delete;

  int fd() const noexcept { return wake_.fd(); }

  // Ring when ring().written() >= frame, or once ring().interrupts() differs
  // from interrupts_seen. Replaces an earlier arm. Returns true if it rang
  // at once (already due, or the watcher is closed). Throws std::logic_error
  // in a forked child or once the bell is closed, std::system_error if the
  // thread cannot start (the bell is then disarmed).
  bool arm(Frame frame, std::uint64_t interrupts_seen);
  void disarm() noexcept;
  // Makes fd() unreadable until the next ring. Call before looking at the
  // ring, so that a ring that comes after the look is not lost.
  void clear() noexcept { wake_.clear(); }
  // Leaves the watcher and closes the descriptor (unwatch it first). Idempotent.
  void close() noexcept;

  bool watcher_closed() const noexcept;
  const std::shared_ptr<const FrameRing>& ring() const noexcept;

 private:
  friend class FrameWatcher;
  explicit Bell(std::shared_ptr<State> state) : state_(std::move(state)) {}

  std::shared_ptr<State> state_;
  WakeFd wake_;
  std::atomic<bool> open_{true};  // cleared once by close()
  // Guarded by the watcher's mutex:
  bool armed_ = false;
  Frame frame_ = 0;
  std::uint64_t interrupts_seen_ = 0;
};

}  // namespace audioring
