// Converter: turns what a device delivers (its rate, its channels, float32)
// into what the user asked for (the requested rate, a selection of channels
// in a given order, the requested sample format), on a native thread of its
// own, with libsoxr.
//
// Data flow: device callback -> Capture -> capture ring (device frames) ->
// converter thread -> user ring (requested frames) -> readers.
//
// Why a thread and a second ring: PortAudio's thread must never allocate,
// lock or wait, and libsoxr may do all three. The callback therefore stays
// exactly what it is without conversion (Capture::on_block into a ring); the
// converter thread sleeps on the capture ring's doorbell (wait_for_frame),
// reads each new span of device frames, resamples it and writes the result
// into the user ring, whose only producer it is. The capture ring's capacity
// is how long the converter may stall before device frames are lost.
//
// Losslessness: libsoxr resamples a stream exactly as it would resample the
// whole signal in one go, whatever the chunking, so the user ring holds the
// one-shot conversion of everything the device delivered. libsoxr trims its
// own filter delay: output frame k (counted from reset) is the signal at
// device time k / output_rate after the first device frame. It is produced
// later than that (conversion_delay output frames of latency), but its
// timestamp is exact.
//
// Loss: if the capture ring laps the converter (the converter thread was
// starved for longer than the capture ring holds), the device frames it
// missed are converted as silence, so that the user ring's frame numbers stay
// true to the device's clock, and they are counted (stats().frames_lost,
// stats().overruns).
//
// Threading: reset(), start() and stop() from one controlling thread, never
// concurrently with each other; reset() only while stopped and while no
// callback runs. stats(), anchor() and delay() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "audioring/capture.hpp"
#include "audioring/fork_guard.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/sample_format.hpp"

struct soxr;  // libsoxr's handle (soxr_t is `struct soxr*`)

namespace audioring {

// libsoxr's recipes, named as its documentation names them.
enum class Quality { quick, low, medium, high, very_high };

// The widest conversion allowed, either way: output_rate / input_rate (and
// its inverse) at most this. libsoxr's scratch memory grows with the ratio
// (13 MB measured for one channel at 1 Hz -> 100 kHz, about 130 bytes per
// unit of upsampling factor, so some 1.3 GB at 1 Hz -> 10 MHz); no pair of
// real device and recording rates comes near it (8 kHz <-> 384 kHz is 48).
inline constexpr double kMaxConversionRatio = 1024.0;

struct ConverterConfig {
  double input_rate = 48000.0;   // device frames per second, > 0
  double output_rate = 16000.0;  // requested frames per second, > 0
  int input_channels = 1;        // channels of a capture-ring frame
  std::vector<int> mapping;      // 0-based input channel of each output channel; empty = the first ones
  SampleFormat output_format = SampleFormat::float32;
  Quality quality = Quality::high;
  // Device frames converted per step: bounds the scratch memory and how long
  // the user ring waits for the first frames of a large backlog.
  std::int64_t chunk = 1024;
};

class Converter {
 public:
  // The capture ring holds float32 frames of config.input_channels; `output`
  // holds frames of the mapping's length in config.output_format. If
  // `output` is shared, the converter counts in its header and records there
  // that the recording converts (and the device's rate), and `capture` must
  // count there too (Capture's publish_to). Throws
  // std::invalid_argument for an inconsistent config, std::runtime_error if
  // libsoxr refuses it.
  Converter(std::shared_ptr<Capture> capture, std::shared_ptr<FrameRing> output, ConverterConfig config);
  ~Converter();
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;

  // Forgets the previous stream (libsoxr's state, counters, the capture's
  // counters and time anchor): the next frame the capture ring receives is
  // converted as the first of a new signal. Only while stopped.
  void reset();
  // Bytes a converter with `config`, reading a capture ring of
  // `capture_capacity` frames, allocates: its own buffers exactly, plus an
  // upper bound of libsoxr's (measured for libsoxr 0.1.3 at the ends of the
  // allowed ratios, 1 to 64 channels). Throws std::invalid_argument for a
  // ratio past kMaxConversionRatio, as the constructor does.
  static std::size_t memory_needed(const ConverterConfig& config, std::int64_t capture_capacity);

