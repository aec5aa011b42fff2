#include "audioring/converter.hpp"

#include <soxr.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

namespace audioring {
namespace {

unsigned long soxr_recipe(Quality quality) {
  switch (quality) {
    case Quality::quick:
      return SOXR_QQ;
    case Quality::low:
      return SOXR_LQ;
    case Quality::medium:
      return SOXR_MQ;
    case Quality::high:
      return SOXR_HQ;
    case Quality::very_high:
      return SOXR_VHQ;
  }
  throw std::invalid_argument("unknown quality");
}

template <class T>
void format_as(const float* in, std::size_t count, void* out) noexcept {
  auto* to = static_cast<unsigned char*>(out);
  for (std::size_t i = 0; i < count; ++i) {
    const double x = std::clamp(static_cast<double>(in[i]), -1.0, 1.0);
    T value;
    if constexpr (std::is_same_v<T, float>) {
      value = in[i];  // float32 keeps what the resampler made, overs included
    } else if constexpr (std::is_same_v<T, std::uint8_t>) {
      value = static_cast<std::uint8_t>(std::lrint(128.0 + x * 127.0));
    } else if constexpr (std::is_same_v<T, std::int8_t>) {
      value = static_cast<std::int8_t>(std::lrint(x * 127.0));
    } else if constexpr (std::is_same_v<T, std::int16_t>) {
      value = static_cast<std::int16_t>(std::lrint(x * 32767.0));
    } else {
      value = static_cast<std::int32_t>(std::llrint(x * 2147483647.0));
    }
    std::memcpy(to + i * sizeof(T), &value, sizeof(T));
  }
}

// libsoxr's memory beyond the converter's buffers, as an upper bound: what
// libsoxr 0.1.3 allocated (its filters, then its stages' FIFOs while
// converting, as VmHWM grew) at the ends of the allowed ratios, 1024:1 and
// 1:1024 and 48:16 kHz, very high quality, was at most 4.3 MiB plus
// 0.85 MiB per channel for 1 to 64 channels, with the output room below.
constexpr std::size_t kSoxrFixedBytes = std::size_t{6} << 20;
constexpr std::size_t kSoxrChannelBytes = std::size_t{1} << 20;

void check_rates(double input_rate, double output_rate) {
  if (!(input_rate > 0) || !std::isfinite(input_rate) || !(output_rate > 0) || !std::isfinite(output_rate)) {
    throw std::invalid_argument("rates must be finite and > 0");
  }
  const double ratio = output_rate / input_rate;
  if (ratio > kMaxConversionRatio || ratio < 1.0 / kMaxConversionRatio) {
    char message[200];
    std::snprintf(message, sizeof message,
                  "output rate / input rate = %.10g / %.10g is outside the conversion ratios allowed, 1/%.0f to %.0f",
                  output_rate, input_rate, kMaxConversionRatio, kMaxConversionRatio);
    throw std::invalid_argument(message);
  }
}

// How many frames the converter's buffers hold; one computation for the
// constructor and memory_needed(), so that the estimate is what is allocated.
struct BufferFrames {
  std::size_t chunk;   // device frames per step: device_block_, selected_
  std::size_t output;  // output frames per libsoxr call: resampled_, formatted_
};

BufferFrames buffer_frames(const ConverterConfig& config, std::int64_t capture_capacity) {
  // Never more than the capture ring holds: a chunk must be copyable intact.
  const auto chunk = static_cast<std::size_t>(std::min<std::int64_t>(config.chunk, capture_capacity));
  // One chunk's output when downsampling, one chunk's worth when upsampling:
  // push() loops for more, so the room never grows with the ratio. The 256
  // spare frames let a call take a whole chunk despite libsoxr's rounding.
  const double ratio = std::min(1.0, config.output_rate / config.input_rate);
  return {chunk, static_cast<std::size_t>(std::ceil(static_cast<double>(chunk) * ratio)) + 256};
}

}  // namespace

std::size_t Converter::memory_needed(const ConverterConfig& config, std::int64_t capture_capacity) {
  check_rates(config.input_rate, config.output_rate);
  if (config.input_channels < 1) throw std::invalid_argument("input_channels must be >= 1");
  if (config.chunk < 1) throw std::invalid_argument("chunk must be >= 1");
  if (capture_capacity < 1) throw std::invalid_argument("capture_capacity must be >= 1");
  const auto channels_in = static_cast<std::size_t>(config.input_channels);
  const std::size_t channels_out = config.mapping.empty() ? channels_in : config.mapping.size();
  const BufferFrames frames = buffer_frames(config, capture_capacity);
  std::size_t bytes = frames.chunk * (channels_in + channels_out) * sizeof(float);
  if (config.input_rate != config.output_rate) {
    bytes += frames.output * channels_out * sizeof(float) + kSoxrFixedBytes + channels_out * kSoxrChannelBytes;
  }
  if (config.output_format != SampleFormat::float32) {
    bytes += frames.output * channels_out * format_info(config.output_format).bytes;
  }
  return bytes;
}

void format_samples(const float* in, std::size_t count, SampleFormat format, void* out) noexcept {
  switch (format) {
    case SampleFormat::float32:
      return format_as<float>(in, count, out);
    case SampleFormat::int32:
      return format_as<std::int32_t>(in, count, out);
    case SampleFormat::int16:
      return format_as<std::int16_t>(in, count, out);
    case SampleFormat::int8:
      return format_as<std::int8_t>(in, count, out);
    case SampleFormat::uint8:
      return format_as<std::uint8_t>(in, count, out);
  }
}

Converter::Converter(std::shared_ptr<Capture> capture, std::shared_ptr<FrameRing> output, ConverterConfig config)
    : config_(std::move(config)),
      capture_(std::move(capture)),
      input_(capture_ ? capture_->ring() : nullptr),
      output_(std::move(output)),
      shared_(output_ ? output_->storage().published_counters() : nullptr),
      counters_(shared_ != nullptr ? &shared_->converter : &own_counters_) {
  if (!input_ || !output_) throw std::invalid_argument("converter needs a capture and an output ring");
  if (output_->read_only()) throw std::invalid_argument("a converter cannot write into a ring attached read-only");
  if (shared_ != nullptr && capture_->shared_counters() != shared_) {
    // Readers of the shared ring compute stats() and anchor() from the
    // header alone: the device's counters must be there too.
    throw std::invalid_argument(
        "a converter into a shared ring needs a capture that counts there: Capture(device_ring, publish_to=output)");
  }
  check_rates(config_.input_rate, config_.output_rate);
  if (config_.input_channels < 1) throw std::invalid_argument("input_channels must be >= 1");
  if (config_.chunk < 1) throw std::invalid_argument("chunk must be >= 1");
  const auto input_channels = static_cast<std::size_t>(config_.input_channels);
  if (input_->frame_bytes() != input_channels * sizeof(float)) {
    throw std::invalid_argument("the capture ring must hold float32 frames of input_channels");
  }
  mapping_ = config_.mapping;
  if (mapping_.empty()) {
    mapping_.resize(input_channels);
    for (std::size_t c = 0; c < input_channels; ++c) mapping_[c] = static_cast<int>(c);
  }
  const auto outside = std::find_if(mapping_.begin(), mapping_.end(),
                                    [&](int channel) { return channel < 0 || channel >= config_.input_channels; });
  if (outside != mapping_.end()) {
    throw std::invalid_argument("mapping names channel " + std::to_string(*outside) + " of " +
                                std::to_string(config_.input_channels));
  }
  channels_out_ = mapping_.size();
  all_channels_ = channels_out_ == input_channels;
  for (std::size_t c = 0; c < channels_out_ && all_channels_; ++c) all_channels_ = mapping_[c] == static_cast<int>(c);
  if (output_->frame_bytes() != channels_out_ * format_info(config_.output_format).bytes) {
    throw std::invalid_argument("the output ring's frames do not match the mapping and output format");
  }

  // What memory_needed() counts, allocated before libsoxr's part.
  const BufferFrames frames = buffer_frames(config_, input_->capacity());
  device_block_.resize(frames.chunk * input_channels);
  selected_.resize(frames.chunk * channels_out_);
  if (config_.output_format != SampleFormat::float32) {
    formatted_.resize(frames.output * channels_out_ * format_info(config_.output_format).bytes);
  }

  if (config_.input_rate != config_.output_rate) {
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(soxr_recipe(config_.quality), 0);
    // One thread: libsoxr's OpenMP team would compete with the audio thread
    // for the cores (and its pool is invisible to the sanitizers).
    const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    soxr_error_t error = nullptr;
    resampler_ = soxr_create(config_.input_rate, config_.output_rate, static_cast<unsigned>(channels_out_), &error,
                             &io, &quality, &runtime);
    if (error != nullptr || resampler_ == nullptr) {
      if (resampler_ != nullptr) soxr_delete(resampler_);
      resampler_ = nullptr;
      throw std::runtime_error(std::string("libsoxr refused the conversion: ") + (error ? error : "unknown error"));
    }
    resampled_.resize(frames.output * channels_out_);
  }
  reset();
  if (shared_ != nullptr) {  // the recording converts: readers' stats() and anchor() go through these counters
    shared_->input_rate.store(config_.input_rate, std::memory_order_relaxed);
    shared_->converting.store(1, std::memory_order_release);  // publishes input_rate
  }
}

Converter::~Converter() {
  stop();
  if (resampler_ != nullptr) soxr_delete(resampler_);
}

void Converter::reset() {
  if (resampler_ != nullptr) {
    soxr_clear(resampler_);
    counters_->delay.store(soxr_delay(resampler_), std::memory_order_relaxed);
  }
  capture_->reset();
  in_pos_ = input_->written();
  in_origin_ = in_pos_;
  out_origin_ = output_->written();
  counters_->anchor_in.store(in_origin_, std::memory_order_relaxed);
  counters_->anchor_out.store(out_origin_, std::memory_order_relaxed);
  for (auto* counter : {&counters_->frames_in, &counters_->frames_out, &counters_->frames_lost, &counters_->overruns}) {
    counter->store(0, std::memory_order_relaxed);
  }
}

void Converter::start() {
  if (owner_.forked()) {
    throw std::logic_error("a converter cannot be started in a forked child of the process that made it");
  }
  if (running()) return;
  stop_requested_.store(false, std::memory_order_relaxed);
  // Thread creation publishes reset()'s state. If it throws, nothing changed.
  thread_ = std::make_unique<std::thread>([this] { run(); });
}

void Converter::stop() noexcept {
  if (owner_.forked()) {
    static_cast<void>(thread_.release());  // the parent's thread: not here, never joined
    return;
  }
  if (!running()) return;
  stop_requested_.store(true, std::memory_order_release);
  input_->interrupt();  // wakes the thread if it sleeps on the doorbell
  thread_->join();
  thread_.reset();
}

ConverterStats Converter::stats() const noexcept { return counters_->stats(); }

TimeAnchor Converter::anchor() const noexcept {
  return recording_anchor(capture_->counters(), counters_, config_.input_rate);
}

void Converter::run() noexcept {
  const FrameRing::Frame chunk = static_cast<FrameRing::Frame>(selected_.size() / channels_out_);
  for (;;) {
    // Read in this order: the interrupt count before the stop flag (so a
    // stop() in between makes the wait return at once), and the stop flag
    // before written() (so once stopping is seen, written() is final: the
    // device stopped before stop() was called).
    const std::uint64_t interrupts = input_->interrupts();
    const bool stopping = stop_requested_.load(std::memory_order_acquire);
    const FrameRing::Frame available = input_->written() - in_pos_;
    if (available > 0) {
      convert_span(std::min(available, chunk));
      continue;
    }
    if (stopping) break;
    input_->wait_for_frame(in_pos_ + 1, FrameRing::Clock::now() + std::chrono::seconds(1), interrupts);
  }
  if (resampler_ != nullptr) push(nullptr, 0);  // the tail: the stream now equals the one-shot conversion
}

void Converter::convert_span(FrameRing::Frame count) noexcept {
  const auto channels_in = static_cast<std::size_t>(config_.input_channels);
  const auto frames = static_cast<std::size_t>(count);
  if (input_->copy(in_pos_, count, device_block_.data())) {
    if (all_channels_) {
      push(device_block_.data(), frames);
    } else {
      for (std::size_t i = 0; i < frames; ++i) {
        const float* from = device_block_.data() + i * channels_in;
        float* to = selected_.data() + i * channels_out_;
        for (std::size_t c = 0; c < channels_out_; ++c) to[c] = from[static_cast<std::size_t>(mapping_[c])];
      }
      push(selected_.data(), frames);
    }
    in_pos_ += count;
    bump(counters_->frames_in, frames);
    return;
  }
  // Lapped: resume half a ring behind the producer (room before it laps us
  // again) and convert what was lost as silence, so that output frame
  // numbers keep matching the device's clock.
  FrameRing::Frame resume = input_->written() - input_->capacity() / 2;
  if (resume < in_pos_ + count) resume = in_pos_ + count;  // overwritten while we copied
  const FrameRing::Frame lost = resume - in_pos_;
  std::fill(selected_.begin(), selected_.end(), 0.0f);
  const auto chunk = static_cast<FrameRing::Frame>(selected_.size() / channels_out_);
  for (FrameRing::Frame left = lost; left > 0;) {
    const FrameRing::Frame n = std::min(left, chunk);
    push(selected_.data(), static_cast<std::size_t>(n));
    left -= n;
  }
  in_pos_ = resume;
  bump(counters_->frames_in, static_cast<std::uint64_t>(lost));
  bump(counters_->frames_lost, static_cast<std::uint64_t>(lost));
  bump(counters_->overruns, 1);
}

void Converter::push(const float* frames, std::size_t count) noexcept {
  if (resampler_ == nullptr) {
    if (frames != nullptr) emit(frames, count);
    return;
  }
  const std::size_t room = resampled_.size() / channels_out_;
  // frames == nullptr flushes; libsoxr then keeps returning output until its
  // tail is out (odone == 0). Otherwise loop until all input is taken and the
  // output buffer was not filled (so nothing more is ready).
  for (;;) {
    std::size_t taken = 0;
    std::size_t made = 0;
    const soxr_error_t error = soxr_process(resampler_, frames, count, &taken, resampled_.data(), room, &made);
    if (error != nullptr) break;  // libsoxr only fails on bad arguments, which the constructor excluded
    emit(resampled_.data(), made);
    if (frames != nullptr) {
      frames += taken * channels_out_;
      count -= taken;
      if (count == 0 && made < room) break;
    } else if (made == 0) {
      break;
    }
  }
  counters_->delay.store(soxr_delay(resampler_), std::memory_order_relaxed);
}

void Converter::emit(const float* frames, std::size_t count) noexcept {
  if (count == 0) return;
  const void* block = frames;
  if (config_.output_format != SampleFormat::float32) {
    format_samples(frames, count * channels_out_, config_.output_format, formatted_.data());
    block = formatted_.data();
  }
  output_->write(block, static_cast<FrameRing::Frame>(count));
  bump(counters_->frames_out, count);
}

}  // namespace audioring
