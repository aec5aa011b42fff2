// Forged and truncated shared ring files: SharedRing::attach() must turn
// every malformed file into a clean SharedRingError (invalid) that names the
// shared name, and never crash or read outside what it mapped; a file it
// accepts must be consistent (checked here independently) and readable to
// its last mapped byte. Runs under ASan and UBSan too.
//
// A real producer makes a valid file, which is copied; each case then sets
// one header field to an interesting value (0, 1, all ones, extremes, page
// sizes, off by one, doubled, random), flips random bytes of the header,
// truncates or extends the file, changes the geometry consistently (a larger
// ring, another format of the same frame size, a two-page header: must be
// accepted), or does several of these at once. A single change to a field
// that fixes the geometry or identity must be rejected; a single change to a
// field attach() does not judge (the rate, the counters) must be accepted.
//
// Usage: test_shared_header_fuzz (env AUDIORING_SEED, AUDIORING_FUZZ_SECONDS
// = seconds, default 0.6, at least 3000 cases).
#include "check.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audioring/capture.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/shared_ring.hpp"

namespace {

using audioring::FrameRing;
using audioring::RingControl;
using audioring::SampleFormat;
using audioring::SharedHeader;
using audioring::SharedRing;
using audioring::SharedRingError;
using audioring::SharedRingSpec;
using audioring::SharedState;
using Reason = SharedRingError::Reason;
using Frame = FrameRing::Frame;
using Clock = FrameRing::Clock;

volatile unsigned sink;  // keeps the reads of accepted files

// What a single change to a field must do.
enum class Expect { reject, accept, either };

struct Field {
  const char* name;
  std::size_t offset;
  std::size_t size;  // 4 or 8
  Expect single;     // after one change to a different value
};

constexpr std::size_t kControl = offsetof(SharedHeader, control);
constexpr std::size_t kRecording = offsetof(SharedHeader, recording);

const Field kFields[] = {
    {"magic", offsetof(SharedHeader, magic), 8, Expect::reject},
    {"version", offsetof(SharedHeader, version), 4, Expect::reject},
    {"channels", offsetof(SharedHeader, channels), 4, Expect::reject},
    {"header_bytes", offsetof(SharedHeader, header_bytes), 8, Expect::reject},
    {"frame_bytes", offsetof(SharedHeader, frame_bytes), 8, Expect::reject},
    {"format", offsetof(SharedHeader, format), 4, Expect::reject},  // int16: no other format has its size
    {"sampling_rate", offsetof(SharedHeader, sampling_rate), 4, Expect::accept},
    {"capacity", offsetof(SharedHeader, capacity), 8, Expect::reject},
    {"data_offset", offsetof(SharedHeader, data_offset), 8, Expect::reject},
    {"data_bytes", offsetof(SharedHeader, data_bytes), 8, Expect::reject},
    {"producer_pid", offsetof(SharedHeader, producer_pid), 8, Expect::either},  // any pid > 0 is fine
    {"producer_uid", offsetof(SharedHeader, producer_uid), 4, Expect::reject},
    {"state", offsetof(SharedHeader, state), 4, Expect::either},
    {"first_frame", offsetof(SharedHeader, first_frame), 8, Expect::either},
    {"state_changes", offsetof(SharedHeader, state_changes), 8, Expect::accept},
    {"intent", kControl + offsetof(RingControl, intent), 8, Expect::either},
    {"written", kControl + offsetof(RingControl, written), 8, Expect::either},
    {"doorbell", kControl + offsetof(RingControl, doorbell), 4, Expect::accept},
    {"published", kRecording + offsetof(audioring::RecordingCounters, published), 4, Expect::either},
    {"converting", kRecording + offsetof(audioring::RecordingCounters, converting), 4, Expect::either},
    {"input_rate", kRecording + offsetof(audioring::RecordingCounters, input_rate), 8, Expect::accept},
    {"capture.frames", kRecording + offsetof(audioring::RecordingCounters, capture) + 8, 8, Expect::accept},
    {"capture.anchor_time", kRecording + offsetof(audioring::RecordingCounters, capture) + 56, 8, Expect::accept},
    {"converter.delay", kRecording + offsetof(audioring::RecordingCounters, converter) + 32, 8, Expect::accept},
};

std::uint64_t get(const std::vector<std::byte>& image, const Field& field) {
  std::uint64_t value = 0;
  std::memcpy(&value, image.data() + field.offset, field.size);
  return value;
}

void put(std::vector<std::byte>& image, const Field& field, std::uint64_t value) {
  std::memcpy(image.data() + field.offset, &value, field.size);
}

const Field& field_named(const char* name) {
  for (const Field& field : kFields) {
    if (std::strcmp(field.name, name) == 0) return field;
  }
  audioring_test::fail(__FILE__, __LINE__, std::string("no field ") + name);
}

struct Fuzz {
  std::mt19937_64 rng;
  std::size_t page = audioring::RingMemory::page_size();
  std::vector<std::byte> valid;  // a real producer's file
  std::string prefix = "hfuzz-" + std::to_string(getpid()) + "-";
  // Outcomes.
  std::uint64_t cases = 0, accepted = 0, rejected = 0;
  std::uint64_t accepted_geometry = 0;           // consistent geometry changes, all accepted
  std::uint64_t rejected_field[sizeof kFields / sizeof kFields[0]] = {};
  std::uint64_t rejected_size = 0;

