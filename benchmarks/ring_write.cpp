// ring_write: throughput of the native producer path, FrameRing::write(), with
// no Python involved, next to a plain std::memcpy of the same bytes.
//
// For each frame size (channels x float32) and block size, three writers run
// in the same process, interleaved repetition by repetition so that clock and
// cache drift hit them alike:
//   memcpy      std::memcpy of each block into an ordinary buffer of
//               capacity x frame_bytes (the ring's size), cycling through it
//               exactly as the ring does (a block that crosses the end is
//               split in two);
//   ring_memfd  FrameRing::write() on mirrored memory (one copy per block);
//   ring_plain  FrameRing::write() on plain memory (every byte stored twice).
// The source is one block-sized buffer reused for every write, as an audio
// callback's input buffer is. The ring holds --seconds of audio at --rate
// (default 10 s at 48 kHz: 3.8 MB stereo, 15 MB for 8 channels), a realistic
// working set for a recorder that keeps the last few seconds. Each
// repetition writes --passes times the ring's capacity.
//
// Prints one JSON object to stdout. Throughput counts payload bytes (frames x
// frame_bytes) per second, so the plain ring's second copy is overhead, not
// throughput. Absolute numbers vary between machines; compare the columns.
//
// Readers (--readers 0,1,3): each ring writer also runs with that many reader
// threads spinning on the ring's counters as a reader checking its window
// does (written(), then intact() of a window ending there; no frame data is
// read), started before and stopped after each of its repetitions, so every
// repetition of every reader count takes its turn with the others. Each
// repetition is timed by the wall clock and by the writer thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID): when readers outnumber the free cores, the
// writer is preempted and only its CPU time is its cost. --pin puts the writer
// on the first CPU it may use and the readers on the others, round robin, so
// that readers cost the writer only through memory (benchmarks/cases/share.py
// uses it). The memcpy baseline never has readers.
//
// Usage: ring_write [--quick] [--reps N] [--passes N] [--seconds S] [--rate HZ]
//                   [--channels 2,8] [--blocks 64,256,...] [--methods memcpy,ring_memfd,ring_plain]
//                   [--readers 0,1,3] [--pin]
// (the filters let a profiler run one configuration for longer).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#include "audioring/frame_ring.hpp"

namespace {

using audioring::FrameRing;
using audioring::MemoryRequest;
using Frame = FrameRing::Frame;
using Clock = std::chrono::steady_clock;

// Tells the compiler that memory reachable from `p` is read and written here,
// so stores into it can be neither dropped nor sunk out of the timed loop
// (the trick of Google Benchmark's DoNotOptimize/ClobberMemory).
inline void escape(const void* p) noexcept { asm volatile("" : : "g"(p) : "memory"); }

struct Options {
  int reps = 61;
  int passes = 4;
  double seconds = 10.0;
  int rate = 48000;
  std::vector<int> channels{2, 8};
  std::vector<Frame> blocks{64, 256, 1024, 4096, 16384, 65536};
  std::vector<std::string> methods{"memcpy", "ring_memfd", "ring_plain"};
  std::vector<int> readers{0};
  bool pin = false;
};

template <class T>
std::vector<T> parse_list(const std::string& text) {
  std::vector<T> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if constexpr (std::is_same_v<T, std::string>) {
      out.push_back(item);
    } else {
      out.push_back(static_cast<T>(std::stoll(item)));
    }
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--quick") {
      o.reps = 11;
      o.passes = 2;
    } else if (arg == "--reps") {
      o.reps = std::stoi(value());
    } else if (arg == "--passes") {
      o.passes = std::stoi(value());
    } else if (arg == "--seconds") {
      o.seconds = std::stod(value());
    } else if (arg == "--rate") {
      o.rate = std::stoi(value());
    } else if (arg == "--channels") {
      o.channels = parse_list<int>(value());
    } else if (arg == "--blocks") {
      o.blocks = parse_list<Frame>(value());
    } else if (arg == "--methods") {
      o.methods = parse_list<std::string>(value());
    } else if (arg == "--readers") {
      o.readers = parse_list<int>(value());
    } else if (arg == "--pin") {
      o.pin = true;
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'");
    }
  }
  if (o.reps < 1 || o.passes < 1 || o.seconds <= 0 || o.rate < 1) {
    throw std::invalid_argument("--reps, --passes, --seconds and --rate must be positive");
  }
  if (o.readers.empty() || *std::min_element(o.readers.begin(), o.readers.end()) < 0 ||
      *std::max_element(o.readers.begin(), o.readers.end()) > 64) {
    throw std::invalid_argument("--readers must list counts in 0..64");
  }
  return o;
}

