// audioring._core: the private compiled module. Each concept registers itself;
// the public API is the Python package around it.
#include <pybind11/pybind11.h>

#include "audioring/ring_memory.hpp"
#include "bindings/aligner_bindings.hpp"
#include "bindings/capture_bindings.hpp"
#include "bindings/ring_bindings.hpp"
#include "bindings/shared_bindings.hpp"
#include "bindings/views.hpp"
#include "bindings/watcher_bindings.hpp"
#include "bindings/writer_bindings.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "audioring's native core (private; import audioring instead)";
  m.attr("__version__") = AUDIORING_VERSION;
  m.attr("__git_revision__") = AUDIORING_GIT_REVISION;  // see CMakeLists.txt

  // The project's own native errors keep their meaning in Python.
  py::register_exception<audioring::OutOfMemory>(m, "OutOfMemory", PyExc_MemoryError);
  py::register_exception<audioring::MappingUnavailable>(m, "MappingUnavailable", PyExc_OSError);

  audioring::bindings::register_views(m);
  audioring::bindings::register_ring_enums(m);
  audioring::bindings::register_ring(m);
  audioring::bindings::register_shared(m);
  audioring::bindings::register_capture_enums(m);
  audioring::bindings::register_capture(m);
  audioring::bindings::register_aligner(m);
  audioring::bindings::register_watcher(m);
  audioring::bindings::register_writer(m);
}
