// Python binding of named sharing (audioring/shared_ring.hpp):
// audioring._core.attach_ring() and list_shared(), and the Python exception
// each SharedRingError reason becomes. FrameRing's own sharing members live
// in bindings/ring_bindings.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace audioring::bindings {

void register_shared(pybind11::module_& m);

}  // namespace audioring::bindings
