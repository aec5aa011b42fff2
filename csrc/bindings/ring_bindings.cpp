#include "bindings/ring_bindings.hpp"

#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/capture_bindings.hpp"
#include "bindings/shared_bindings.hpp"
#include "bindings/views.hpp"

namespace audioring::bindings {
namespace {

using Frame = FrameRing::Frame;

// The sample format of a shared ring's dtype (native byte order only: the
// header stores the format, not a numpy dtype).
SampleFormat shared_format(const py::dtype& dtype, const std::string& name) {
  for (const SampleFormatInfo& format : kSampleFormats) {
    if (py::detail::npy_api::get().PyArray_EquivTypes_(dtype.ptr(), py::dtype(format.name).ptr())) return format.format;
  }
  throw py::value_error("shared recording '" + name + "': dtype must be float32, int32, int16, int8 or uint8 in "
                        "native byte order, got " + py::str(dtype).cast<std::string>());
}

std::shared_ptr<FrameRing> make_ring(std::int64_t channels, std::int64_t capacity, const py::dtype& dtype,
                                     MemoryRequest memory, const std::optional<std::string>& share,
                                     std::uint32_t sampling_rate) {
  if (channels < 1) throw py::value_error("channels must be >= 1, got " + std::to_string(channels));
  if (capacity < 1) throw py::value_error("capacity must be >= 1 frame, got " + std::to_string(capacity));
  const auto item = static_cast<std::size_t>(dtype.itemsize());
  const auto columns = static_cast<std::size_t>(channels);
  if (item == 0 || columns > SIZE_MAX / 4 / item) {
    throw py::value_error("channels=" + std::to_string(channels) + " overflows the frame size");
  }
  if (!share) return std::make_shared<FrameRing>(columns * item, capacity, memory);

  const std::string& name = *share;
  check_share_name(py::str(name), "share");
  if (memory != MemoryRequest::best && memory != MemoryRequest::shm) {
    throw py::value_error("shared recording '" + name + "' is mirrored shared memory: memory must be best or shm "
                          "(mirrored=True or 'shm'), got " + to_string(memory));
  }
  if (columns > kSharedMaxChannels) {
    throw py::value_error("shared recording '" + name + "': channels must be 1.." +
                          std::to_string(kSharedMaxChannels) + ", got " + std::to_string(channels));
  }
  SharedRingSpec spec;
  spec.channels = columns;
  spec.format = shared_format(dtype, name);
  try {
    spec.capacity = FrameRing::rounded_capacity(columns * item, capacity);
  } catch (const OutOfMemory& error) {
    throw OutOfMemory("shared recording '" + name + "': " + error.what());
  }
  spec.sampling_rate = sampling_rate;
  return std::make_shared<FrameRing>(SharedRing::create(name, spec));
}

// Seconds (None = forever) to a deadline, saturating instead of overflowing.
// A public timeout is checked once, in Python (_validate.as_timeout: it names
// the argument and takes every Python number, 10**400 included); callers of
// this private method pass what is left of it. Here the arithmetic is only
// kept defined: anything not above 0 (NaN included) is no wait.
FrameRing::Clock::time_point deadline_after(std::optional<double> timeout) {
  if (!timeout || *timeout > 1e9) return FrameRing::Clock::time_point::max();
  const auto now = FrameRing::Clock::now();
  if (!(*timeout > 0)) return now;
  return now + std::chrono::duration_cast<FrameRing::Clock::duration>(std::chrono::duration<double>(*timeout));
}

// How long a wait sleeps without the GIL before it looks for signals: the
// bound on how late Ctrl-C (KeyboardInterrupt) or a Python signal handler
// runs while a thread waits for frames that may never come.
constexpr auto kSignalCheckInterval = std::chrono::milliseconds(20);

// wait_for_frame() in slices: Python runs signal handlers only when the
// main thread runs Python code, so between slices the GIL is taken and
// PyErr_CheckSignals() called; an exception from a handler ends the wait.
// The GIL is released and taken with explicit calls, not a scoped guard: a
// daemon thread that takes the GIL during interpreter shutdown is ended by
// pthread_exit, whose unwinding must not pass through a noexcept destructor.
WaitStatus wait_interruptibly(const FrameRing& ring, Frame frame, FrameRing::Clock::time_point deadline,
                              std::uint64_t interrupts_seen) {
  for (;;) {
    const auto now = FrameRing::Clock::now();
    const auto slice_end = deadline - now > kSignalCheckInterval ? now + kSignalCheckInterval : deadline;
    PyThreadState* released = PyEval_SaveThread();
    const WaitStatus status = ring.wait_for_frame(frame, slice_end, interrupts_seen);
    PyEval_RestoreThread(released);
    if (status != WaitStatus::timeout || slice_end >= deadline) return status;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

}  // namespace

void check_not_forked(const FrameRing& ring, const char* what) {
  if (ring.forked()) {
    throw std::runtime_error(
        std::string(what) +
        " belongs to the process that made it, and this is a forked child of that process: a child must "
        "not write into it (the memory is shared with the parent) nor read it (its frame counters no longer "
        "follow the parent's). Create the Ring or AudioRecord in the child process instead");
  }
}

void check_writable(const FrameRing& ring, const char* method) {
  if (const SharedRing* shared = SharedRing::of(ring.storage()); shared != nullptr && shared->read_only()) {
    throw std::runtime_error("read-only: attached to shared recording '" + shared->name() + "' of process " +
                             std::to_string(shared->producer_pid()) + " (" + method + "() belongs to its producer)");
  }
}

PyFrameRing::PyFrameRing(std::int64_t channels, std::int64_t capacity, const py::dtype& dtype,
                         MemoryRequest memory, const std::optional<std::string>& share, std::int64_t sampling_rate)
    : channels_(channels), dtype_(dtype) {
  if (sampling_rate < 0 || sampling_rate > UINT32_MAX) {
    throw py::value_error((share ? "shared recording '" + *share + "': " : std::string()) +
                          "sampling_rate must be 0 (unknown) .. " + std::to_string(UINT32_MAX) + ", got " +
                          std::to_string(sampling_rate));
  }
  sampling_rate_ = static_cast<std::uint32_t>(sampling_rate);
  ring_ = make_ring(channels, capacity, dtype, memory, share, sampling_rate_);
}

PyFrameRing::PyFrameRing(const std::shared_ptr<SharedRing>& attached)
    : ring_(std::make_shared<FrameRing>(attached)),
      channels_(static_cast<std::int64_t>(attached->channels())),
      dtype_(py::dtype(format_info(attached->format()).name)),
      sampling_rate_(attached->sampling_rate()) {}

py::array PyFrameRing::view(Frame start, Frame frames) const {
  return make_view(ring_, dtype_, channels_, start, frames);
}

void PyFrameRing::write(const py::array& block) {
  check_writable(*ring_, "write");
  check_not_forked(*ring_, "this Ring");
  if (!py::detail::npy_api::get().PyArray_EquivTypes_(block.dtype().ptr(), dtype_.ptr())) {
    throw py::type_error("block dtype must be " + py::str(dtype_).cast<std::string>() + ", got " +
                         py::str(block.dtype()).cast<std::string>());
  }
  if (block.ndim() != 2 || block.shape(1) != channels_) {
    throw py::value_error("block must have shape (frames, " + std::to_string(channels_) + "), got " +
                          py::repr(py::getattr(block, "shape")).cast<std::string>());
  }
  if (!(block.flags() & py::array::c_style)) {
    throw py::value_error("block must be C-contiguous (use numpy.ascontiguousarray)");
  }
  const auto bytes = static_cast<std::size_t>(block.nbytes());
  const auto* from = static_cast<const std::byte*>(block.data());
  const std::byte* memory = ring_->frame_address(0);
  const std::size_t memory_bytes = 2 * static_cast<std::size_t>(ring_->capacity()) * ring_->frame_bytes();
  if (from < memory + memory_bytes && memory < from + bytes) {
    // A view of this very ring: the write would overwrite its own source
    // (physically, through the mirror), so copy it first.
    const std::vector<std::byte> copy(from, from + bytes);
    ring_->write(copy.data(), block.shape(0));
  } else {
    ring_->write(from, block.shape(0));
  }
}

py::array PyFrameRing::window(Frame start, Frame frames) const {
  check_not_forked(*ring_, "this recorder's ring");
  if (frames < 1 || frames > ring_->capacity()) {
    throw py::value_error("frames must be in 1.." + std::to_string(ring_->capacity()) + ", got " +
                          std::to_string(frames));
  }
  if (start + frames > ring_->written()) {
    throw py::value_error("frames [" + std::to_string(start) + ", " + std::to_string(start + frames) +
                          ") are not all written yet (written: " + std::to_string(ring_->written()) + ")");
  }
  return view(start, frames);
}

bool PyFrameRing::intact_from(Frame start) const {
  check_not_forked(*ring_, "this recorder's ring");
  return ring_->intact(start);
}

void PyFrameRing::clear() {
  check_writable(*ring_, "clear");
  check_not_forked(*ring_, "this Ring");
  ring_->clear();
}

WaitStatus PyFrameRing::wait_for_frame(Frame frame, std::optional<double> timeout,
                                       std::uint64_t interrupts_seen) const {
  check_not_forked(*ring_, "this recorder's ring");
  return wait_interruptibly(*ring_, frame, deadline_after(timeout), interrupts_seen);
}

py::object PyFrameRing::shared_name() const {
  return shared() ? py::str(shared()->name()) : py::object(py::none());
}

SharedRing& PyFrameRing::producer_of_shared(const char* method) const {
  check_writable(*ring_, method);
  SharedRing* const mapping = shared();
  if (mapping == nullptr) {
    throw std::runtime_error(std::string(method) + "(): this ring is not shared (FrameRing(..., share=name))");
  }
  check_not_forked(*ring_, "this shared ring");
  return *mapping;
}

void PyFrameRing::set_state(SharedState state) const { producer_of_shared("set_state").set_state(state); }

void PyFrameRing::unshare() const {
  check_writable(*ring_, "unshare");
  if (SharedRing* mapping = shared()) mapping->unshare();
}

py::object PyFrameRing::state() const {
  return shared() ? py::cast(shared()->state()) : py::object(py::none());
}

py::object PyFrameRing::producer_pid() const {
  return shared() ? py::cast(shared()->producer_pid()) : py::object(py::none());
}

bool PyFrameRing::producer_alive() const { return shared() ? shared()->producer_alive() : true; }

py::object PyFrameRing::recording_stats() const {
  const SharedRing* mapping = shared();
  if (mapping == nullptr || !published(mapping->header().recording)) return py::none();
  return stats_dict(audioring::recording_stats(mapping->header().recording));
}

py::object PyFrameRing::recording_anchor() const {
  const SharedRing* mapping = shared();
  if (mapping == nullptr || !published(mapping->header().recording)) return py::none();
  return anchor_tuple(audioring::recording_anchor(mapping->header().recording));
}

bool PyFrameRing::converting() const {
  return shared() != nullptr && conversion(shared()->header().recording) != nullptr;
}

double PyFrameRing::conversion_delay() const {
  const SharedRing* mapping = shared();
  const ConverterCounters* counters = mapping ? conversion(mapping->header().recording) : nullptr;
  return counters != nullptr ? counters->delay.load(std::memory_order_relaxed) : 0.0;
}

void register_ring_enums(py::module_& m) {
  py::enum_<MemoryRequest>(m, "MemoryRequest", "How a ring's memory is made: best tries memfd, shm, then plain.")
      .value("best", MemoryRequest::best)
      .value("memfd", MemoryRequest::memfd)
      .value("shm", MemoryRequest::shm)
      .value("plain", MemoryRequest::plain);
  py::enum_<MemoryKind>(m, "MemoryKind", "How a ring's memory was made.")
      .value("memfd", MemoryKind::memfd)
      .value("shm", MemoryKind::shm)
      .value("plain", MemoryKind::plain);
  py::enum_<WaitStatus>(m, "WaitStatus", "Why FrameRing.wait_for_frame() returned.")
      .value("ready", WaitStatus::ready)
      .value("timeout", WaitStatus::timeout)
      .value("interrupted", WaitStatus::interrupted);
  py::enum_<SharedState>(m, "SharedState", "What a shared recording's producer says it is doing (set_state()).")
      .value("idle", SharedState::idle)
      .value("recording", SharedState::recording)
      .value("stopped", SharedState::stopped)
      .value("closed", SharedState::closed);

  m.def("available_memory", &available_memory,
        "Bytes of memory available now (Linux: MemAvailable, or the room under a memory cgroup's limit if that "
        "is less), 0 if unknown.");
  m.def("fork_generation", &ForkGuard::current,
        "How many forks separate this process from the one that loaded the module (0 there).");
}

void register_ring(py::module_& m) {
  using R = PyFrameRing;
  py::class_<R>(m, "FrameRing", "Lock-free single-producer ring of interleaved frames (private: use audioring.Ring).")
      .def(py::init<std::int64_t, std::int64_t, const py::dtype&, MemoryRequest, const std::optional<std::string>&,
                    std::int64_t>(),
           py::arg("channels"), py::arg("capacity"), py::arg("dtype"), py::arg("memory") = MemoryRequest::best,
           py::arg("share") = py::none(), py::arg("sampling_rate") = 0,
           "share=None: a ring of this process. share='name': a ring shared by that name with this user's other "
           "processes (Linux; attach_ring(name) reads it), which this object produces; the name is unlinked "
           "by unshare() or when the ring and every array of it are gone. sampling_rate: recorded for "
           "readers (0 = unknown).")
      .def_property_readonly("channels", &R::channels)
      .def_property_readonly("dtype", &R::dtype)
      .def_property_readonly("capacity", &R::capacity)
      .def_property_readonly("memory", &R::memory)
      .def_property_readonly("mirrored", &R::mirrored)
      .def_property_readonly("frames_written", &R::frames_written)
      .def_property_readonly("first_frame", &R::first_frame,
                             "The current recording's first frame: one past the zeros of the latest clear() (0 "
                             "before any). Read it after intact_from() to know a window holds no cleared frames.")
      .def("write", &R::write, py::arg("block"))
      .def("window", &R::window, py::arg("start"), py::arg("frames"),
           "Zero-copy view of frames [start, start + frames); check is_intact() after using it.")
      .def("intact_from", &R::intact_from, py::arg("start"), "Whether no frame at or after `start` has been overwritten.")
      .def("clear", &R::clear)
      .def("wait_for_frame", &R::wait_for_frame, py::arg("frame"), py::arg("timeout"), py::arg("interrupts_seen"),
           "Blocks, without the GIL, until frames_written >= frame; returns a WaitStatus (interrupted: "
           "interrupt_count differs from interrupts_seen: interrupt() in this process or, for a shared ring, "
           "a state change; an attached ring also once its producer is found gone, within 250 ms). Signal "
           "handlers run within 20 ms while it waits; an exception they raise ends the wait. timeout: seconds "
           "(None = forever), already checked by the caller.")
      .def_property_readonly("forked", &R::forked,
                             "Whether this process is a forked child of the one that made the ring (the ring is "
                             "then the parent's).")
      .def_property_readonly("interrupt_count", &R::interrupt_count)
      .def("interrupt", &R::interrupt)
      // ---- sharing ----
      .def_property_readonly("shared_name", &R::shared_name,
                             "The name this ring is shared by (produced or attached), or None.")
      .def_property_readonly("attached", &R::attached,
                             "Whether this is a read-only view of another process's shared recording (attach_ring()).")
      .def_property_readonly("sampling_rate", &R::sampling_rate, "Frames per second; 0 = unknown.")
      .def("set_state", &R::set_state, py::arg("state"),
           "Producer: store the recording's state and wake every waiter in every process.")
      .def("unshare", &R::unshare,
           "Producer: unlink the shared name now (readers keep what they mapped and see the producer gone). "
           "Idempotent; nothing for a ring that is not shared.")
      .def_property_readonly("state", &R::state, "A shared recording's SharedState, or None.")
      .def_property_readonly("producer_pid", &R::producer_pid, "The process that produces a shared recording, or None.")
      .def("producer_alive", &R::producer_alive,
           "Attached: whether the producer still holds the recording's lock and its process exists. Producer: "
           "whether it still shares the name. A ring that is not shared: True.")
      .def("recording_stats", &R::recording_stats,
           "A shared recording's stats() as its producer computes them, or None (no Capture counts there).")
      .def("recording_anchor", &R::recording_anchor,
           "A shared recording's time anchor (adc_time, frame) as its producer computes it, or None.")
      .def_property_readonly("converting", &R::converting,
                             "Whether a shared recording converts its device's frames (a Converter counts in its "
                             "header).")
      .def_property_readonly("conversion_delay", &R::conversion_delay,
                             "A converting shared recording's resampler delay in output frames, as last measured; "
                             "else 0.");
}

}  // namespace audioring::bindings