  std::uint64_t interesting(const Field& field, std::uint64_t original) {
    const std::uint64_t ones = field.size == 8 ? ~std::uint64_t{0} : 0xFFFFFFFFu;
    const std::uint64_t top = field.size == 8 ? std::uint64_t{1} << 63 : std::uint64_t{1} << 31;
    const std::uint64_t values[] = {0,         1,        2,
                                    ones,      top,      top - 1,
                                    page,      page - 1, page + 1,
                                    original + 1, original - 1, original * 2,
                                    original / 2, std::uint64_t{1} << 32, std::uint64_t{1} << 62,
                                    (std::uint64_t{1} << 62) + 1, rng(),  rng() % 100000};
    return values[rng() % (sizeof values / sizeof values[0])] & ones;
  }

  // Writes `image`, cut or zero-extended to `size` bytes, as shared name `name`.
  void forge(const std::string& name, const std::vector<std::byte>& image, std::size_t size) {
    const std::string path = "/audioring-" + std::to_string(geteuid()) + "-" + name;
    shm_unlink(path.c_str());
    const int fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK_MSG(fd >= 0, "shm_open %s: %s", path.c_str(), std::strerror(errno));
    CHECK(fchmod(fd, 0600) == 0);
    CHECK(ftruncate(fd, static_cast<off_t>(size)) == 0);
    const std::size_t bytes = image.size() < size ? image.size() : size;
    CHECK(pwrite(fd, image.data(), bytes, 0) == static_cast<ssize_t>(bytes));
    close(fd);
  }

  // Attaches; checks the outcome. Returns whether it was accepted.
  bool attach(const std::string& name, std::size_t size, Expect expect, const char* what) {
    ++cases;
    std::shared_ptr<SharedRing> shared;
    try {
      shared = SharedRing::attach(name);
    } catch (const SharedRingError& error) {
      CHECK_MSG(error.reason() == Reason::invalid, "%s: reason %d: %s", what, static_cast<int>(error.reason()),
                error.what());
      CHECK_MSG(std::strstr(error.what(), name.c_str()) != nullptr, "%s: message does not name it: %s", what,
                error.what());
      CHECK_MSG(expect != Expect::accept, "%s: rejected: %s", what, error.what());
      ++rejected;
      return false;
    }
    CHECK_MSG(expect != Expect::reject, "%s: accepted", what);
    ++accepted;
    // Consistent: the mapped header and frames are exactly the file.
    const FrameRing ring(shared);
    const auto* header = reinterpret_cast<const std::byte*>(&shared->header());
    const auto header_bytes = static_cast<std::size_t>(shared->data() - header);
    const std::size_t frame_bytes = shared->channels() * audioring::format_info(shared->format()).bytes;
    const std::size_t data_bytes = static_cast<std::size_t>(shared->capacity()) * frame_bytes;
    CHECK(ring.frame_bytes() == frame_bytes && shared->channels() >= 1 && shared->channels() <= 1024);
    CHECK(header_bytes % page == 0 && header_bytes >= sizeof(SharedHeader) && data_bytes % page == 0);
    CHECK_MSG(header_bytes + data_bytes == size, "%s: accepted %zu + %zu bytes of a %zu-byte file", what,
              header_bytes, data_bytes, size);
    CHECK(shared->producer_pid() > 0);
    // Readable to the last mapped byte (a mapping past the file's end would fault).
    unsigned sum = 0;
    for (std::size_t i = 0; i < header_bytes; ++i) sum += static_cast<unsigned>(header[i]);
    for (std::size_t i = 0; i < 2 * data_bytes; ++i) sum += static_cast<unsigned>(shared->data()[i]);
    std::vector<std::byte> out(data_bytes);
    const Frame written = ring.written();
    (void)ring.copy(written - ring.capacity(), ring.capacity(), out.data());
    (void)ring.intact(written);
    sink = sum;
    return true;
  }

