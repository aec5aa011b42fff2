// Python binding of the capture path: audioring._core.Capture (the state the
// PortAudio callback writes into) and audioring._core.VirtualDevice.
#pragma once

#include <pybind11/pybind11.h>

#include "audioring/recording_counters.hpp"

namespace audioring::bindings {

// What stats() returns in Python, for Capture, Converter and a shared
// recording's readers alike (the keys of audioring.CaptureStats).
pybind11::dict stats_dict(const RecordingStats& stats);
// (adc_time, frame), or None while the anchor is not valid.
pybind11::object anchor_tuple(const TimeAnchor& anchor);

// The enums and constants that Capture, Converter and VirtualDevice take.
void register_capture_enums(pybind11::module_& m);
void register_capture(pybind11::module_& m);

}  // namespace audioring::bindings