// An ordinary page-aligned, prefaulted buffer: the memcpy baseline's target,
// allocated the way RingMemory allocates plain memory.
class Buffer {
 public:
  explicit Buffer(std::size_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<std::byte*>(p);
    std::memset(data_, 0, bytes);  // prefault, like the ring
  }
  ~Buffer() { munmap(data_, bytes_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::byte* data() const noexcept { return data_; }

 private:
  std::byte* data_;
  std::size_t bytes_;
};

// The baseline writer: the ring's cycling, none of its bookkeeping.
struct MemcpyWriter {
  Buffer buffer;
  std::size_t frame_bytes;
  Frame capacity;
  Frame position = 0;  // in 0 .. capacity

  void write(const std::byte* source, Frame count) noexcept {
    const Frame head = std::min(count, capacity - position);
    std::memcpy(buffer.data() + static_cast<std::size_t>(position) * frame_bytes, source,
                static_cast<std::size_t>(head) * frame_bytes);
    if (count > head) {
      std::memcpy(buffer.data(), source + static_cast<std::size_t>(head) * frame_bytes,
                  static_cast<std::size_t>(count - head) * frame_bytes);
    }
    position += count;
    if (position >= capacity) position -= capacity;
    escape(buffer.data());
  }
};

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double at = q * static_cast<double>(values.size() - 1);
  const auto low = static_cast<std::size_t>(std::floor(at));
  const std::size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (at - static_cast<double>(low));
}

struct Series {
  std::string method;
  std::string memory;
  int readers;                      // reader threads spinning meanwhile
  std::vector<double> seconds;      // per repetition, wall clock
  std::vector<double> cpu_seconds;  // per repetition, the writer thread's CPU clock
  double reader_checks = 0;         // checks the readers made over all repetitions
};

struct Timing {
  double wall;
  double cpu;
};

double thread_cpu_seconds() noexcept {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Times `blocks` writes of `block` frames from `source`: wall and this thread's CPU seconds.
template <class Write>
Timing time_run(Write&& write, const std::byte* source, Frame block, std::int64_t blocks) {
  const double cpu_start = thread_cpu_seconds();
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < blocks; ++i) write(source, block);
  const auto stop = Clock::now();
  const double cpu_stop = thread_cpu_seconds();
  return {std::chrono::duration<double>(stop - start).count(), cpu_stop - cpu_start};
}

// The CPUs this process may run on, in order.
std::vector<std::size_t> usable_cpus() {
  std::vector<std::size_t> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

bool pin_thread(pthread_t thread, std::size_t cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(thread, sizeof set, &set) == 0;
}

// Reader threads spinning on a ring's counters for as long as they live, as
// readers checking their windows do: written(), then intact() of the window of
// `window` frames that ends there. They touch no frame data. The constructor
// returns once every thread spins; checks() is how many checks they have made
// so far (each publishes its count every 256 checks, on a line of its own).
class SpinningReaders {
 public:
  SpinningReaders(const FrameRing& ring, int count, const std::vector<std::size_t>& cpus, Frame window)
      : slots_(static_cast<std::size_t>(count)) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      threads_.emplace_back([this, &ring, window, i] {
        std::uint64_t checks = 0, intact = 0;
        running_.fetch_add(1, std::memory_order_relaxed);
        while (!stop_.load(std::memory_order_relaxed)) {
          const Frame end = ring.written();
          intact += ring.intact(end - window) ? 1U : 0U;
          if ((++checks & 255U) == 0) slots_[i].checks.store(checks, std::memory_order_relaxed);
        }
        sink_.fetch_add(intact, std::memory_order_relaxed);  // keeps the checks from being optimized away
      });
      if (!cpus.empty()) pin_thread(threads_.back().native_handle(), cpus[i % cpus.size()]);
    }
    while (running_.load(std::memory_order_relaxed) < count) std::this_thread::yield();
  }
  ~SpinningReaders() { stop(); }
  SpinningReaders(const SpinningReaders&) = delete;
  SpinningReaders& operator=(const SpinningReaders&) = delete;

  double checks() const noexcept {
    double total = 0;
    for (const Slot& slot : slots_) total += static_cast<double>(slot.checks.load(std::memory_order_relaxed));
    return total;
  }

  void stop() {
    stop_.store(true, std::memory_order_relaxed);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> checks{0};
  };
  alignas(64) std::atomic<bool> stop_{false};  // its own line: polled by every reader
  alignas(64) std::atomic<int> running_{0};
  std::atomic<std::uint64_t> sink_{0};
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
};

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "ring_write: %s\n", error.what());
    return 2;
  }

  std::printf("{\n  \"program\": \"ring_write\",\n");
  std::printf("  \"compiler\": \"%s\",\n", __VERSION__);
#if defined(__OPTIMIZE__)
  std::printf("  \"optimized\": true,\n");