  // One random case on shared name `name`.
  void one(const std::string& name) {
    std::vector<std::byte> image = valid;
    std::size_t size = image.size();
    Expect expect = Expect::either;
    char what[160];
    const std::uint64_t kind = rng() % 12;
    if (kind < 6) {  // one field
      const std::size_t index = static_cast<std::size_t>(rng() % (sizeof kFields / sizeof kFields[0]));
      const Field& field = kFields[index];
      const std::uint64_t before = get(image, field);
      const std::uint64_t after = interesting(field, before);
      put(image, field, after);
      if (after != before) expect = field.single;
      std::snprintf(what, sizeof what, "%s %#llx -> %#llx", field.name, static_cast<unsigned long long>(before),
                    static_cast<unsigned long long>(after));
      forge(name, image, size);
      if (!attach(name, size, expect, what)) ++rejected_field[index];
      return;
    }
    if (kind < 8) {  // the file's size alone
      const std::size_t sizes[] = {0,        1,        11,        page - 1,         page,
                                   page + 1, size - 1, size + 1,  size + page,      size - page,
                                   2 * size, static_cast<std::size_t>(rng() % (2 * size))};
      const std::size_t resized = sizes[rng() % (sizeof sizes / sizeof sizes[0])];
      std::snprintf(what, sizeof what, "file of %zu bytes instead of %zu", resized, size);
      forge(name, image, resized);
      if (!attach(name, resized, resized == size ? Expect::accept : Expect::reject, what)) ++rejected_size;
      return;
    }
    if (kind < 9) {  // a consistent other geometry: accepted
      geometry(image, size, what, sizeof what);
      forge(name, image, size);
      CHECK(attach(name, size, Expect::accept, what));
      ++accepted_geometry;
      return;
    }
    // Several changes at once: fields, byte flips, a size.
    std::snprintf(what, sizeof what, "several changes");
    if (rng() % 2 == 0) geometry(image, size, what, sizeof what);
    for (int n = 1 + static_cast<int>(rng() % 4); n > 0; --n) {
      const Field& field = kFields[rng() % (sizeof kFields / sizeof kFields[0])];
      put(image, field, interesting(field, get(image, field)));
    }
    for (int n = static_cast<int>(rng() % 5); n > 0; --n) {
      image[rng() % sizeof(SharedHeader)] ^= static_cast<std::byte>(1u << (rng() % 8));
    }
    if (rng() % 3 == 0) size = static_cast<std::size_t>(rng() % (size + 2 * page));
    forge(name, image, size);
    attach(name, size, Expect::either, what);
  }

