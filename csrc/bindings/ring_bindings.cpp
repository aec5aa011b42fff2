#include "bindings/ring_bindings.hpp"

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

namespace audioring::bindings {
namespace {

using Frame = FrameRing::Frame;

MemoryRequest parse_memory(const std::string& memory) {
  if (memory == "best") return MemoryRequest::best;
  if (memory == "memfd") return MemoryRequest::memfd;
  if (memory == "shm") return MemoryRequest::shm;
  if (memory == "plain") return MemoryRequest::plain;
  throw py::value_error("memory must be one of 'best', 'memfd', 'shm', 'plain', got '" + memory + "'");
}

std::shared_ptr<FrameRing> make_ring(std::int64_t channels, std::int64_t capacity, const py::dtype& dtype,
                                     const std::string& memory) {
  if (channels < 1) throw py::value_error("channels must be >= 1, got " + std::to_string(channels));
  if (capacity < 1) throw py::value_error("capacity must be >= 1 frame, got " + std::to_string(capacity));
  const auto item = static_cast<std::size_t>(dtype.itemsize());
  const auto columns = static_cast<std::size_t>(channels);
  if (item == 0 || columns > SIZE_MAX / 4 / item) {
    throw py::value_error("channels=" + std::to_string(channels) + " overflows the frame size");
  }
  return std::make_shared<FrameRing>(columns * item, capacity, parse_memory(memory));
}

// Seconds (None = forever) to a deadline, saturating instead of overflowing.
FrameRing::Clock::time_point deadline_after(const py::object& timeout) {
  if (timeout.is_none()) return FrameRing::Clock::time_point::max();
  const double seconds = timeout.cast<double>();
  if (std::isnan(seconds) || seconds < 0) {
    throw py::value_error("timeout must be None or a number >= 0, got " + py::repr(timeout).cast<std::string>());
  }
  if (seconds > 1e9) return FrameRing::Clock::time_point::max();
  return FrameRing::Clock::now() +
         std::chrono::duration_cast<FrameRing::Clock::duration>(std::chrono::duration<double>(seconds));
}

const char* to_string(WaitStatus status) {
  switch (status) {
    case WaitStatus::ready:
      return "ready";
    case WaitStatus::timeout:
      return "timeout";
    case WaitStatus::interrupted:
      return "interrupted";
  }
  return "unknown";
}

}  // namespace

PyFrameRing::PyFrameRing(std::int64_t channels, std::int64_t capacity, const py::dtype& dtype,
                         const std::string& memory)
    : ring_(make_ring(channels, capacity, dtype, memory)), channels_(channels), dtype_(dtype) {}

py::array PyFrameRing::view(Frame start, Frame frames) const {
  const std::byte* data = ring_->frame_address(start);
  py::object base = py::cast(Window{ring_, start, data});
  const auto item = static_cast<py::ssize_t>(dtype_.itemsize());
  py::array array(dtype_, {static_cast<py::ssize_t>(frames), static_cast<py::ssize_t>(channels_)},
                  {static_cast<py::ssize_t>(ring_->frame_bytes()), item}, data, base);
  // Clearing the flag directly is how pybind11 itself makes read-only arrays.
  py::detail::array_proxy(array.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return array;
}

const Window& PyFrameRing::window_of(const py::array& array) const {
  // numpy collapses a view of a view only while the bases share a type, so a
  // slice of one of our arrays has that array, not the Window, as its base:
  // follow the chain of arrays down to the Window.
  py::handle base = py::detail::array_proxy(array.ptr())->base;
  while (base && py::isinstance<py::array>(base)) base = py::detail::array_proxy(base.ptr())->base;
  if (base && py::isinstance<Window>(base)) {
    const Window& window = base.cast<const Window&>();
    if (window.ring == ring_) return window;
  }
  throw py::value_error("array was not returned by a zero-copy read of this ring");
}

Frame PyFrameRing::start_frame(const py::array& array) const {
  const Window& window = window_of(array);
  // A slice starts some frames into its Window.
  const auto offset = static_cast<const std::byte*>(array.data()) - window.data;
  return window.start + offset / static_cast<std::ptrdiff_t>(ring_->frame_bytes());
}

void register_ring(py::module_& m) {
  py::class_<Window>(m, "Window",
                     "The base object of a zero-copy array: keeps the ring memory alive and records the "
                     "absolute number of the array's first frame.")
      .def_property_readonly("start", [](const Window& w) { return w.start; });

  py::class_<PyFrameRing>(m, "FrameRing",
                          "Lock-free single-producer ring of interleaved frames (private: use audioring.Ring).")
      .def(py::init<std::int64_t, std::int64_t, const py::dtype&, const std::string&>(), py::arg("channels"),
           py::arg("capacity"), py::arg("dtype"), py::arg("memory") = "best")
      .def_property_readonly("channels", &PyFrameRing::channels)
      .def_property_readonly("dtype", &PyFrameRing::dtype)
      .def_property_readonly("capacity", [](const PyFrameRing& r) { return r.ring()->capacity(); })
      .def_property_readonly("memory", [](const PyFrameRing& r) { return to_string(r.ring()->memory_kind()); })
      .def_property_readonly("mirrored", [](const PyFrameRing& r) { return r.ring()->mirrored(); })
      .def_property_readonly("frames_written", [](const PyFrameRing& r) { return r.ring()->written(); })
      .def(
          "write",
          [](PyFrameRing& r, const py::array& block) {
            if (!py::detail::npy_api::get().PyArray_EquivTypes_(block.dtype().ptr(), r.dtype().ptr())) {
              throw py::type_error("block dtype must be " + py::str(r.dtype()).cast<std::string>() + ", got " +
                                   py::str(block.dtype()).cast<std::string>());
            }
            if (block.ndim() != 2 || block.shape(1) != r.channels()) {
              throw py::value_error("block must have shape (frames, " + std::to_string(r.channels()) +
                                    "), got " + py::repr(py::getattr(block, "shape")).cast<std::string>());
            }
            if (!(block.flags() & py::array::c_style)) {
              throw py::value_error("block must be C-contiguous (use numpy.ascontiguousarray)");
            }
            // The GIL stays held: it is what keeps Python writers to one at a time.
            const auto bytes = static_cast<std::size_t>(block.nbytes());
            const auto* from = static_cast<const std::byte*>(block.data());
            const std::byte* memory = r.ring()->frame_address(0);
            const std::size_t memory_bytes = 2 * static_cast<std::size_t>(r.ring()->capacity()) * r.ring()->frame_bytes();
            if (from < memory + memory_bytes && memory < from + bytes) {
              // A view of this very ring: the write would overwrite its own
              // source (physically, through the mirror), so copy it first.
              const std::vector<std::byte> copy(from, from + bytes);
              r.ring()->write(copy.data(), block.shape(0));
            } else {
              r.ring()->write(from, block.shape(0));
            }
          },
          py::arg("block"))
      .def(
          "latest",
          [](const PyFrameRing& r, Frame frames) {
            if (frames < 1 || frames > r.ring()->capacity()) {
              throw py::value_error("frames must be in 1.." + std::to_string(r.ring()->capacity()) + ", got " +
                                    std::to_string(frames));
            }
            return r.view(r.ring()->written() - frames, frames);
          },
          py::arg("frames"))
      .def(
          "latest_copy",
          [](const PyFrameRing& r, Frame frames) -> py::array {
            const FrameRing& ring = *r.ring();
            if (frames < 1 || frames > ring.capacity()) {
              throw py::value_error("frames must be in 1.." + std::to_string(ring.capacity()) + ", got " +
                                    std::to_string(frames));
            }
            py::array out(r.dtype(), {static_cast<py::ssize_t>(frames), static_cast<py::ssize_t>(r.channels())});
            void* to = out.mutable_data();
            // Retry while the producer overwrites the window during the copy:
            // each try starts from the newest frames, so it succeeds as soon as
            // one copy takes less time than refilling the ring's spare frames.
            for (int attempt = 0; attempt < 64; ++attempt) {
              bool ok;
              {
                py::gil_scoped_release release;
                const Frame start = ring.written() - frames;
                ok = ring.copy(start, frames, to);
              }
              if (ok) return out;
            }
            throw std::runtime_error("the producer overwrote the frames 64 times while they were being copied; "
                                     "give the ring more capacity than the read size");
          },
          py::arg("frames"))
      .def(
          "window",
          [](const PyFrameRing& r, Frame start, Frame frames) {
            const FrameRing& ring = *r.ring();
            if (frames < 1 || frames > ring.capacity()) {
              throw py::value_error("frames must be in 1.." + std::to_string(ring.capacity()) + ", got " +
                                    std::to_string(frames));
            }
            if (start + frames > ring.written()) {
              throw py::value_error("frames [" + std::to_string(start) + ", " + std::to_string(start + frames) +
                                    ") are not all written yet (written: " + std::to_string(ring.written()) + ")");
            }
            return r.view(start, frames);
          },
          py::arg("start"), py::arg("frames"),
          "Zero-copy view of frames [start, start + frames); check is_intact() after using it.")
      .def("start_frame", &PyFrameRing::start_frame, py::arg("array"))
      .def(
          "is_intact",
          [](const PyFrameRing& r, const py::array& array) { return r.ring()->intact(r.start_frame(array)); },
          py::arg("array"))
      .def(
          "intact_from", [](const PyFrameRing& r, Frame start) { return r.ring()->intact(start); },
          py::arg("start"), "Whether no frame at or after `start` has been overwritten.")
      // cppcheck-suppress constParameter ; clear() changes the ring, which r owns through a pointer
      .def("clear", [](PyFrameRing& r) { r.ring()->clear(); })
      .def(
          "wait_for_frame",
          [](const PyFrameRing& r, Frame frame, const py::object& timeout, std::uint64_t interrupts_seen) {
            const auto deadline = deadline_after(timeout);
            WaitStatus status;
            {
              py::gil_scoped_release release;
              status = r.ring()->wait_for_frame(frame, deadline, interrupts_seen);
            }
            return to_string(status);
          },
          py::arg("frame"), py::arg("timeout"), py::arg("interrupts_seen"),
          "Blocks, without the GIL, until frames_written >= frame; returns 'ready', 'timeout' or "
          "'interrupted' (interrupt() was called since interrupt_count was interrupts_seen).")
      .def_property_readonly("interrupt_count", [](const PyFrameRing& r) { return r.ring()->interrupts(); })
      .def("interrupt", [](const PyFrameRing& r) { r.ring()->interrupt(); });
}

}  // namespace audioring::bindings