  // Starts the converter thread (a no-op while it runs).
  void start();
  // Converts everything the capture ring holds, flushes libsoxr's tail (the
  // stream then equals the one-shot conversion of the whole input) and joins
  // the thread. Call after the device has stopped calling back.
  void stop() noexcept;

  bool running() const noexcept { return thread_ != nullptr && thread_->joinable(); }
  // Whether this process is a fork of the one that made the converter: its
  // thread does not exist here. start() then throws std::logic_error (the
  // child must not write into its parent's ring); stop() and the destructor
  // let go of the thread's handle instead of joining it (which would wait forever).
  bool forked() const noexcept { return owner_.forked(); }
  ConverterStats stats() const noexcept;
  // The capture's anchor moved to the output: (ADC time of output frame
  // anchor.frame, in the device's clock). Invalid until the first block.
  TimeAnchor anchor() const noexcept;
  // Output frames the resampler holds back (its latency), as last measured.
  double delay() const noexcept { return counters_->delay.load(std::memory_order_relaxed); }
  // Where this converter counts (see recording_counters.hpp).
  const ConverterCounters& counters() const noexcept { return *counters_; }
  bool resampling() const noexcept { return resampler_ != nullptr; }
  const ConverterConfig& config() const noexcept { return config_; }
  const std::shared_ptr<Capture>& capture() const noexcept { return capture_; }
  const std::shared_ptr<FrameRing>& output() const noexcept { return output_; }

 private:
  void run() noexcept;
  // Converts capture-ring frames [in_pos_, in_pos_ + count); frames no longer
  // intact in the ring are converted as silence and counted as lost.
  void convert_span(FrameRing::Frame count) noexcept;
  // Feeds `frames` frames of `channels_out` float32 (null: libsoxr's flush)
  // through the resampler (or straight through) into the user ring.
  void push(const float* frames, std::size_t count) noexcept;
  void emit(const float* frames, std::size_t count) noexcept;

  const ConverterConfig config_;
  const std::shared_ptr<Capture> capture_;   // its ring is the capture ring
  const std::shared_ptr<FrameRing> input_;   // == capture_->ring()
  const std::shared_ptr<FrameRing> output_;  // the user ring; this thread is its only producer while it runs
  std::size_t channels_out_;
  std::vector<int> mapping_;                 // config_.mapping, or 0..channels_out_-1
  bool all_channels_ = false;                // mapping_ is 0..input_channels-1: a device block needs no selecting
  soxr* resampler_ = nullptr;                // null when the rates are equal (channel selection only)

  // Converter-thread state (and reset()'s, while stopped).
  FrameRing::Frame in_pos_ = 0;       // next capture-ring frame to convert
  FrameRing::Frame in_origin_ = 0;    // capture-ring frame converted as output frame out_origin_
  FrameRing::Frame out_origin_ = 0;   // user-ring frame number of the stream's first output frame
  std::vector<float> device_block_;   // chunk x input_channels, copied out of the capture ring
  std::vector<float> selected_;       // chunk x channels_out_, the mapped channels
  std::vector<float> resampled_;      // the resampler's output (empty without resampling)
  std::vector<unsigned char> formatted_;  // the output in the output format (empty for float32)

  std::atomic<bool> stop_requested_{false};
  RecordingCounters* const shared_;    // output_'s shared header counters, or null
  ConverterCounters own_counters_;
  ConverterCounters* const counters_;  // &shared_->converter, or &own_counters_
  std::unique_ptr<std::thread> thread_;  // on the heap: a forked child lets go of it untouched
  const ForkGuard owner_;
};

// Converts `count` float32 samples to `format` (clamped to full scale and
// rounded, the virtual input's scaling: x * 32767 for int16, 128 + x * 127
// for uint8, ...). `out` holds count x bytes of the format.
void format_samples(const float* in, std::size_t count, SampleFormat format, void* out) noexcept;

}  // namespace audioring
