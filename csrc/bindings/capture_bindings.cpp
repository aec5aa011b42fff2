#include "bindings/capture_bindings.hpp"

#include <pybind11/stl.h>
#include <soxr.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "audioring/capture.hpp"
#include "audioring/converter.hpp"
#include "audioring/virtual_input.hpp"
#include "bindings/ring_bindings.hpp"

namespace audioring::bindings {
namespace {

// audioring._core.VirtualDevice: the generator thread calls into a Capture
// that this object keeps alive.
class VirtualDevice {
 public:
  // Throws ValueError unless the generated frames are the ring's frames.
  VirtualDevice(std::shared_ptr<Capture> capture, VirtualInputConfig config)
      : capture_(checked_frames(std::move(capture), config)),
        input_(std::move(config), audioring_capture_callback, capture_.get()) {}

  void start() {
    if (input_.forked()) {
      throw std::runtime_error(
          "this virtual input belongs to the process that made it, and this is a forked child of that "
          "process: the child must not write into its parent's ring. Create the AudioRecord in the "
          "child process instead");
    }
    try {
      input_.start();
    } catch (const std::system_error& error) {  // nothing changed: still stopped
      throw std::runtime_error(std::string("cannot start the virtual input's thread: ") + error.what());
    }
  }
  void stop() noexcept { input_.stop(); }
  bool active() const noexcept { return input_.active(); }
  bool started() const noexcept { return input_.started(); }
  std::int64_t frames_generated() const noexcept { return input_.frames_generated(); }
  double time() const noexcept { return input_.time(); }
  double frame0_time() const noexcept { return input_.frame0_time(); }

 private:
  static std::shared_ptr<Capture> checked_frames(std::shared_ptr<Capture> capture, const VirtualInputConfig& config) {
    if (static_cast<std::size_t>(config.channels) * format_info(config.format).bytes != capture->ring()->frame_bytes()) {
      throw py::value_error("virtual device frame size does not match the ring's");
    }
    return capture;
  }

