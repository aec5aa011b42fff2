// Minimal test helpers for the plain C++ tests (no framework, in the manner of
// rigtorp/SPSCQueue's tests): a failed CHECK prints file:line and the
// condition, then ends the process with status 1, from any thread.
#pragma once

// The tests rely on the core's assert()s too, in every build type.
#ifdef NDEBUG
#undef NDEBUG
#endif

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace audioring_test {

[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  // _Exit: other threads may still be running; static destructors must not.
  std::_Exit(1);
}

// The seed for a test's random choices: $AUDIORING_SEED if set, else `fallback`.
// Always printed, so a failure can be replayed (thread timing aside).
inline std::uint64_t seed(const char* test, std::uint64_t fallback) {
  std::uint64_t value = fallback;
  if (const char* env = std::getenv("AUDIORING_SEED"); env != nullptr && *env != '\0') {
    value = std::strtoull(env, nullptr, 0);
  }
  std::printf("%s: seed %" PRIu64 " (set AUDIORING_SEED to change)\n", test, value);
  std::fflush(stdout);
  return value;
}

}  // namespace audioring_test

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) ::audioring_test::fail(__FILE__, __LINE__, "CHECK(" #cond ")");        \
  } while (0)

// CHECK with a printf-style explanation appended.
#define CHECK_MSG(cond, ...)                                                           \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      char check_msg_buffer_[512];                                                     \
      std::snprintf(check_msg_buffer_, sizeof check_msg_buffer_, __VA_ARGS__);         \
      ::audioring_test::fail(__FILE__, __LINE__,                                       \
                             std::string("CHECK(" #cond "): ") + check_msg_buffer_);   \
    }                                                                                  \
  } while (0)

// Checks that `expr` throws exactly an `type` (or a subclass of it).
#define CHECK_THROWS(expr, type)                                                        \
  do {                                                                                  \
    bool check_threw_ = false;                                                          \
    try {                                                                               \
      (void)(expr);                                                                     \
    } catch (const type&) {                                                             \
      check_threw_ = true;                                                              \
    } catch (const std::exception& check_error_) {                                      \
      ::audioring_test::fail(__FILE__, __LINE__, std::string(#expr " threw another exception: ") + \
                                                     check_error_.what());              \
    }                                                                                   \
    if (!check_threw_) ::audioring_test::fail(__FILE__, __LINE__, #expr " did not throw " #type); \
  } while (0)
