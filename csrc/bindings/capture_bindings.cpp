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

// The generator thread calls into a Capture that this object keeps alive.
class VirtualDevice {
 public:
  VirtualDevice(std::shared_ptr<Capture> capture, VirtualInputConfig config)
      : capture_(std::move(capture)), input_(std::move(config), audioring_capture_callback, capture_.get()) {}
  VirtualInput& input() noexcept { return input_; }

 private:
  std::shared_ptr<Capture> capture_;  // declared first: outlives input_'s thread
  VirtualInput input_;
};

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

void register_capture(py::module_& m) {
  py::enum_<SampleFormat> formats(m, "SampleFormat", "The sample formats a ring stores, named as numpy names them.");
  for (const SampleFormatInfo& format : kSampleFormats) formats.value(format.name, format.format);
  py::enum_<Signal>(m, "Signal", "What a VirtualDevice generates.")
      .value("sine", Signal::sine)
      .value("noise", Signal::noise)
      .value("ramp", Signal::ramp);
  // PortAudio's PaStreamCallbackFlags bits for input, by name.
  m.attr("INPUT_UNDERFLOW") = kInputUnderflow;
  m.attr("INPUT_OVERFLOW") = kInputOverflow;

  m.def(
      "capture_callback_address",
      [] { return reinterpret_cast<std::uintptr_t>(&audioring_capture_callback); },
      "Address of the PaStreamCallback-compatible C function; its user data is a Capture's address.");

  py::class_<Capture, std::shared_ptr<Capture>>(m, "Capture",
                                                 "What the input callback writes into: a ring and counters.")
      .def(py::init([](const PyFrameRing& ring, const PyFrameRing* publish_to) {
             return std::make_shared<Capture>(ring.ring(), publish_to != nullptr ? publish_to->ring() : nullptr);
           }),
           py::arg("ring"), py::arg("publish_to") = py::none(),
           "Counts into publish_to's shared header if that ring is shared, else into ring's if it is shared "
           "(so that readers of the shared recording see stats() and anchor()), else privately.")
      .def_property_readonly(
          "address", [](const Capture& c) { return reinterpret_cast<std::uintptr_t>(&c); },
          "The user-data pointer to pass with capture_callback_address().")
      .def(
          "write_block",
          [](Capture& c, const py::buffer& data, unsigned long frames, double adc_time, double current_time,
             unsigned long status) {
            // The pure-Python driver's path into the same on_block() (GIL held).
            const py::buffer_info info = data.request();
            const auto bytes = static_cast<std::size_t>(info.size * info.itemsize);
            if (bytes != frames * c.ring()->frame_bytes()) {
              throw py::value_error("block holds " + std::to_string(bytes) + " bytes, expected " +
                                    std::to_string(frames) + " frames x " + std::to_string(c.ring()->frame_bytes()));
            }
            const PaTimeInfo time{adc_time, current_time, 0.0};
            c.on_block(info.ptr, frames, &time, status);
          },
          py::arg("data"), py::arg("frames"), py::arg("adc_time"), py::arg("current_time"), py::arg("status"))
      .def("stats", [](const Capture& c) { return stats_dict(recording_stats(c.counters(), nullptr)); })
      .def(
          "anchor", [](const Capture& c) { return anchor_tuple(c.anchor()); },
          "(adc_time, frame) of the first callback since reset(), or None.")
      .def("reset", &Capture::reset);

  m.def(
      "soxr_version", [] { return std::string(soxr_version()); }, "The version of the libsoxr linked in.");

  py::enum_<Quality>(m, "Quality", "libsoxr's resampling recipes.")
      .value("quick", Quality::quick)
      .value("low", Quality::low)
      .value("medium", Quality::medium)
      .value("high", Quality::high)
      .value("very_high", Quality::very_high);

  m.attr("MAX_CONVERSION_RATIO") = kMaxConversionRatio;
  m.def(
      "converter_memory",
      [](double input_rate, double output_rate, int input_channels, std::vector<int> mapping,
         SampleFormat output_format, std::int64_t capture_capacity) {
        ConverterConfig config;
        config.input_rate = input_rate;
        config.output_rate = output_rate;
        config.input_channels = input_channels;
        config.mapping = std::move(mapping);
        config.output_format = output_format;
        return Converter::memory_needed(config, capture_capacity);
      },
      py::arg("input_rate"), py::arg("output_rate"), py::arg("input_channels"), py::arg("mapping"),
      py::arg("output_format"), py::arg("capture_capacity"),
      "Bytes a Converter with these arguments, reading a capture ring of capture_capacity frames, allocates "
      "(libsoxr's part as an upper bound). ValueError for a ratio past MAX_CONVERSION_RATIO either way.");

  // Duck-types Capture's reset(), stats() and anchor() in the recording's
  // frames, so that AudioRecord's lifecycle and timing code serve both.
  py::class_<Converter, std::shared_ptr<Converter>>(
      m, "Converter", "A native thread converting a device's capture ring into a recording's ring.")
      .def(py::init([](std::shared_ptr<Capture> capture, const PyFrameRing& output, double input_rate,
                       double output_rate, int input_channels, std::vector<int> mapping, SampleFormat output_format,
                       Quality quality) {
             ConverterConfig config;
             config.input_rate = input_rate;
             config.output_rate = output_rate;
             config.input_channels = input_channels;
             config.mapping = std::move(mapping);
             config.output_format = output_format;
             config.quality = quality;
             return std::make_shared<Converter>(std::move(capture), output.ring(), std::move(config));
           }),
           py::arg("capture"), py::arg("output"), py::arg("input_rate"), py::arg("output_rate"),
           py::arg("input_channels"), py::arg("mapping"), py::arg("output_format"), py::arg("quality"))
      .def("reset", &Converter::reset, "Forget the previous stream and the capture's counters (only while stopped).")
      .def("start", &Converter::start)
      .def("stop", &Converter::stop, py::call_guard<py::gil_scoped_release>(),
           "Convert what is left, flush the resampler's tail and join the thread.")
      .def("stats",
           [](const Converter& c) { return stats_dict(recording_stats(c.capture()->counters(), &c.counters())); })
      .def(
          "anchor", [](const Converter& c) { return anchor_tuple(c.anchor()); },
          "(adc_time, frame) of the recording's first frame since reset(), or None.")
      .def_property_readonly("delay", &Converter::delay, "Output frames the resampler holds back now.")
      .def_property_readonly("resampling", &Converter::resampling)
      .def_property_readonly("running", &Converter::running);

  py::class_<VirtualDevice>(m, "VirtualDevice", "A native thread that feeds a Capture like an input device.")
      .def(py::init([](std::shared_ptr<Capture> capture, Signal signal, std::vector<double> frequencies,
                       double amplitude, int channels, double rate, unsigned long blocksize, double speed,
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
             if (static_cast<std::size_t>(channels) * format_info(format).bytes !=
                 capture->ring()->frame_bytes()) {
               throw py::value_error("virtual device frame size does not match the ring's");
             }
             return std::make_unique<VirtualDevice>(std::move(capture), std::move(config));
           }),
           py::arg("capture"), py::arg("signal"), py::arg("frequencies"), py::arg("amplitude"), py::arg("channels"),
           py::arg("rate"), py::arg("blocksize"), py::arg("speed"), py::arg("frame_limit"), py::arg("format"),
           py::arg("seed"))
      .def("start",
           [](VirtualDevice& d) {
             if (d.input().forked()) {
               throw std::runtime_error(
                   "this virtual input belongs to the process that made it, and this is a forked child of that "
                   "process: the child must not write into its parent's ring. Create the AudioRecord in the "
                   "child process instead");
             }
             try {
               d.input().start();
             } catch (const std::system_error& error) {  // nothing changed: still stopped
               throw std::runtime_error(std::string("cannot start the virtual input's thread: ") + error.what());
             }
           })
      .def(
          "close", [](VirtualDevice& d) { d.input().stop(); }, py::call_guard<py::gil_scoped_release>())
      .def(
          "stop", [](VirtualDevice& d) { d.input().stop(); }, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("active", [](VirtualDevice& d) { return d.input().active(); })
      .def_property_readonly("started", [](VirtualDevice& d) { return d.input().started(); })
      .def_property_readonly("frames_generated", [](VirtualDevice& d) { return d.input().frames_generated(); })
      .def_property_readonly("time", [](VirtualDevice& d) { return d.input().time(); });
}

}  // namespace audioring::bindings
