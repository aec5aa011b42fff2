// Python binding of the capture path: audioring._core.Capture (the state the
// PortAudio callback writes into) and audioring._core.VirtualDevice.
#pragma once

#include <pybind11/pybind11.h>

namespace audioring::bindings {

void register_capture(pybind11::module_& m);

}  // namespace audioring::bindings
