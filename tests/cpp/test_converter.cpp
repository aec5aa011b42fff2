// Tests of Converter: a producer thread feeds a Capture in random block sizes
// while the converter thread resamples into a user ring; the result must
// equal libsoxr's one-shot conversion of the whole input (within 1e-6), for
// several rate pairs, channel counts and mappings. Also: channel selection
// without resampling, sample formats, loss accounting when the capture ring
// laps the converter, restart, the time anchor and bad configurations.
#include "check.hpp"

#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "audioring/capture.hpp"
#include "audioring/converter.hpp"
#include "audioring/frame_ring.hpp"

namespace {

using audioring::Capture;
using audioring::Converter;
using audioring::ConverterConfig;
using audioring::FrameRing;
using audioring::PaTimeInfo;
using audioring::Quality;
using audioring::SampleFormat;
using Frame = FrameRing::Frame;

std::mt19937_64 rng;  // seeded in main()

std::vector<float> noise(std::size_t samples) {
  std::uniform_real_distribution<float> unit(-0.5f, 0.5f);
  std::vector<float> out(samples);
  for (float& x : out) x = unit(rng);
  return out;
}

// Writes `frames` frames of `channels` into `capture` in random block sizes
// (1..max_block), as a device callback would.
void produce(Capture& capture, const std::vector<float>& frames, std::size_t channels, unsigned long max_block) {
  std::uniform_int_distribution<unsigned long> block(1, max_block);
  const std::size_t total = frames.size() / channels;
  double adc = 100.0;
  for (std::size_t at = 0; at < total;) {
    const unsigned long n = static_cast<unsigned long>(std::min<std::size_t>(block(rng), total - at));
    const PaTimeInfo time{adc, adc + 0.01, 0.0};
    capture.on_block(frames.data() + at * channels, n, &time, 0);
    at += n;
    adc += 0.001;
  }
}

std::vector<float> read_all(const FrameRing& ring, Frame first, std::size_t channels) {
  const Frame count = ring.written() - first;
  std::vector<float> out(static_cast<std::size_t>(count) * channels);
  CHECK(ring.copy(first, count, out.data()));
  return out;
}

std::vector<float> oneshot(const std::vector<float>& in, std::size_t channels, double in_rate, double out_rate,
                           unsigned long recipe) {
  const std::size_t in_frames = in.size() / channels;
  const auto out_frames = static_cast<std::size_t>(std::lround(static_cast<double>(in_frames) * out_rate / in_rate));
  std::vector<float> out(out_frames * channels);
  std::size_t done = 0;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(recipe, 0);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  const soxr_error_t error = soxr_oneshot(in_rate, out_rate, static_cast<unsigned>(channels), in.data(), in_frames,
                                          nullptr, out.data(), out_frames, &done, &io, &quality, &runtime);
  CHECK(error == nullptr);
  out.resize(done * channels);
  return out;
}

void test_streamed_equals_oneshot(double in_rate, double out_rate, int in_channels, std::vector<int> mapping,
                                  Quality quality, unsigned long recipe) {
  const std::size_t channels_in = static_cast<std::size_t>(in_channels);
  const std::size_t channels_out = mapping.empty() ? channels_in : mapping.size();
  const std::size_t frames = static_cast<std::size_t>(in_rate * 0.5) + 123;
  const std::vector<float> input = noise(frames * channels_in);

  auto capture_ring = std::make_shared<FrameRing>(channels_in * sizeof(float), static_cast<Frame>(frames));
  const double out_frames = std::ceil(static_cast<double>(frames) * out_rate / in_rate);
  auto user_ring = std::make_shared<FrameRing>(channels_out * sizeof(float), static_cast<Frame>(out_frames) + 4096);
  auto capture = std::make_shared<Capture>(capture_ring);
  ConverterConfig config;
  config.input_rate = in_rate;
  config.output_rate = out_rate;
  config.input_channels = in_channels;
  config.mapping = mapping;
  config.quality = quality;
  config.chunk = 1 + static_cast<std::int64_t>(rng() % 2000);
  Converter converter(capture, user_ring, config);
  const Frame first = user_ring->written();
  converter.start();
  produce(*capture, input, channels_in, 1 + rng() % 3000);
  converter.stop();

  std::vector<float> selected(frames * channels_out);
  for (std::size_t i = 0; i < frames; ++i) {
    for (std::size_t c = 0; c < channels_out; ++c) {
      const std::size_t from = mapping.empty() ? c : static_cast<std::size_t>(mapping[c]);
      selected[i * channels_out + c] = input[i * channels_in + from];
    }
  }
  const std::vector<float> expected =
      in_rate == out_rate ? selected : oneshot(selected, channels_out, in_rate, out_rate, recipe);
  const std::vector<float> got = read_all(*user_ring, first, channels_out);
  CHECK_MSG(got.size() == expected.size(), "%g -> %g Hz, %zu channels: %zu samples, expected %zu", in_rate, out_rate,
            channels_out, got.size(), expected.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double{got[i]} - expected[i]));
  CHECK_MSG(worst <= 1e-6, "%g -> %g Hz, %zu channels: max difference %g", in_rate, out_rate, channels_out, worst);
  const auto stats = converter.stats();
  CHECK(stats.frames_in == frames);
  CHECK(stats.frames_out == got.size() / channels_out);
  CHECK(stats.frames_lost == 0 && stats.overruns == 0);
  std::printf("  %6g -> %6g Hz, %zu -> %zu channels, chunk %lld: %zu frames, max difference %.3g, delay %.1f\n",
              in_rate, out_rate, channels_in, channels_out, static_cast<long long>(config.chunk),
              got.size() / channels_out, worst, converter.delay());
}

