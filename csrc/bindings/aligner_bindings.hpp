// Python binding of audioring._core.Aligner: several devices' lanes into one
// recording on the master's timebase (aligner.hpp).
#pragma once

#include <pybind11/pybind11.h>

namespace audioring::bindings {

void register_aligner(pybind11::module_& m);

}  // namespace audioring::bindings
