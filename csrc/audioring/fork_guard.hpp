// Fork detection: which process an object belongs to, in one load.
//
// fork() copies a process's memory but not its threads, and a ring's memory
// is MAP_SHARED: a forked child that wrote into an inherited ring would
// corrupt its parent's, while the ring's counters (ordinary heap memory) are
// the child's private copy and stop following the parent's writes. Objects
// that must not be used across a fork take a ForkGuard when they are made;
// forked() then tells, in a child, that the object is its parent's.
//
// How: a process-wide generation counter, bumped in every child by a
// pthread_atfork handler (registered when the first ForkGuard is made, so
// before any fork that could separate a guard from its process). Asking
// costs one relaxed load and a compare, cheap enough for the read path.
// Children made without fork handlers (vfork, posix_spawn) exec at once and
// never see the objects.
//
// Threading: any thread. The atfork handler only increments an atomic
// (async-signal-safe).
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace audioring {

// Bumped once in each forked child: differs from a guard's value in every
// process but the one that made the guard.
inline std::atomic<std::uint64_t> fork_generation{0};

class ForkGuard {
 public:
  ForkGuard() noexcept : generation_(current()) { register_handler(); }

  // Whether this process is a fork of the one that made the guard.
  bool forked() const noexcept { return generation_ != current(); }
  std::uint64_t generation() const noexcept { return generation_; }

  static std::uint64_t current() noexcept { return fork_generation.load(std::memory_order_relaxed); }

 private:
  static void on_fork_in_child() noexcept { fork_generation.fetch_add(1, std::memory_order_relaxed); }

  static void register_handler() noexcept {
#if defined(__unix__) || defined(__APPLE__)
    // A function-local static: registered exactly once, thread-safely. If
    // registration fails (ENOMEM), forks go undetected; nothing else breaks.
    [[maybe_unused]] static const int registered = pthread_atfork(nullptr, nullptr, &on_fork_in_child);
#endif
  }

  std::uint64_t generation_;
};

}  // namespace audioring
