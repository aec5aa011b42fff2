// Python binding of FrameWatcher: audioring._core.FrameWatcher and its
// WatcherBell, the native half of the asyncio streams (python/audioring/_watch.py).
#pragma once

#include <pybind11/pybind11.h>

namespace audioring::bindings {

void register_watcher(pybind11::module_& m);

}  // namespace audioring::bindings
