// publish_probe: a tiny C library that benchmarks/cases/asyncio.py puts between
// PortAudio and audioring's native capture callback, to know when the
// callback that published each block into the ring ran.
//
// ar_probe_callback() has PaStreamCallback's shape: PortAudio calls it on its
// audio thread; it notes the time (CLOCK_MONOTONIC, the clock of Python's
// time.monotonic_ns(), read through the vDSO: no system call), calls the real
// callback (set by ar_probe_set_callback()), notes the time again and the
// frames delivered so far. A consumer that got the block ending at frame F
// looks up the first call whose frames reach F: when its callback was
// entered (the block is published a memcpy later) and when it returned.
// Nothing allocates or locks; the probe adds two clock reads to the callback.
//
// Threading: one audio thread calls ar_probe_callback(); read the entries
// (ar_probe_entry()) after the stream has stopped, or entries older than the
// newest ar_probe_calls() at any time.
#include <atomic>
#include <cstdint>
#include <ctime>

namespace {

using StreamCallback = int (*)(const void*, void*, unsigned long, const void*, unsigned long, void*);

constexpr std::uint64_t kEntries = 1u << 18;  // 23 minutes of 256-frame periods at 48 kHz

struct Entry {
  std::int64_t entered_ns;
  std::int64_t published_ns;
  std::int64_t frames_after;  // frames delivered by this call and all before it
};

std::atomic<StreamCallback> real{nullptr};
std::atomic<std::uint64_t> calls{0};
std::int64_t frames_total = 0;  // the audio thread's own
Entry entries[kEntries];

std::int64_t now_ns() noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace

extern "C" {

void ar_probe_set_callback(void* callback) { real.store(reinterpret_cast<StreamCallback>(callback)); }

// Forget every entry; call while no stream runs.
void ar_probe_reset() {
  calls.store(0);
  frames_total = 0;
}

int ar_probe_callback(const void* input, void* output, unsigned long frames, const void* time_info,
                      unsigned long status, void* user_data) {
  const std::int64_t entered = now_ns();
  const int result = real.load(std::memory_order_relaxed)(input, output, frames, time_info, status, user_data);
  const std::int64_t published = now_ns();
  frames_total += static_cast<std::int64_t>(frames);
  const std::uint64_t index = calls.load(std::memory_order_relaxed);
  entries[index % kEntries] = Entry{entered, published, frames_total};
  calls.store(index + 1, std::memory_order_release);
  return result;
}

unsigned long long ar_probe_calls() { return calls.load(std::memory_order_acquire); }

// Copies entry `index` (< ar_probe_calls(), and not older than kEntries calls).
void ar_probe_entry(unsigned long long index, long long* entered_ns, long long* published_ns,
                    long long* frames_after) {
  const Entry& e = entries[index % kEntries];
  *entered_ns = e.entered_ns;
  *published_ns = e.published_ns;
  *frames_after = e.frames_after;
}

}  // extern "C"