#else
  std::printf("  \"optimized\": false,\n");
#endif
#if defined(NDEBUG)
  std::printf("  \"asserts\": false,\n");
#else
  std::printf("  \"asserts\": true,\n");
#endif
  std::printf("  \"page_size\": %zu,\n", audioring::RingMemory::page_size());
  std::printf("  \"rate\": %d,\n  \"ring_seconds\": %g,\n  \"reps\": %d,\n  \"passes\": %d,\n", options.rate,
              options.seconds, options.reps, options.passes);

  // --pin: the writer (this thread) on the first usable CPU, readers round robin on the others.
  const std::vector<std::size_t> cpus = usable_cpus();
  std::vector<std::size_t> reader_cpus;
  bool pinned = false;
  if (options.pin && cpus.size() >= 2 && pin_thread(pthread_self(), cpus.front())) {
    pinned = true;
    reader_cpus.assign(cpus.begin() + 1, cpus.end());
  }
  std::printf("  \"usable_cpus\": %zu,\n  \"pinned\": %s,\n  \"writer_cpu\": %ld,\n", cpus.size(),
              pinned ? "true" : "false", pinned ? static_cast<long>(cpus.front()) : -1L);
  std::printf("  \"results\": [");

  std::uint64_t checksum = 0;
  bool first_result = true;
  bool all_verified = true;
  for (const int channels : options.channels) {
    const std::size_t frame_bytes = static_cast<std::size_t>(channels) * sizeof(float);
    const auto wanted = static_cast<Frame>(std::llround(options.seconds * options.rate));
    const Frame capacity = FrameRing::rounded_capacity(frame_bytes, wanted);
    const std::size_t ring_bytes = static_cast<std::size_t>(capacity) * frame_bytes;

    // Writers live for all block sizes of this frame size: made once, like a recorder's ring.
    std::unique_ptr<MemcpyWriter> baseline;
    std::unique_ptr<FrameRing> mirrored, plain;
    std::string mirrored_error;
    if (contains(options.methods, "memcpy")) baseline.reset(new MemcpyWriter{Buffer(ring_bytes), frame_bytes, capacity});
    if (contains(options.methods, "ring_memfd")) {
      try {
        mirrored = std::make_unique<FrameRing>(frame_bytes, capacity, MemoryRequest::memfd);
      } catch (const std::exception& error) {
        mirrored_error = error.what();
      }
    }
    if (contains(options.methods, "ring_plain")) plain = std::make_unique<FrameRing>(frame_bytes, capacity, MemoryRequest::plain);

    for (const Frame block : options.blocks) {
      if (block < 1 || block > capacity) continue;
      // A source that is not all zeros, different per channel count and block.
      std::vector<float> samples(static_cast<std::size_t>(block) * static_cast<std::size_t>(channels));
      for (std::size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<float>(i % 977) * 0.001f - 0.4f;
      const auto* source = reinterpret_cast<const std::byte*>(samples.data());

      const std::int64_t blocks_per_rep =
          std::max<std::int64_t>(16, (static_cast<std::int64_t>(options.passes) * capacity + block - 1) / block);
      std::vector<Series> series;
      auto add = [&](const char* method, const char* memory, int readers) {
        series.push_back(Series{method, memory, readers, {}, {}, 0});
      };
      if (baseline) add("memcpy", "plain", 0);  // first: the ratios' reference
      for (const int readers : options.readers) {
        if (mirrored) add("ring_memfd", audioring::to_string(mirrored->memory_kind()), readers);
        if (plain) add("ring_plain", audioring::to_string(plain->memory_kind()), readers);
      }

      auto run = [&](Series& s) {
        if (s.method == "memcpy") {
          return time_run([&](const std::byte* from, Frame n) { baseline->write(from, n); }, source, block,
                          blocks_per_rep);
        }
        FrameRing& ring = s.method == "ring_memfd" ? *mirrored : *plain;
        std::unique_ptr<SpinningReaders> readers;
        if (s.readers > 0) readers = std::make_unique<SpinningReaders>(ring, s.readers, reader_cpus, block);
        const double checks_before = readers ? readers->checks() : 0;
        const Timing t =
            time_run([&](const std::byte* from, Frame n) { ring.write(from, n); }, source, block, blocks_per_rep);
        if (readers) s.reader_checks += readers->checks() - checks_before;  // while the writer was timed
        return t;
      };
      // One untimed repetition each: warms caches and TLBs, settles the clock.
      for (Series& s : series) run(s);
      for (Series& s : series) s.reader_checks = 0;
      // Rotate the order every repetition: whichever runs first finds the
      // cache full of the previous writer's lines, so no writer always does.
      for (int rep = 0; rep < options.reps; ++rep) {
        for (std::size_t k = 0; k < series.size(); ++k) {
          Series& s = series[(k + static_cast<std::size_t>(rep)) % series.size()];
          const Timing t = run(s);
          s.seconds.push_back(t.wall);
          s.cpu_seconds.push_back(t.cpu);
        }
      }

      // Check that the copies happened: the newest block must equal the source
      // (the ring's in both halves of plain memory), and fold the baseline's
      // bytes into a checksum that is printed.
      bool verified = true;
      const std::size_t block_bytes = static_cast<std::size_t>(block) * frame_bytes;
      for (FrameRing* ring : {mirrored.get(), plain.get()}) {
        if (ring == nullptr) continue;
        const Frame newest = ring->written() - block;
        verified = verified && std::memcmp(ring->frame_address(newest), source, block_bytes) == 0;
      }
      if (baseline) {
        const Frame newest = (baseline->position - block % capacity + capacity) % capacity;
        for (Frame f = 0; f < block; ++f) {
          const Frame slot = (newest + f) % capacity;
          std::uint32_t word;
          std::memcpy(&word, baseline->buffer.data() + static_cast<std::size_t>(slot) * frame_bytes, sizeof word);
          checksum = checksum * 1099511628211ULL + word;
          std::uint32_t expected;
          std::memcpy(&expected, source + static_cast<std::size_t>(f) * frame_bytes, sizeof expected);
          verified = verified && word == expected;
        }
      }
      all_verified = all_verified && verified;

      for (const Series& s : series) {
        const double payload = static_cast<double>(blocks_per_rep) * static_cast<double>(block_bytes);
        std::vector<double> gbps, ns_per_write, cpu_ns_per_write, vs_memcpy;
        double wall_total = 0;
        for (std::size_t rep = 0; rep < s.seconds.size(); ++rep) {
          const double t = s.seconds[rep];
          wall_total += t;
          gbps.push_back(payload / t / 1e9);
          ns_per_write.push_back(t * 1e9 / static_cast<double>(blocks_per_rep));
          cpu_ns_per_write.push_back(s.cpu_seconds[rep] * 1e9 / static_cast<double>(blocks_per_rep));
          // Against the memcpy of the same repetition, which ran moments
          // before or after: steadier than a ratio of medians when other
          // processes load the machine unevenly.
          if (baseline) vs_memcpy.push_back(series.front().seconds[rep] / t);
        }
        const double ratio = vs_memcpy.empty() ? std::nan("") : quantile(vs_memcpy, 0.5);
        std::printf(
            "%s\n    {\"channels\": %d, \"frame_bytes\": %zu, \"block_frames\": %lld, \"block_bytes\": %zu, "
            "\"capacity_frames\": %lld, \"ring_bytes\": %zu, \"method\": \"%s\", \"memory\": \"%s\", "
            "\"writes_per_rep\": %lld, \"gbps_median\": %.4f, \"gbps_p10\": %.4f, \"gbps_p90\": %.4f, "
            "\"ns_per_write_median\": %.2f, \"ns_per_write_p90\": %.2f, \"vs_memcpy_median\": %s, \"verified\": %s, "
            "\"readers\": %d, \"cpu_ns_per_write_median\": %.2f, \"cpu_ns_per_write_p90\": %.2f, "
            "\"cpu_ns_per_write_p99\": %.2f, \"ns_per_write_p99\": %.2f, \"reader_checks_per_s\": %.0f}",
            first_result ? "" : ",", channels, frame_bytes, static_cast<long long>(block), block_bytes,
            static_cast<long long>(capacity), ring_bytes, s.method.c_str(), s.memory.c_str(),
            static_cast<long long>(blocks_per_rep), quantile(gbps, 0.5), quantile(gbps, 0.1), quantile(gbps, 0.9),
            quantile(ns_per_write, 0.5), quantile(ns_per_write, 0.9),
            std::isnan(ratio) ? "null" : std::to_string(ratio).c_str(), verified ? "true" : "false", s.readers,
            quantile(cpu_ns_per_write, 0.5), quantile(cpu_ns_per_write, 0.9), quantile(cpu_ns_per_write, 0.99),
            quantile(ns_per_write, 0.99), wall_total > 0 ? s.reader_checks / wall_total : 0.0);
        first_result = false;
      }
      std::fflush(stdout);
    }
    if (!mirrored_error.empty()) {
      std::fprintf(stderr, "ring_write: no mirrored memory for %d channels: %s\n", channels, mirrored_error.c_str());
    }
  }
  std::printf("\n  ],\n  \"verified\": %s,\n  \"checksum\": %llu\n}\n", all_verified ? "true" : "false",
              static_cast<unsigned long long>(checksum));
  return all_verified ? 0 : 1;
}
