// Zero-copy numpy views of a FrameRing, and the reader types that hand them out.
//
// This is audioring's hot path (AudioRecord.read, Ring.latest, is_intact,
// frame_of), so it is written against the CPython and numpy C APIs
// directly: a pybind11 method call and a pybind11 instance as each array's
// base cost about 0.8 us per read, this path about a quarter of that. numpy's
// C API is reached through pybind11's table of it (no numpy headers needed).
// Everything else in the module uses pybind11.
//
// Python sees:
//   Window        the `.base` of every zero-copy array: keeps the ring memory
//                 alive and records the absolute frame numbers it spans.
//   RingReader    base class of audioring.Ring: latest(), is_intact(), frame_of() (alias start_frame()).
//   RecordReader  base class of audioring.AudioRecord: read(), is_intact(), frame_of() (alias start_frame()).
//   RecorderClosedError
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>

#include "audioring/frame_ring.hpp"

namespace audioring::bindings {

namespace py = pybind11;

// A read-only (frames, channels) array of `dtype` over frames [start, start +
// frames), whose base is a new Window. Caller guarantees 0 < frames <= capacity.
py::array make_view(const std::shared_ptr<const FrameRing>& ring, const py::dtype& dtype, std::int64_t channels,
                    FrameRing::Frame start, FrameRing::Frame frames);

void register_views(py::module_& m);

}  // namespace audioring::bindings
