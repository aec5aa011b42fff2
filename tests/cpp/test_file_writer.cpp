// Tests of FileWriter: a producer thread writes a ramp (each frame holds its
// number + 1; silence is 0) into a ring in random block sizes, with random
// pauses, while the writer thread drains it into files; under
// ThreadSanitizer this is the writer's concurrency test. Read back with
// libsndfile, every frame must be either the frame the producer wrote at that
// position or silence inside a listed gap, the gaps must add up to
// frames_lost(), and split parts must join into exactly the recording. Also:
// a restart (clear) ends the files without taking the zeros for audio, and
// a path that cannot be created throws FileError.
#include "check.hpp"

#include <sndfile.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "audioring/file_writer.hpp"
#include "audioring/frame_ring.hpp"

namespace {

using audioring::FileWriter;
using audioring::FileWriterConfig;
using audioring::FrameRing;
using audioring::SampleFormat;
using audioring::WriterEnd;
using Frame = FrameRing::Frame;

std::mt19937_64 rng;  // seeded in main()

std::string temp_dir() {
  char pattern[] = "/tmp/audioring-file-writer-XXXXXX";
  const char* made = mkdtemp(pattern);
  CHECK(made != nullptr);
  return made;
}

FileWriterConfig config_for(const std::string& path, int channels, Frame frames, std::int64_t split) {
  FileWriterConfig config;
  config.file.path = path;
  config.file.format = "wav";
  config.file.subtype = "PCM_32";
  config.file.channels = channels;
  config.file.rate = 48000;
  config.file.samples = SampleFormat::int32;
  config.file.start_time = 1.0e9;
  config.frames = frames;
  config.split_frames = split;
  config.part_prefix = path + "-";
  config.part_suffix = ".wav";
  return config;
}

std::vector<std::int32_t> read_file(const std::string& path, int channels) {
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  CHECK_MSG(file != nullptr, "%s: %s", path.c_str(), sf_strerror(nullptr));
  CHECK(info.channels == channels);
  std::vector<std::int32_t> samples(static_cast<std::size_t>(info.frames) * static_cast<std::size_t>(channels));
  CHECK(sf_readf_int(file, samples.data(), info.frames) == info.frames);
  sf_close(file);
  return samples;
}

// Producer: frames [0, total) of a ramp, value frame + 1 in every channel.
void produce(FrameRing& ring, Frame total, int channels, Frame max_block, bool pauses) {
  std::uniform_int_distribution<Frame> block(1, max_block);
  std::uniform_int_distribution<int> pause(0, 9);
  std::vector<std::int32_t> frames;
  const Frame base = ring.written();
  for (Frame at = 0; at < total;) {
    const Frame n = std::min(block(rng), total - at);
    frames.resize(static_cast<std::size_t>(n * channels));
    for (Frame i = 0; i < n; ++i) {
      for (int c = 0; c < channels; ++c) frames[static_cast<std::size_t>(i * channels + c)] = static_cast<std::int32_t>(base + at + i + 1);
    }
    ring.write(frames.data(), n);
    at += n;
    if (pauses && pause(rng) == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
}

void test_ramp_with_and_without_loss(bool small_ring, std::int64_t split) {
  const int channels = 3;
  const Frame total = 200000;
  auto ring = std::make_shared<FrameRing>(channels * sizeof(std::int32_t), small_ring ? 2048 : 1 << 18);
  const std::string dir = temp_dir();
  FileWriter writer(ring, config_for(dir + "/take.wav", channels, total, split));
  std::thread producer([&] { produce(*ring, total, channels, 1500, !small_ring); });
  producer.join();
  CHECK(writer.wait(30.0));
  CHECK(writer.end() == WriterEnd::frames_done);
  CHECK(writer.error().empty());
  CHECK(writer.frames() == total);

  std::vector<std::int32_t> all;
  const auto files = writer.files();
  for (std::size_t k = 0; k < files.size(); ++k) {
    const auto part = read_file(files[k], channels);
    if (split > 0 && k + 1 < files.size()) CHECK(static_cast<std::int64_t>(part.size()) == split * channels);
    all.insert(all.end(), part.begin(), part.end());
    std::remove(files[k].c_str());
  }
  CHECK(static_cast<Frame>(all.size()) == total * channels);
  std::vector<bool> silent(static_cast<std::size_t>(total), false);
  std::int64_t lost = 0;
  for (const auto& gap : writer.gaps()) {
    CHECK(gap.frame >= 0 && gap.length > 0 && gap.frame + gap.length <= total);
    for (Frame f = gap.frame; f < gap.frame + gap.length; ++f) silent[static_cast<std::size_t>(f)] = true;
    lost += gap.length;
  }
  CHECK(lost == writer.frames_lost());
  if (!small_ring) CHECK(lost == 0);
  for (Frame f = 0; f < total; ++f) {
    for (int c = 0; c < channels; ++c) {
      const std::int32_t value = all[static_cast<std::size_t>(f * channels + c)];
      const std::int32_t expected = silent[static_cast<std::size_t>(f)] ? 0 : static_cast<std::int32_t>(f + 1);
      CHECK_MSG(value == expected, "frame %lld channel %d: %d, expected %d", static_cast<long long>(f), c, value,
                expected);
    }
  }
  rmdir(dir.c_str());
}

void test_restart_ends_without_zeros() {
  auto ring = std::make_shared<FrameRing>(sizeof(std::int32_t), 4096);
  const std::string dir = temp_dir();
  FileWriter writer(ring, config_for(dir + "/take.wav", 1, -1, 0));
  produce(*ring, 1000, 1, 100, false);
  for (int i = 0; i < 5000 && writer.frames() < 1000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ring->clear();
  produce(*ring, 1000, 1, 100, false);  // the next recording's frames are not ours
  CHECK(writer.wait(10.0));
  CHECK(writer.end() == WriterEnd::restarted);
  const auto frames = read_file(dir + "/take.wav", 1);
  CHECK(frames.size() == 1000);
  for (std::size_t f = 0; f < frames.size(); ++f) CHECK(frames[f] == static_cast<std::int32_t>(f + 1));
  std::remove((dir + "/take.wav").c_str());
  rmdir(dir.c_str());
}

void test_unwritable_path_throws() {
  auto ring = std::make_shared<FrameRing>(sizeof(std::int32_t), 4096);
  CHECK_THROWS(FileWriter(ring, config_for("/nonexistent-dir/take.wav", 1, -1, 0)), audioring::FileError);
  CHECK_THROWS(FileWriter(ring, config_for("/tmp/take.wav", 2, -1, 0)), std::invalid_argument);  // frame size
}

}  // namespace

int main() {
  rng.seed(audioring_test::seed("test_file_writer", 20261207));
  test_ramp_with_and_without_loss(false, 0);
  test_ramp_with_and_without_loss(false, 7001);
  test_ramp_with_and_without_loss(true, 0);
  test_ramp_with_and_without_loss(true, 33333);
  test_restart_ends_without_zeros();
  test_unwritable_path_throws();
  std::puts("test_file_writer: ok");
  return 0;
}