  std::shared_ptr<Capture> capture_;  // declared first: outlives input_'s thread
  VirtualInput input_;
};

std::unique_ptr<VirtualDevice> make_virtual_device(std::shared_ptr<Capture> capture, Signal signal,
                                                   std::vector<double> frequencies, double amplitude, int channels,
                                                   double rate, unsigned long blocksize, double speed,
                                                   std::int64_t frame_limit, SampleFormat format, std::uint64_t seed) {
  VirtualInputConfig config;
  config.signal = signal;
  config.frequencies = std::move(frequencies);
  config.amplitude = amplitude;
  config.channels = channels;
  config.rate = rate;
  config.blocksize = blocksize;
  config.speed = speed;
  config.frame_limit = frame_limit;
  config.format = format;
  config.seed = seed;
  return std::make_unique<VirtualDevice>(std::move(capture), std::move(config));
}

std::shared_ptr<Capture> make_capture(const PyFrameRing& ring, const PyFrameRing* publish_to) {
  return std::make_shared<Capture>(ring.ring(), publish_to != nullptr ? publish_to->ring() : nullptr);
}

std::uintptr_t capture_callback_address() { return reinterpret_cast<std::uintptr_t>(&audioring_capture_callback); }
std::uintptr_t capture_address(const Capture& capture) { return reinterpret_cast<std::uintptr_t>(&capture); }

// The pure-Python driver's path into the same on_block() (GIL held).
void write_block(Capture& capture, const py::buffer& data, unsigned long frames, double adc_time, double current_time,
                 unsigned long status) {
  const py::buffer_info info = data.request();
  const auto bytes = static_cast<std::size_t>(info.size * info.itemsize);
  if (bytes != frames * capture.ring()->frame_bytes()) {
    throw py::value_error("block holds " + std::to_string(bytes) + " bytes, expected " + std::to_string(frames) +
                          " frames x " + std::to_string(capture.ring()->frame_bytes()));
  }
  const PaTimeInfo time{adc_time, current_time, 0.0};
  capture.on_block(info.ptr, frames, &time, status);
}

py::dict capture_stats(const Capture& capture) { return stats_dict(recording_stats(capture.counters(), nullptr)); }
py::object capture_anchor(const Capture& capture) { return anchor_tuple(capture.anchor()); }

std::string linked_soxr_version() { return soxr_version(); }

ConverterConfig converter_config(double input_rate, double output_rate, int input_channels, std::vector<int> mapping,
                                 SampleFormat output_format, Quality quality = Quality::high) {
  ConverterConfig config;
  config.input_rate = input_rate;
  config.output_rate = output_rate;
  config.input_channels = input_channels;
  config.mapping = std::move(mapping);
  config.output_format = output_format;
  config.quality = quality;
  return config;
}

std::size_t converter_memory(double input_rate, double output_rate, int input_channels, std::vector<int> mapping,
                             SampleFormat output_format, std::int64_t capture_capacity) {
  return Converter::memory_needed(
      converter_config(input_rate, output_rate, input_channels, std::move(mapping), output_format), capture_capacity);
}

std::shared_ptr<Converter> make_converter(std::shared_ptr<Capture> capture, const PyFrameRing& output,
                                          double input_rate, double output_rate, int input_channels,
                                          std::vector<int> mapping, SampleFormat output_format, Quality quality) {
  return std::make_shared<Converter>(
      std::move(capture), output.ring(),
      converter_config(input_rate, output_rate, input_channels, std::move(mapping), output_format, quality));
}

py::dict converter_stats(const Converter& converter) {
  return stats_dict(recording_stats(converter.capture()->counters(), &converter.counters()));
}
py::object converter_anchor(const Converter& converter) { return anchor_tuple(converter.anchor()); }

}  // namespace

py::dict stats_dict(const RecordingStats& s) {
  py::dict d;
  d["callbacks"] = s.callbacks;
  d["frames"] = s.frames;
  d["input_overflows"] = s.input_overflows;
  d["input_underflows"] = s.input_underflows;
  d["min_block"] = s.min_block;
  d["max_block"] = s.max_block;
  d["device_frames"] = s.device_frames;
  d["device_frames_lost"] = s.device_frames_lost;
  d["conversion_overruns"] = s.conversion_overruns;
  return d;
}

py::object anchor_tuple(const TimeAnchor& anchor) {
  if (!anchor.valid) return py::none();
  return py::make_tuple(anchor.adc_time, anchor.frame);
}

void register_capture_enums(py::module_& m) {
  py::enum_<SampleFormat> formats(m, "SampleFormat", "The sample formats a ring stores, named as numpy names them.");
  for (const SampleFormatInfo& format : kSampleFormats) formats.value(format.name, format.format);
  py::enum_<Signal>(m, "Signal", "What a VirtualDevice generates.")
      .value("sine", Signal::sine)
      .value("noise", Signal::noise)
      .value("ramp", Signal::ramp);
  py::enum_<Quality>(m, "Quality", "libsoxr's resampling recipes.")
      .value("quick", Quality::quick)
      .value("low", Quality::low)
      .value("medium", Quality::medium)
      .value("high", Quality::high)
      .value("very_high", Quality::very_high);
  // PortAudio's PaStreamCallbackFlags bits for input, by name.
  m.attr("INPUT_UNDERFLOW") = kInputUnderflow;
  m.attr("INPUT_OVERFLOW") = kInputOverflow;
  m.attr("MAX_CONVERSION_RATIO") = kMaxConversionRatio;
}

void register_capture(py::module_& m) {
  m.def("capture_callback_address", &capture_callback_address,
        "Address of the PaStreamCallback-compatible C function; its user data is a Capture's address.");
  py::class_<Capture, std::shared_ptr<Capture>>(m, "Capture", "What the input callback writes into: a ring and counters.")
      .def(py::init(&make_capture), py::arg("ring"), py::arg("publish_to") = py::none(),
           "Counts into publish_to's shared header if that ring is shared, else into ring's if it is shared "
           "(so that readers of the shared recording see stats() and anchor()), else privately.")
      .def_property_readonly("address", &capture_address, "The user-data pointer to pass with capture_callback_address().")
      .def("write_block", &write_block, py::arg("data"), py::arg("frames"), py::arg("adc_time"),
           py::arg("current_time"), py::arg("status"), "Records a block as the input callback would (GIL held).")
      .def("stats", &capture_stats)
      .def("anchor", &capture_anchor, "(adc_time, frame) of the first callback since reset(), or None.")
      .def("reset", &Capture::reset);

  m.def("soxr_version", &linked_soxr_version, "The version of the libsoxr linked in.");
  m.def("converter_memory", &converter_memory, py::arg("input_rate"), py::arg("output_rate"),
        py::arg("input_channels"), py::arg("mapping"), py::arg("output_format"), py::arg("capture_capacity"),
        "Bytes a Converter with these arguments, reading a capture ring of capture_capacity frames, allocates "
        "(libsoxr's part as an upper bound). ValueError for a ratio past MAX_CONVERSION_RATIO either way.");
  // Duck-types Capture's reset(), stats() and anchor() in the recording's
  // frames, so that AudioRecord's lifecycle and timing code serve both.
  py::class_<Converter, std::shared_ptr<Converter>>(
      m, "Converter", "A native thread converting a device's capture ring into a recording's ring.")
      .def(py::init(&make_converter), py::arg("capture"), py::arg("output"), py::arg("input_rate"),
           py::arg("output_rate"), py::arg("input_channels"), py::arg("mapping"), py::arg("output_format"),
           py::arg("quality"))
      .def("reset", &Converter::reset, "Forget the previous stream and the capture's counters (only while stopped).")
      .def("start", &Converter::start)
      .def("stop", &Converter::stop, py::call_guard<py::gil_scoped_release>(),
           "Convert what is left, flush the resampler's tail and join the thread.")
      .def("stats", &converter_stats)
      .def("anchor", &converter_anchor, "(adc_time, frame) of the recording's first frame since reset(), or None.")
      .def_property_readonly("delay", &Converter::delay, "Output frames the resampler holds back now.")
      .def_property_readonly("resampling", &Converter::resampling)
      .def_property_readonly("running", &Converter::running);

  py::class_<VirtualDevice>(m, "VirtualDevice", "A native thread that feeds a Capture like an input device.")
      .def(py::init(&make_virtual_device), py::arg("capture"), py::arg("signal"), py::arg("frequencies"),
           py::arg("amplitude"), py::arg("channels"), py::arg("rate"), py::arg("blocksize"), py::arg("speed"),
           py::arg("frame_limit"), py::arg("format"), py::arg("seed"))
      .def("start", &VirtualDevice::start)
      .def("close", &VirtualDevice::stop, py::call_guard<py::gil_scoped_release>())
      .def("stop", &VirtualDevice::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("active", &VirtualDevice::active)
      .def_property_readonly("started", &VirtualDevice::started)
      .def_property_readonly("frames_generated", &VirtualDevice::frames_generated)
      .def_property_readonly("time", &VirtualDevice::time)
      .def_property_readonly("frame0_time", &VirtualDevice::frame0_time,
                             "When (time's clock) frame 0 was captured, as paced since the last start(); 0 before.");
}

}  // namespace audioring::bindings
