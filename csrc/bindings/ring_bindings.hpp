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
#include "audioring/shared_ring.hpp"

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
  // The ring's shared mapping, or null for a private ring.
  SharedRing* shared() const noexcept { return SharedRing::of(ring_->storage()); }
  std::int64_t channels() const noexcept { return channels_; }
  const py::dtype& dtype() const noexcept { return dtype_; }
  std::uint32_t sampling_rate() const noexcept { return sampling_rate_; }

  // A read-only (frames, channels) array over [start, start + frames), whose
  // base is a Window (bindings/views.hpp). Caller guarantees 0 < frames <= capacity.
  py::array view(FrameRing::Frame start, FrameRing::Frame frames) const;

  // ---- the methods of audioring._core.FrameRing (docstrings at registration) ----
  FrameRing::Frame capacity() const noexcept { return ring_->capacity(); }
  MemoryKind memory() const noexcept { return ring_->memory_kind(); }
  bool mirrored() const noexcept { return ring_->mirrored(); }
  FrameRing::Frame frames_written() const noexcept { return ring_->written(); }
  FrameRing::Frame first_frame() const noexcept { return ring_->first(); }
  bool forked() const noexcept { return ring_->forked(); }
  std::uint64_t interrupt_count() const noexcept { return ring_->interrupts(); }
  void interrupt() const noexcept { ring_->interrupt(); }
  bool attached() const noexcept { return ring_->read_only(); }

  // Checks `block` (dtype, shape, C order) and writes it; a view of this very
  // ring is copied first. Runs with the GIL held, which keeps Python writers
  // to one at a time (FrameRing's single producer).
  void write(const py::array& block);
  py::array window(FrameRing::Frame start, FrameRing::Frame frames) const;
  bool intact_from(FrameRing::Frame start) const;
  void clear();
  // `timeout` in seconds, None = forever: checked by the caller (see the definition).
  WaitStatus wait_for_frame(FrameRing::Frame frame, std::optional<double> timeout, std::uint64_t interrupts_seen) const;

  py::object shared_name() const;
  void set_state(SharedState state) const;
  void unshare() const;
  py::object state() const;
  py::object producer_pid() const;
  bool producer_alive() const;
  py::object recording_stats() const;
  py::object recording_anchor() const;
  bool converting() const;
  double conversion_delay() const;

 private:
  // The shared mapping, which must be the producer's (`method` names the caller).
  SharedRing& producer_of_shared(const char* method) const;

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

// The enums and module functions that FrameRing's methods take and return.
void register_ring_enums(py::module_& m);
void register_ring(py::module_& m);

}  // namespace audioring::bindings