void test_formats() {
  const float in[] = {-1.5f, -1.0f, -0.5f, 0.0f, 0.25f, 1.0f, 2.0f};
  std::int16_t i16[7];
  audioring::format_samples(in, 7, SampleFormat::int16, i16);
  const std::int16_t want16[] = {-32767, -32767, -16384, 0, 8192, 32767, 32767};
  for (int i = 0; i < 7; ++i) CHECK_MSG(i16[i] == want16[i], "int16[%d] = %d", i, i16[i]);
  std::uint8_t u8[7];
  audioring::format_samples(in, 7, SampleFormat::uint8, u8);
  const std::uint8_t want8[] = {1, 1, 64, 128, 160, 255, 255};
  for (int i = 0; i < 7; ++i) CHECK_MSG(u8[i] == want8[i], "uint8[%d] = %d", i, u8[i]);
  std::int32_t i32[7];
  audioring::format_samples(in, 7, SampleFormat::int32, i32);
  CHECK(i32[0] == -2147483647 && i32[3] == 0 && i32[6] == 2147483647);
  std::int8_t i8[7];
  audioring::format_samples(in, 7, SampleFormat::int8, i8);
  CHECK(i8[0] == -127 && i8[2] == -64 && i8[6] == 127);
}

// Device frames the converter could not read in time become silence of the
// right length: the output keeps the device's clock, and the loss is counted.
void test_lapped_converter_counts_loss() {
  auto capture_ring = std::make_shared<FrameRing>(sizeof(float), 4096);
  const Frame capacity = capture_ring->capacity();
  auto user_ring = std::make_shared<FrameRing>(sizeof(float), 1 << 16);
  auto capture = std::make_shared<Capture>(capture_ring);
  ConverterConfig config;
  config.input_rate = 48000;
  config.output_rate = 16000;
  Converter converter(capture, user_ring, config);
  const Frame first = user_ring->written();
  const std::size_t frames = static_cast<std::size_t>(capacity) * 3;
  const std::vector<float> input = noise(frames);
  produce(*capture, input, 1, 512);  // converter not started: the ring laps it
  converter.start();
  converter.stop();
  const auto stats = converter.stats();
  CHECK_MSG(stats.frames_in == frames, "frames_in %llu", static_cast<unsigned long long>(stats.frames_in));
  CHECK(stats.overruns >= 1);
  CHECK_MSG(stats.frames_lost >= frames - static_cast<std::size_t>(capacity) && stats.frames_lost < frames,
            "frames_lost %llu", static_cast<unsigned long long>(stats.frames_lost));
  CHECK(static_cast<std::size_t>(user_ring->written() - first) == frames / 3);  // the timeline holds
  // The frames that survived are converted (not silence) at their place.
  const std::vector<float> got = read_all(*user_ring, first, 1);
  CHECK(got.front() == 0.0f);
  float tail = 0;
  for (std::size_t i = got.size() - 100; i < got.size() - 10; ++i) tail = std::max(tail, std::abs(got[i]));
  CHECK(tail > 0.01f);
}

