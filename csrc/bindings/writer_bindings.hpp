// Python binding of the file writer: audioring._core.FileWriter, the table of
// file formats (file_formats()), and FileError. The public API around it is
// python/audioring/_file_writer.py.
#pragma once

#include <pybind11/pybind11.h>

namespace audioring::bindings {

void register_writer(pybind11::module_& m);

}  // namespace audioring::bindings
