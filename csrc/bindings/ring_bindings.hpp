// Python binding of FrameRing: audioring._core.FrameRing (the producer side,
// waits, and windows for streams). Reads of the latest frames live in
// bindings/views.hpp. Other bindings (capture) share the ring through PyFrameRing.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "audioring/frame_ring.hpp"

namespace audioring::bindings {

namespace py = pybind11;

// A FrameRing with the numpy view of its frames: `channels` columns of `dtype`.
// All methods run with the GIL held except the waits, which release it.
class PyFrameRing {
 public:
  // A private ring (share empty), or a new shared one named `share`.
  PyFrameRing(std::int64_t channels, std::int64_t capacity, const py::dtype& dtype, MemoryRequest memory,
              const std::optional<std::string>& share, std::int64_t sampling_rate);
  // A read-only view of another process's shared recording.
  explicit PyFrameRing(const std::shared_ptr<SharedRing>& attached);

  const std::shared_ptr<FrameRing>& ring() const noexcept { return ring_; }
  std::int64_t channels() const noexcept { return channels_; }
  const py::dtype& dtype() const noexcept { return dtype_; }
  std::uint32_t sampling_rate() const noexcept { return sampling_rate_; }

  // A read-only (frames, channels) array over [start, start + frames), whose
  // base is a Window (bindings/views.hpp). Caller guarantees 0 < frames <= capacity.
  py::array view(FrameRing::Frame start, FrameRing::Frame frames) const;

 private:
  std::shared_ptr<FrameRing> ring_;
  std::int64_t channels_;
  py::dtype dtype_;
  std::uint32_t sampling_rate_;  // 0 = unknown; a shared ring's is in its header too
};

// Throws RuntimeError if this process is a forked child of the one that made
// `ring` (see audioring/fork_guard.hpp); `what` names the object for the message.
void check_not_forked(const FrameRing& ring, const char* what);

// Throws RuntimeError if `ring` is attached read-only to another process's
// shared recording (`method` needs its producer).
void check_writable(const FrameRing& ring, const char* method);

void register_ring(py::module_& m);

}  // namespace audioring::bindings
