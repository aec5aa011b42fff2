#include "bindings/shared_bindings.hpp"

#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audioring/shared_ring.hpp"
#include "bindings/ring_bindings.hpp"

namespace audioring::bindings {
namespace {

PyObject* python_error(SharedRingError::Reason reason) {
  switch (reason) {
    case SharedRingError::Reason::not_found:
      return PyExc_FileNotFoundError;
    case SharedRingError::Reason::permission:
      return PyExc_PermissionError;
    case SharedRingError::Reason::in_use:
      return PyExc_FileExistsError;
    case SharedRingError::Reason::invalid:
      return PyExc_ValueError;
    case SharedRingError::Reason::unsupported:
      return PyExc_NotImplementedError;
    case SharedRingError::Reason::system:
      break;
  }
  return PyExc_OSError;
}

void translate_shared_ring_error(std::exception_ptr thrown) {
  try {
    if (thrown) std::rethrow_exception(thrown);
  } catch (const SharedRingError& error) {
    PyErr_SetString(python_error(error.reason()), error.what());
  }
}

PyFrameRing attach_ring(const std::string& name) {
  std::shared_ptr<SharedRing> shared;
  {
    // Waits (up to 5 s) while a producer is still making the file.
    py::gil_scoped_release released;
    shared = SharedRing::attach(name);
  }
  return PyFrameRing(std::move(shared));
}

py::list list_shared_rings() {
  std::vector<std::string> skipped;
  const std::vector<SharedRingInfo> found = list_shared(&skipped);
  for (const std::string& reason : skipped) {
    if (PyErr_WarnEx(PyExc_RuntimeWarning, ("list_shared() skipped " + reason).c_str(), 1) != 0) {
      throw py::error_already_set();
    }
  }
  py::list out;
  for (const SharedRingInfo& info : found) {
    py::dict entry;
    entry["name"] = info.name;
    entry["pid"] = info.pid;
    entry["alive"] = info.alive;
    entry["channels"] = info.channels;
    entry["dtype"] = format_info(info.format).name;
    entry["capacity"] = info.capacity;
    entry["sampling_rate"] = info.sampling_rate;
    entry["state"] = info.state;
    entry["frames_written"] = info.frames_written;
    entry["first_frame"] = info.first_frame;
    out.append(entry);
  }
  return out;
}

}  // namespace

void check_share_name(const py::str& name, const std::string& argument) {
  Py_ssize_t size = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(name.ptr(), &size);
  if (utf8 == nullptr) PyErr_Clear();  // not encodable: not ASCII, so not a valid name either
  if (utf8 == nullptr || !SharedRing::valid_name(std::string_view(utf8, static_cast<std::size_t>(size)))) {
    throw py::value_error(argument + " must be " + SharedRing::kNameRule + ", got " +
                          py::repr(name).cast<std::string>());
  }
}

void register_shared(py::module_& m) {
  py::register_exception_translator(&translate_shared_ring_error);
  m.def("check_share_name", &check_share_name, py::arg("name"), py::arg("argument"),
        "ValueError naming `argument` unless `name` can name a shared recording (the native rule, checked once).");
  m.def("attach_ring", &attach_ring, py::arg("name"),
        "A read-only FrameRing over this user's shared recording `name` (zero-copy; its arrays keep the mapping "
        "alive). FileNotFoundError: no such recording, or still being made after 5 s; PermissionError: another "
        "user's, or open to others; ValueError: not a valid shared ring (not a regular file, or a malformed "
        "header); NotImplementedError: not Linux.");
  m.def("list_shared", &list_shared_rings,
        "This user's shared recordings, sorted by name, as dicts (name, pid, alive, channels, dtype, capacity, "
        "sampling_rate, state, frames_written, first_frame). Stale ones (no producer holds them) are unlinked on "
        "the way; entries that are not valid shared rings (FIFOs, directories, sockets, links, other owners, "
        "malformed headers) are skipped, left in place, with a RuntimeWarning naming the path and the reason.");
}

}  // namespace audioring::bindings
