#include "bindings/watcher_bindings.hpp"

#include <cstdint>
#include <memory>

#include "audioring/frame_watcher.hpp"
#include "bindings/ring_bindings.hpp"

namespace audioring::bindings {
namespace {

using Bell = FrameWatcher::Bell;

std::shared_ptr<FrameWatcher> make_watcher(const PyFrameRing& ring) {
  // It waits on the ring as wait_for_frame() does: the same process rule.
  check_not_forked(*ring.ring(), "this ring");
  return std::make_shared<FrameWatcher>(ring.ring());
}

FrameRing::Frame bell_frames_written(const Bell& bell) { return bell.ring()->written(); }
std::uint64_t bell_interrupt_count(const Bell& bell) { return bell.ring()->interrupts(); }

}  // namespace

void register_watcher(py::module_& m) {
  // Every method holds the GIL only for a short lock (never while the
  // watcher's thread waits): the thread needs neither the GIL nor Python.
  py::class_<Bell, std::shared_ptr<Bell>>(
      m, "WatcherBell", "One event loop's bell on a FrameWatcher: a descriptor to watch for readability.")
      .def_property_readonly("fd", &Bell::fd, "Readable once rung (-1 once closed).")
      .def("arm", &Bell::arm, py::arg("frame"), py::arg("interrupts_seen"),
           "Ring when frames_written >= frame, or once interrupt_count differs from interrupts_seen; "
           "returns True if it rang at once.")
      .def("disarm", &Bell::disarm)
      .def("clear", &Bell::clear, "Make the descriptor unreadable until the next ring (call before looking).")
      .def("close", &Bell::close, "Leave the watcher and close the descriptor (stop watching it first).")
      .def_property_readonly("watcher_closed", &Bell::watcher_closed)
      .def_property_readonly("frames_written", &bell_frames_written)
      .def_property_readonly("interrupt_count", &bell_interrupt_count);

  py::class_<FrameWatcher, std::shared_ptr<FrameWatcher>>(
      m, "FrameWatcher", "A native thread that rings event loops' bells when a ring's frames arrive.")
      .def(py::init(&make_watcher), py::arg("ring"))
      .def("bell", &FrameWatcher::bell, "A new bell (its own descriptor) for one event loop.")
      .def("close", &FrameWatcher::close, py::call_guard<py::gil_scoped_release>(),
           "Ring every bell, stop the thread and join it.")
      .def_property_readonly("closed", &FrameWatcher::closed)
      .def_property_readonly("running", &FrameWatcher::running, "Whether the thread runs (it starts lazily).")
      .def_property_readonly("forked", &FrameWatcher::forked);
}

}  // namespace audioring::bindings