  // Rewrites the image as another valid geometry.
  void geometry(std::vector<std::byte>& image, std::size_t& size, char* what, std::size_t what_size) {
    const std::uint64_t header_bytes = get(image, field_named("header_bytes"));
    const std::uint64_t capacity = get(image, field_named("capacity"));
    const std::uint64_t frame_bytes = get(image, field_named("frame_bytes"));
    switch (rng() % 3) {
      case 0: {  // a larger ring
        const std::uint64_t times = 2 + rng() % 3;
        put(image, field_named("capacity"), capacity * times);
        put(image, field_named("data_bytes"), capacity * times * frame_bytes);
        image.resize(static_cast<std::size_t>(header_bytes + capacity * times * frame_bytes));
        std::snprintf(what, what_size, "capacity x %llu", static_cast<unsigned long long>(times));
        break;
      }
      case 1: {  // another format of the same frame size (4 bytes)
        const std::pair<std::uint32_t, SampleFormat> formats[] = {
            {1, SampleFormat::float32}, {1, SampleFormat::int32}, {4, SampleFormat::uint8}, {4, SampleFormat::int8}};
        const auto& [channels, format] = formats[rng() % 4];
        put(image, field_named("channels"), channels);
        put(image, field_named("format"), static_cast<std::uint64_t>(format));
        std::snprintf(what, what_size, "%u x %s", channels, audioring::format_info(format).name);
        break;
      }
      default: {  // a two-page header
        std::vector<std::byte> moved(image.size() + page);
        std::memcpy(moved.data(), image.data(), static_cast<std::size_t>(header_bytes));
        std::memcpy(moved.data() + header_bytes + page, image.data() + header_bytes,
                    image.size() - static_cast<std::size_t>(header_bytes));
        image = std::move(moved);
        put(image, field_named("header_bytes"), header_bytes + page);
        put(image, field_named("data_offset"), header_bytes + page);
        std::snprintf(what, what_size, "a header of %llu bytes", static_cast<unsigned long long>(header_bytes + page));
        break;
      }
    }
    size = image.size();
  }
};

// A valid file, made by a real producer with counters and state set.
std::vector<std::byte> valid_file(const std::string& name) {
  SharedRingSpec spec;
  spec.channels = 2;
  spec.format = SampleFormat::int16;
  spec.capacity = FrameRing::rounded_capacity(4, 3000);
  spec.sampling_rate = 16000;
  const auto ring = std::make_shared<FrameRing>(SharedRing::create(name, spec));
  audioring::Capture capture(ring);
  ring->clear();  // a recording begins: first_frame moves past the zeros
  std::vector<std::int16_t> block(2 * 1000, 7);
  const audioring::PaTimeInfo time{1.5, 1.6, 0.0};
  capture.on_block(block.data(), 1000, &time, 0);
  capture.on_block(block.data(), 500, &time, audioring::kInputOverflow);
  SharedRing::of(ring->storage())->set_state(SharedState::recording);
  const std::string path = "/audioring-" + std::to_string(geteuid()) + "-" + name;
  const int fd = shm_open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct stat st {};
  CHECK(fstat(fd, &st) == 0);
  std::vector<std::byte> image(static_cast<std::size_t>(st.st_size));
  CHECK(pread(fd, image.data(), image.size(), 0) == static_cast<ssize_t>(image.size()));
  close(fd);
  return image;
}

}  // namespace

int main() {
  double seconds = 0.6;
  if (const char* env = std::getenv("AUDIORING_FUZZ_SECONDS"); env != nullptr && *env != '\0') {
    seconds = std::atof(env);
  }
  Fuzz fuzz;
  fuzz.rng.seed(audioring_test::seed("shared_header_fuzz", 7));
  fuzz.valid = valid_file(fuzz.prefix + "valid");
  const auto start = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  // The unchanged file is accepted.
  fuzz.forge(fuzz.prefix + "0", fuzz.valid, fuzz.valid.size());
  CHECK(fuzz.attach(fuzz.prefix + "0", fuzz.valid.size(), Expect::accept, "the valid file"));
  while (elapsed() < seconds || fuzz.cases < 3000) fuzz.one(fuzz.prefix + std::to_string(fuzz.cases % 4));
  for (int i = 0; i < 4; ++i) {
    shm_unlink(("/audioring-" + std::to_string(geteuid()) + "-" + fuzz.prefix + std::to_string(i)).c_str());
  }

  std::printf("shared_header_fuzz: %llu cases in %.2f s: %llu accepted (%llu other geometries), %llu rejected\n",
              static_cast<unsigned long long>(fuzz.cases), elapsed(), static_cast<unsigned long long>(fuzz.accepted),
              static_cast<unsigned long long>(fuzz.accepted_geometry), static_cast<unsigned long long>(fuzz.rejected));
  std::printf("  rejected single changes:");
  for (std::size_t i = 0; i < sizeof kFields / sizeof kFields[0]; ++i) {
    if (fuzz.rejected_field[i] > 0) {
      std::printf(" %s %llu,", kFields[i].name, static_cast<unsigned long long>(fuzz.rejected_field[i]));
    }
  }
  std::printf(" the file's size %llu\n", static_cast<unsigned long long>(fuzz.rejected_size));
  // Not vacuous: every field that fixes the geometry or identity was seen rejected.
  for (std::size_t i = 0; i < sizeof kFields / sizeof kFields[0]; ++i) {
    CHECK_MSG(kFields[i].single != Expect::reject || fuzz.rejected_field[i] > 0, "no rejected change to %s",
              kFields[i].name);
  }
  CHECK(fuzz.rejected_size > 0 && fuzz.accepted_geometry > 0 && fuzz.accepted > fuzz.accepted_geometry);
  std::printf("shared_header_fuzz: all tests passed\n");
  return 0;
}
