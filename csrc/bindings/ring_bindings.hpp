// Python binding of FrameRing: audioring._core.FrameRing and its zero-copy
// Window objects. Other bindings (capture) share the ring through PyFrameRing.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>

#include "audioring/frame_ring.hpp"

namespace audioring::bindings {

namespace py = pybind11;

// The `.base` of every zero-copy array: keeps the ring's memory alive after the
// ring itself is gone, and remembers which frames the array started with.
struct Window {
  std::shared_ptr<const FrameRing> ring;  // never null
  FrameRing::Frame start;                 // absolute number of the first frame of the array
  const std::byte* data;                  // == ring->frame_address(start)
};

// A FrameRing with the numpy view of its frames: `channels` columns of `dtype`.
// All methods run with the GIL held except the waits, which release it.
class PyFrameRing {
 public:
  PyFrameRing(std::int64_t channels, std::int64_t capacity, const py::dtype& dtype, const std::string& memory);

  const std::shared_ptr<FrameRing>& ring() const noexcept { return ring_; }
  std::int64_t channels() const noexcept { return channels_; }
  const py::dtype& dtype() const noexcept { return dtype_; }

  // A read-only (frames, channels) array over [start, start + frames), whose
  // base is a Window. Caller guarantees 0 < frames <= capacity.
  py::array view(FrameRing::Frame start, FrameRing::Frame frames) const;
  // The Window behind an array returned by view() of this ring (or a slice of
  // one); throws ValueError otherwise.
  const Window& window_of(const py::array& array) const;
  // The absolute number of the array's first frame.
  FrameRing::Frame start_frame(const py::array& array) const;

 private:
  std::shared_ptr<FrameRing> ring_;
  std::int64_t channels_;
  py::dtype dtype_;
};

void register_ring(py::module_& m);

}  // namespace audioring::bindings