// After stop() and reset(), the next recording is converted as a new signal.
void test_restart() {
  auto capture_ring = std::make_shared<FrameRing>(2 * sizeof(float), 1 << 15);
  auto user_ring = std::make_shared<FrameRing>(2 * sizeof(std::int16_t), 1 << 15);
  auto capture = std::make_shared<Capture>(capture_ring);
  ConverterConfig config;
  config.input_rate = 44100;
  config.output_rate = 16000;
  config.input_channels = 2;
  config.mapping = {1, 0};
  config.output_format = SampleFormat::int16;
  Converter converter(capture, user_ring, config);
  const std::vector<float> input = noise(2 * 10000);
  std::vector<std::int16_t> runs[2];
  for (auto& run : runs) {
    converter.reset();
    const Frame first = user_ring->written();
    converter.start();
    produce(*capture, input, 2, 700);
    converter.stop();
    const Frame count = user_ring->written() - first;
    run.resize(static_cast<std::size_t>(count) * 2);
    CHECK(user_ring->copy(first, count, run.data()));
    CHECK(converter.stats().frames_in == 10000);
  }
  CHECK(runs[0] == runs[1]);
  CHECK(runs[0].size() == 2 * static_cast<std::size_t>(std::lround(10000 * 16000.0 / 44100.0)));
}

// Output frame anchor.frame + k was at the ADC k / output_rate after the
// first device frame's ADC time.
void test_anchor() {
  auto capture_ring = std::make_shared<FrameRing>(sizeof(float), 1 << 14);
  auto user_ring = std::make_shared<FrameRing>(sizeof(float), 1 << 14);
  auto capture = std::make_shared<Capture>(capture_ring);
  capture_ring->write(nullptr, 777);  // numbers need not start at 0
  user_ring->write(nullptr, 333);
  ConverterConfig config;
  config.input_rate = 48000;
  config.output_rate = 16000;
  Converter converter(capture, user_ring, config);
  CHECK(!converter.anchor().valid);
  converter.start();
  const std::vector<float> block(480, 0.1f);
  const PaTimeInfo time{12.5, 12.6, 0.0};
  capture->on_block(block.data(), 480, &time, 0);
  converter.stop();
  const auto anchor = converter.anchor();
  CHECK(anchor.valid);
  CHECK(anchor.frame == 333);
  CHECK(std::abs(anchor.adc_time - 12.5) < 1e-12);
}

void test_bad_configs() {
  auto capture_ring = std::make_shared<FrameRing>(2 * sizeof(float), 4096);
  auto user_ring = std::make_shared<FrameRing>(sizeof(float), 4096);
  auto capture = std::make_shared<Capture>(capture_ring);
  ConverterConfig config;
  config.input_channels = 2;
  config.mapping = {2};
  CHECK_THROWS(Converter(capture, user_ring, config), std::invalid_argument);  // no channel 2 of 2
  config.mapping = {1};
  config.output_rate = 0;
  CHECK_THROWS(Converter(capture, user_ring, config), std::invalid_argument);
  config.output_rate = 16000;
  config.input_channels = 1;
  CHECK_THROWS(Converter(capture, user_ring, config), std::invalid_argument);  // ring holds 2 channels
  config.input_channels = 2;
  config.mapping = {0, 1};
  CHECK_THROWS(Converter(capture, user_ring, config), std::invalid_argument);  // user ring holds 1
  config.mapping = {1};
  Converter fine(capture, user_ring, config);
  CHECK(fine.resampling());
}

}  // namespace

int main() {
  rng.seed(audioring_test::seed("test_converter", 20261130));
  test_formats();
  test_bad_configs();
  test_anchor();
  struct Case {
    double in, out;
    int channels;
    std::vector<int> mapping;
    Quality quality;
    unsigned long recipe;
  };
  const Case cases[] = {
      {48000, 16000, 1, {}, Quality::high, SOXR_HQ},
      {44100, 16000, 2, {}, Quality::high, SOXR_HQ},
      {16000, 48000, 1, {}, Quality::very_high, SOXR_VHQ},
      {48000, 24000, 4, {3, 1}, Quality::medium, SOXR_MQ},
      {48000, 16000, 32, {}, Quality::quick, SOXR_QQ},
      {22050, 16000, 3, {2, 0, 1}, Quality::low, SOXR_LQ},
      {48000, 48000, 4, {3, 2}, Quality::high, SOXR_HQ},  // channel selection only
  };
  for (const Case& c : cases) test_streamed_equals_oneshot(c.in, c.out, c.channels, c.mapping, c.quality, c.recipe);
  test_lapped_converter_counts_loss();
  test_restart();
  std::printf("test_converter: all passed\n");
  return 0;
}
