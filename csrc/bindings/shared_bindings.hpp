// Python binding of named sharing (audioring/shared_ring.hpp):
// audioring._core.check_share_name(), attach_ring() and list_shared(), and the Python exception
// each SharedRingError reason becomes. FrameRing's own sharing members live
// in bindings/ring_bindings.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

namespace audioring::bindings {

// Throws ValueError naming `argument` unless `name` follows SharedRing's
// name rule (the only implementation of it; Python's as_share_name calls this).
// A str that is not valid UTF-8 (lone surrogates) breaks the rule too.
void check_share_name(const pybind11::str& name, const std::string& argument);

void register_shared(pybind11::module_& m);

}  // namespace audioring::bindings
