#include "bindings/aligner_bindings.hpp"

#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "audioring/aligner.hpp"
#include "bindings/capture_bindings.hpp"
#include "bindings/ring_bindings.hpp"

namespace audioring::bindings {
namespace {

namespace py = pybind11;

// (ring, ring_channels, mapping, capture, converter or None, device_rate), as Python builds a lane.
using LaneTuple = std::tuple<const PyFrameRing*, int, std::vector<int>, std::shared_ptr<Capture>,
                             std::shared_ptr<Converter>, double>;

std::shared_ptr<Aligner> make_aligner(const PyFrameRing& output, const std::vector<LaneTuple>& lanes,
                                      std::size_t master, double rate, SampleFormat output_format,
                                      double stall_seconds) {
  AlignerConfig config;
  for (const LaneTuple& lane : lanes) {
    const auto& [ring, ring_channels, mapping, capture, converter, device_rate] = lane;
    if (ring == nullptr) throw py::value_error("a lane needs a ring");
    config.lanes.push_back({ring->ring(), ring_channels, mapping, capture, converter, device_rate});
  }
  config.master = master;
  config.rate = rate;
  config.output_format = output_format;
  config.stall_seconds = stall_seconds;
  return std::make_shared<Aligner>(output.ring(), std::move(config));
}

py::dict aligner_stats(const Aligner& aligner) {
  return stats_dict(recording_stats(aligner.master_capture()->counters(), &aligner.counters()));
}

py::dict lane_stats(const Aligner& aligner, std::size_t lane) {
  const LaneStats s = aligner.lane_stats(lane);
  py::dict d;
  d["frames_in"] = s.frames_in;
  d["frames_lost"] = s.frames_lost;
  d["overruns"] = s.overruns;
  d["frames_silent"] = s.frames_silent;
  d["stalls"] = s.stalls;
  d["alignments"] = s.alignments;
  d["locked"] = s.locked;
  d["drift_ppm"] = s.drift_ppm;
  d["correction_ppm"] = s.correction_ppm;
  d["offset"] = s.offset;
  return d;
}

}  // namespace

void register_aligner(py::module_& m) {
  m.attr("ALIGNER_LOCK_SECONDS") = Aligner::kLockSeconds;
  m.def("drift_filter_delay", &DriftResampler::filter_delay,
        "The input delay of libsoxr's variable-rate filter in frames, as measured in this process.");
  // Duck-types Converter's reset(), stats(), anchor() and delay for AudioRecord.
  py::class_<Aligner, std::shared_ptr<Aligner>>(
      m, "Aligner", "A native thread aligning several devices' lanes into one recording on the master's clock.")
      .def(py::init(&make_aligner), py::arg("output"), py::arg("lanes"), py::arg("master"), py::arg("rate"),
           py::arg("output_format"), py::arg("stall_seconds"))
      .def("reset", &Aligner::reset, "Forget the previous recording, every lane's included (only while stopped).")
      .def("start", &Aligner::start)
      .def("stop", &Aligner::stop, py::call_guard<py::gil_scoped_release>(),
           "Take what the lanes hold, pad lanes behind the master with silence, and join the thread.")
      .def("stats", &aligner_stats)
      .def("lane_stats", &lane_stats, py::arg("lane"))
      .def("anchor", [](const Aligner& a) { return anchor_tuple(a.anchor()); },
           "(adc_time, frame) of the recording's first frame since reset(), the master's clock, or None.")
      .def_property_readonly("delay", [](const Aligner&) { return 0.0; },
                             "Output frames held back by a resampler in the recording's own clock: none.")
      .def_property_readonly("lanes", &Aligner::lanes)
      .def_property_readonly("master", &Aligner::master_index)
      .def_property_readonly("running", &Aligner::running);
}

}  // namespace audioring::bindings
