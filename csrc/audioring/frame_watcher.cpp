#include "audioring/frame_watcher.hpp"

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "audioring/platform.hpp"

#if defined(AUDIORING_LINUX)
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>
#elif defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

namespace audioring {

// ---- WakeFd -------------------------------------------------------------------

#if defined(AUDIORING_LINUX)

WakeFd::WakeFd() {
  read_fd_ = write_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (read_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

void WakeFd::notify() noexcept {
  const std::uint64_t one = 1;
  // Fails only with EAGAIN when the counter would overflow: it is readable then.
  if (::write(write_fd_, &one, sizeof one) < 0) return;
}

void WakeFd::clear() noexcept {
  std::uint64_t count = 0;
  if (::read(read_fd_, &count, sizeof count) < 0) return;  // EAGAIN: nothing to clear
}

#elif defined(__unix__) || defined(__APPLE__)

WakeFd::WakeFd() {
  int ends[2];
  if (::pipe(ends) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  for (const int end : ends) {
    ::fcntl(end, F_SETFL, ::fcntl(end, F_GETFL) | O_NONBLOCK);
    ::fcntl(end, F_SETFD, FD_CLOEXEC);
  }
  read_fd_ = ends[0];
  write_fd_ = ends[1];
}

void WakeFd::notify() noexcept {
  const char byte = 1;
  if (::write(write_fd_, &byte, 1) < 0) return;  // EAGAIN: the pipe is full, so readable
}

void WakeFd::clear() noexcept {
  char bytes[64];
  while (::read(read_fd_, bytes, sizeof bytes) > 0) {
  }
}

#else

WakeFd::WakeFd() {
  throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                          "no eventfd or pipe to wake an event loop on this system");
}
void WakeFd::notify() noexcept {}
void WakeFd::clear() noexcept {}

#endif

void WakeFd::close() noexcept {
#if defined(__unix__) || defined(__APPLE__)
  if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);
  if (read_fd_ >= 0) ::close(read_fd_);
#endif
  read_fd_ = write_fd_ = -1;
}

// ---- the shared state -------------------------------------------------------------

struct FrameWatcher::State {
  explicit State(std::shared_ptr<const FrameRing> watched) : ring(std::move(watched)) {}

  void run() noexcept;

  const std::shared_ptr<const FrameRing> ring;
  std::mutex mutex;
  std::condition_variable idle;  // the thread sleeps here while no bell is armed
  // Guarded by mutex:
  std::vector<Bell*> bells;      // every open bell
  bool closing = false;
  bool in_ring_wait = false;     // the thread sleeps on the ring (only a publish or interrupt() wakes it)
  std::unique_ptr<std::thread> thread;  // started by the first arm() that waits; see the deleter
  // Set with `closing`, and readable without the mutex (Bell::watcher_closed()).
  std::atomic<bool> closed{false};
  const ForkGuard owner;
};

void FrameWatcher::State::run() noexcept {
#if defined(AUDIORING_LINUX)
  pthread_setname_np(pthread_self(), "audioring-watch");  // how tests and profilers tell it (15 chars at most)
  // SCHED_BATCH: woken by the producer's doorbell, this thread must not
  // preempt the (often not realtime) audio thread in the middle of its
  // callback; it runs when that returns, or at once on another idle core.
  const sched_param batch{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch);
#endif
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    if (closing) return;
    // Read before looking at the bells: a publish or interrupt() after these
    // reads ends the wait below at once (so nothing between is missed).
    const Frame written = ring->written();
    const std::uint64_t interrupts = ring->interrupts();
    bool waiting = false;
    for (Bell* bell : bells) {
      if (!bell->armed_) continue;
      if (written >= bell->frame_ || interrupts != bell->interrupts_seen_) {
        bell->armed_ = false;
        bell->wake_.notify();
      } else {
        waiting = true;
      }
    }
    if (!waiting) {
      idle.wait(lock);  // arm() and close() notify; a spurious return just looks again
      continue;
    }
    in_ring_wait = true;
    lock.unlock();
    ring->wait_for_frame(written + 1, FrameRing::Clock::time_point::max(), interrupts);
    lock.lock();
    in_ring_wait = false;
  }
}

// ---- FrameWatcher ----------------------------------------------------------------

// The deleter: in a forked child the mutex and condition variable may have
// been held by the parent's thread at the fork, and that thread's handle is
// still "joinable": destroying any of them could hang or terminate, so the
// child leaves the state alone (a small, one-off leak).
FrameWatcher::FrameWatcher(std::shared_ptr<const FrameRing> ring)
    : state_(new State(std::move(ring)), [](State* state) {
        if (!state->owner.forked()) delete state;
      }) {
  if (!state_->ring) throw std::invalid_argument("FrameWatcher needs a ring");
}

std::shared_ptr<FrameWatcher::Bell> FrameWatcher::bell() {
  std::shared_ptr<Bell> made(new Bell(state_));  // the constructor is private to make_shared
  if (!state_->owner.forked()) {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    state_->bells.push_back(made.get());
  }
  return made;
}

void FrameWatcher::close() noexcept {
  State& state = *state_;
  if (state.owner.forked()) return;  // the thread is the parent's; see the constructor's deleter
  std::unique_ptr<std::thread> thread;
  bool interrupt = false;
  {
    const std::lock_guard<std::mutex> lock(state.mutex);
    state.closing = true;
    state.closed.store(true, std::memory_order_release);  // before the rings below
    for (Bell* each : state.bells) {
      each->armed_ = false;
      each->wake_.notify();  // every loop wakes and finds the watcher closed
    }
    state.idle.notify_all();
    interrupt = state.in_ring_wait;
    thread = std::move(state.thread);  // taken under the lock: a concurrent close() joins nothing twice
  }
  // Asleep on the ring, the thread wakes only for a publish or interrupt(),
  // and the producer may never publish again (see the top comment).
  if (interrupt) state.ring->interrupt();
  if (thread) thread->join();
}

bool FrameWatcher::closed() const noexcept {
  if (state_->owner.forked()) return true;
  const std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->closing;
}

bool FrameWatcher::running() const noexcept {
  if (state_->owner.forked()) return false;
  const std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->thread != nullptr;
}

bool FrameWatcher::forked() const noexcept { return state_->owner.forked(); }

const std::shared_ptr<const FrameRing>& FrameWatcher::ring() const noexcept { return state_->ring; }

// ---- Bell -----------------------------------------------------------------------

bool FrameWatcher::Bell::arm(Frame frame, std::uint64_t interrupts_seen) {
  State& state = *state_;
  if (state.owner.forked()) {
    throw std::logic_error("this FrameWatcher belongs to the process that made it, and this is a forked child");
  }
  const std::lock_guard<std::mutex> lock(state.mutex);
  if (!open_.load(std::memory_order_relaxed)) throw std::logic_error("the bell is closed");
  armed_ = false;
  if (state.closing || state.ring->written() >= frame || state.ring->interrupts() != interrupts_seen) {
    wake_.notify();
    return true;
  }
  armed_ = true;
  frame_ = frame;
  interrupts_seen_ = interrupts_seen;
  if (!state.thread) {
    try {
      // Joined by close() before the state can go: the raw pointer outlives the thread.
      State* watched = &state;
      state.thread = std::make_unique<std::thread>([watched] { watched->run(); });
    } catch (...) {  // std::system_error (no thread) or std::bad_alloc: nothing armed
      armed_ = false;
      throw;
    }
  }
  state.idle.notify_one();
  return false;
}

void FrameWatcher::Bell::disarm() noexcept {
  if (state_->owner.forked()) return;
  const std::lock_guard<std::mutex> lock(state_->mutex);
  armed_ = false;
}

void FrameWatcher::Bell::close() noexcept {
  if (!open_.exchange(false)) return;
  if (!state_->owner.forked()) {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    armed_ = false;
    auto& bells = state_->bells;
    bells.erase(std::remove(bells.begin(), bells.end(), this), bells.end());
  }
  wake_.close();
}

bool FrameWatcher::Bell::watcher_closed() const noexcept {
  if (state_->owner.forked()) return true;
  // Without the mutex: an event loop asks right after a ring, while the
  // watcher's thread may still hold it.
  return state_->closed.load(std::memory_order_acquire);
}

const std::shared_ptr<const FrameRing>& FrameWatcher::Bell::ring() const noexcept { return state_->ring; }

}  // namespace audioring
