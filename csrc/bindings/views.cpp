#include "bindings/views.hpp"

#include <climits>
#include <cstring>
#include <new>
#include <string>

#include "bindings/ring_bindings.hpp"

namespace audioring::bindings {
namespace {

using Frame = FrameRing::Frame;
using py::detail::npy_api;
using py::detail::PyArray_Proxy;

// Set once by register_views(); strong references for the life of the process.
PyTypeObject* window_type = nullptr;
PyObject* recorder_closed_error = nullptr;
PyObject* overrun_error = nullptr;  // audioring.OverrunError, set by _set_overrun_error(); RuntimeError until then
PyObject* numpy_integer = nullptr;  // numpy.integer: takes the reference's size messages, like int
PyObject* numpy_bool = nullptr;     // numpy.bool_: accepted as a flag, like bool

// ---- Window -------------------------------------------------------------------

struct WindowObject {
  PyObject_HEAD
  std::shared_ptr<const FrameRing> ring;  // never null: keeps the memory alive
  Frame start;                            // absolute number of the frame at `data`
  Frame frames;                           // frames the window spans, 1..capacity
  const std::byte* data;                  // == ring->frame_address(start)
};

void window_dealloc(PyObject* self) {
  reinterpret_cast<WindowObject*>(self)->ring.~shared_ptr();
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);  // instances of heap types own a reference to their type
}

PyObject* refuse_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyErr_Format(PyExc_TypeError, "%s objects are made by audioring's reads only", type->tp_name);
  return nullptr;
}

PyObject* window_start(PyObject* self, void*) { return PyLong_FromLongLong(reinterpret_cast<WindowObject*>(self)->start); }
PyObject* window_frames(PyObject* self, void*) {
  return PyLong_FromLongLong(reinterpret_cast<WindowObject*>(self)->frames);
}

PyGetSetDef window_getset[] = {
    {"start", window_start, nullptr, "Absolute frame number of the window's first frame.", nullptr},
    {"frames", window_frames, nullptr, "Frames the window spans.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot window_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(window_dealloc)},
    {Py_tp_new, reinterpret_cast<void*>(refuse_new)},
    {Py_tp_getset, window_getset},
    {Py_tp_doc, const_cast<char*>("The base object of a zero-copy array: keeps the ring memory alive and records "
                                  "the absolute frame numbers the array was read from.")},
    {0, nullptr},
};

PyType_Spec window_spec = {"audioring._core.Window", sizeof(WindowObject), 0, Py_TPFLAGS_DEFAULT, window_slots};

// A new reference to a read-only (frames, channels) array over the ring, or
// nullptr with a Python error set. `descr` is borrowed.
PyObject* new_view(const std::shared_ptr<const FrameRing>& ring, PyObject* descr, std::int64_t channels,
                   std::int64_t item, Frame start, Frame frames) {
  auto* window = reinterpret_cast<WindowObject*>(window_type->tp_alloc(window_type, 0));
  if (window == nullptr) return nullptr;
  new (&window->ring) std::shared_ptr<const FrameRing>(ring);
  window->start = start;
  window->frames = frames;
  window->data = ring->frame_address(start);

  const npy_api& api = npy_api::get();
  Py_intptr_t shape[2] = {static_cast<Py_intptr_t>(frames), static_cast<Py_intptr_t>(channels)};
  Py_intptr_t strides[2] = {static_cast<Py_intptr_t>(ring->frame_bytes()), static_cast<Py_intptr_t>(item)};
  Py_INCREF(descr);  // PyArray_NewFromDescr steals it
  // flags = 0 with caller-provided data: not writeable (numpy derives the
  // contiguity and alignment flags itself).
  PyObject* array = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, 2, shape, strides,
                                              const_cast<std::byte*>(window->data), 0, nullptr);
  if (array == nullptr) {
    Py_DECREF(window);
    return nullptr;
  }
  if (api.PyArray_SetBaseObject_(array, reinterpret_cast<PyObject*>(window)) != 0) {  // steals window, even on error
    Py_DECREF(array);
    return nullptr;
  }
  return array;
}

// ---- what a view covers ---------------------------------------------------------

// The frames a view of this ring really holds, judged from its data pointer,
// shape and strides: a reversed, strided or sliced view (of a view) covers
// other frames than the window it came from.
struct Coverage {
  Frame lowest;  // the oldest frame any element lies in: intact() is asked about it
  Frame first;   // the frame of the array's first element (its first row)
};

// |a * b| and a + b, failing instead of overflowing (as_strided can make any strides).
bool checked_mul(std::int64_t a, std::int64_t b, std::int64_t* out) {
  if (a != 0 && (b > INT64_MAX / (a < 0 ? -a : a) || b < -(INT64_MAX / (a < 0 ? -a : a)))) return false;
  *out = a * b;
  return true;
}
bool checked_add(std::int64_t a, std::int64_t b, std::int64_t* out) {
  if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b)) return false;
  *out = a + b;
  return true;
}

// Fills `out` and returns true, or returns false with TypeError/ValueError set.
bool coverage(const std::shared_ptr<const FrameRing>& ring, PyObject* array, Coverage* out) {
  const npy_api& api = npy_api::get();
  if (!api.PyArray_Check_(array)) {
    const char* type_name = Py_TYPE(array)->tp_name;  // "module.Name" for non-builtin types; Python's __name__ is "Name"
    const char* dot = std::strrchr(type_name, '.');
    PyErr_Format(PyExc_TypeError, "array must be a numpy.ndarray, got %s", dot != nullptr ? dot + 1 : type_name);
    return false;
  }
  // numpy collapses a view of a view only while the bases share a type, so a
  // slice of one of our arrays has that array, not the Window, as its base:
  // follow the chain of arrays down to the Window.
  PyObject* base = array;
  while (base != nullptr && api.PyArray_Check_(base)) base = reinterpret_cast<PyArray_Proxy*>(base)->base;
  if (base == nullptr || Py_TYPE(base) != window_type ||
      reinterpret_cast<WindowObject*>(base)->ring.get() != ring.get()) {
    PyErr_SetString(PyExc_ValueError, "array was not returned by a zero-copy read of this ring");
    return false;
  }
  const auto* window = reinterpret_cast<WindowObject*>(base);
  const auto* view = reinterpret_cast<const PyArray_Proxy*>(array);
  const auto frame_bytes = static_cast<std::int64_t>(ring->frame_bytes());
  const std::int64_t window_bytes = window->frames * frame_bytes;

  // Byte offsets from the window's first byte: of the first element, and the
  // lowest and highest (exclusive) bytes any element occupies.
  const auto at = reinterpret_cast<std::uintptr_t>(view->data);
  const auto from = reinterpret_cast<std::uintptr_t>(window->data);
  const std::uintptr_t distance = at >= from ? at - from : from - at;
  bool inside = distance <= static_cast<std::uintptr_t>(window_bytes);
  const std::int64_t offset = inside ? (at >= from ? 1 : -1) * static_cast<std::int64_t>(distance) : 0;
  std::int64_t low = offset;
  std::int64_t high = offset;
  bool empty = false;
  for (int d = 0; d < view->nd && inside; ++d) {
    const std::int64_t n = view->dimensions[d];
    if (n == 0) empty = true;
    std::int64_t span = 0;
    if (n > 1) inside = checked_mul(view->strides[d], n - 1, &span) && checked_add(span < 0 ? low : high, span,
                                                                                     span < 0 ? &low : &high);
  }
  if (inside && !empty) {
    const auto item = static_cast<std::int64_t>(py::reinterpret_borrow<py::dtype>(view->descr).itemsize());
    inside = checked_add(high, item, &high) && low >= 0 && high <= window_bytes;
  } else if (inside) {
    inside = offset >= 0;  // an empty array holds nothing; its pointer must still lie in the window
  }
  if (!inside) {
    PyErr_SetString(PyExc_ValueError,
                    "array reaches outside the frames it was read from (made with as_strided or a "
                    "similar trick?); its frames cannot be judged");
    return false;
  }
  out->first = window->start + offset / frame_bytes;
  out->lowest = empty ? out->first : window->start + low / frame_bytes;
  return true;
}

// ---- readers ----------------------------------------------------------------------

struct ReaderObject {
  PyObject_HEAD
  std::shared_ptr<const FrameRing> ring;  // null until _attach()
  PyObject* descr;                        // the ring's dtype (strong reference); null until _attach()
  std::int64_t channels;
  std::int64_t item;                      // bytes per sample
  Frame limit;                            // reads take 1..limit frames
  PyObject* closed_message;               // null while open; _close(message)'s str: reads raise RecorderClosedError
  std::uint64_t generation;               // the ring's ForkGuard generation: reads refuse in a forked child
};

// Whether this process is a forked child of the one that made the reader's
// ring: one load and a compare, in every read (see audioring/fork_guard.hpp).
bool forked(const ReaderObject* reader) { return reader->generation != ForkGuard::current(); }

// Sets RuntimeError for a read in a forked child. Returns nullptr.
PyObject* refuse_forked(PyObject* self, const char* method) {
  const char* type_name = Py_TYPE(self)->tp_name;
  const char* dot = std::strrchr(type_name, '.');
  const char* name = dot != nullptr ? dot + 1 : type_name;
  PyErr_Format(PyExc_RuntimeError,
               "%s.%s() in a forked child process: this %s belongs to the parent process, and its frame "
               "counters no longer follow the parent's recording here (only the sample memory is shared). "
               "Create the %s in the child process instead",
               name, method, name, name);
  return nullptr;
}

ReaderObject* as_reader(PyObject* self) { return reinterpret_cast<ReaderObject*>(self); }

PyObject* reader_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) return nullptr;
  new (&as_reader(self)->ring) std::shared_ptr<const FrameRing>();
  return self;
}

void reader_dealloc(PyObject* self) {
  ReaderObject* reader = as_reader(self);
  reader->ring.~shared_ptr();
  Py_XDECREF(reader->descr);
  Py_XDECREF(reader->closed_message);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

bool attached(ReaderObject* reader) {
  if (reader->ring) return true;
  PyErr_Format(PyExc_RuntimeError, "%s was not initialized (its __init__ did not finish)", Py_TYPE(reader)->tp_name);
  return false;
}

// How a read names its size argument and reports it out of range.
struct ReadStyle {
  const char* method;
  const char* argument;
  bool reference_messages;  // tflite-support's ValueError texts for int sizes out of range
};
constexpr ReadStyle kRecordRead{"read", "size", true};
constexpr ReadStyle kRingLatest{"latest", "frames", false};

// audioring._validate.as_count, imported at first use (not at module init:
// _validate imports this module). Kept for the life of the process.
PyObject* as_count_function() {
  static PyObject* function = nullptr;
  if (function == nullptr) {
    PyObject* validate = PyImport_ImportModule("audioring._validate");
    if (validate == nullptr) return nullptr;
    function = PyObject_GetAttrString(validate, "as_count");
    Py_DECREF(validate);
  }
  return function;
}

// The frame count argument in 1..limit. Its rule (bools refused, anything
// with __index__ taken, the messages) is audioring._validate.as_count's, the
// one check of a count in the package: an int in range is taken here without
// asking it (the common case, so a read makes no Python call), and so are the
// reference's messages for an int out of range; anything else goes to as_count.
// Returns false with TypeError/ValueError set.
bool frames_argument(PyObject* value, const ReadStyle& style, Frame limit, Frame* out) {
  if ((PyLong_Check(value) && !PyBool_Check(value)) || PyObject_IsInstance(value, numpy_integer) == 1) {
    PyObject* number = PyNumber_Index(value);
    if (number == nullptr) return false;
    int overflow = 0;
    const long long frames = PyLong_AsLongLongAndOverflow(number, &overflow);
    Py_DECREF(number);
    if (overflow == 0 && frames >= 1 && frames <= limit) {
      *out = frames;
      return true;
    }
    if (style.reference_messages) {
      const bool too_many = overflow > 0 || (overflow == 0 && frames > limit);
      PyErr_SetString(PyExc_ValueError,
                      too_many ? "Cannot read more samples than the size of the buffer." : "Size must be positive.");
      return false;
    }
  }
  PyErr_Clear();  // a failed isinstance() above: as_count decides
  PyObject* as_count = as_count_function();
  if (as_count == nullptr) return false;
  PyObject* counted = PyObject_CallFunction(as_count, "OsiL", value, style.argument, 1, static_cast<long long>(limit));
  if (counted == nullptr) return false;
  *out = PyLong_AsLongLong(counted);  // in 1..limit: as_count checked it
  Py_DECREF(counted);
  return true;
}

// `copy` as a bool (numpy's included), the one check of it: truthiness is not
// enough (copy="no" would copy, and an array's truth raises an error that names nothing).
bool flag_argument(PyObject* value, bool* out) {
  if (value == nullptr || value == Py_False) {
    *out = false;
    return true;
  }
  if (value == Py_True || PyObject_IsInstance(value, numpy_bool) == 1) {
    const int truth = PyObject_IsTrue(value);
    *out = truth == 1;
    return truth >= 0;
  }
  PyErr_Format(PyExc_TypeError, "copy must be True or False, got %R", value);
  return false;
}

// An owned, writeable copy of the latest `frames` frames, validated against overwrite.
PyObject* latest_copy(ReaderObject* reader, Frame frames) {
  const npy_api& api = npy_api::get();
  Py_intptr_t shape[2] = {static_cast<Py_intptr_t>(frames), static_cast<Py_intptr_t>(reader->channels)};
  Py_INCREF(reader->descr);  // stolen
  PyObject* out = api.PyArray_NewFromDescr_(api.PyArray_Type_, reader->descr, 2, shape, nullptr, nullptr, 0, nullptr);
  if (out == nullptr) return nullptr;
  void* to = reinterpret_cast<PyArray_Proxy*>(out)->data;
  const FrameRing& ring = *reader->ring;
  // Retry while the producer overwrites the window during the copy: each try
  // starts from the newest frames, so it succeeds as soon as one copy takes
  // less time than refilling the ring's spare frames.
  Frame first = 0;
  for (int attempt = 0; attempt < 64; ++attempt) {
    PyThreadState* released = PyEval_SaveThread();
    first = ring.written() - frames;
    const bool ok = ring.copy(first, frames, to);
    PyEval_RestoreThread(released);
    if (ok) return out;
  }
  Py_DECREF(out);
  // An OverrunError (a RuntimeError): the reader fell behind the producer, as
  // a stream's consumer does. frames_lost: the frames of the last try that
  // were overwritten; position: the newest frame when it gave up.
  const Frame newest = ring.written();
  const Frame overwritten = newest - ring.capacity() - first;
  const Frame lost = overwritten < frames ? overwritten : frames;
  PyObject* error_type = overrun_error != nullptr ? overrun_error : PyExc_RuntimeError;
  PyObject* error = PyObject_CallFunction(
      error_type, "LLs", static_cast<long long>(lost > 0 ? lost : 1), static_cast<long long>(newest),
      "the producer overwrote the frames 64 times while they were being copied; give the ring more "
      "capacity than the read size (AudioRecord: more headroom)");
  if (error != nullptr) {
    PyErr_SetObject(error_type, error);
    Py_DECREF(error);
  }
  return nullptr;
}

PyObject* reader_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                      const ReadStyle& style) {
  ReaderObject* reader = as_reader(self);
  PyObject* frames_value = nargs >= 1 ? args[0] : nullptr;
  PyObject* copy_value = nullptr;
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes 1 positional argument but %zd were given", style.method, nargs);
    return nullptr;
  }
  const Py_ssize_t keywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t i = 0; i < keywords; ++i) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, i);
    if (PyUnicode_CompareWithASCIIString(name, "copy") == 0) {
      copy_value = args[nargs + i];
    } else if (frames_value == nullptr && PyUnicode_CompareWithASCIIString(name, style.argument) == 0) {
      frames_value = args[nargs + i];
    } else {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument '%U'", style.method, name);
      return nullptr;
    }
  }
  if (frames_value == nullptr) {
    PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", style.method, style.argument);
    return nullptr;
  }
  if (!attached(reader)) return nullptr;
  Frame frames;
  if (!frames_argument(frames_value, style, reader->limit, &frames)) return nullptr;
  if (reader->closed_message != nullptr) {
    PyErr_SetObject(recorder_closed_error, reader->closed_message);
    return nullptr;
  }
  if (forked(reader)) return refuse_forked(self, style.method);
  bool copy;
  if (!flag_argument(copy_value, &copy)) return nullptr;
  if (copy) return latest_copy(reader, frames);
  const FrameRing& ring = *reader->ring;
  return new_view(reader->ring, reader->descr, reader->channels, reader->item, ring.written() - frames, frames);
}

PyObject* record_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return reader_read(self, args, nargs, kwnames, kRecordRead);
}

PyObject* ring_latest(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return reader_read(self, args, nargs, kwnames, kRingLatest);
}

PyObject* reader_is_intact(PyObject* self, PyObject* array) {
  ReaderObject* reader = as_reader(self);
  Coverage covered;
  if (!attached(reader)) return nullptr;
  if (forked(reader)) return refuse_forked(self, "is_intact");
  if (!coverage(reader->ring, array, &covered)) return nullptr;
  return PyBool_FromLong(reader->ring->intact(covered.lowest));
}

// frame_of(array) and its first name, start_frame(array): one method, each
// name saying itself when it refuses in a forked child.
PyObject* frame_of(PyObject* self, PyObject* array, const char* method) {
  ReaderObject* reader = as_reader(self);
  Coverage covered;
  if (!attached(reader)) return nullptr;
  if (forked(reader)) return refuse_forked(self, method);
  if (!coverage(reader->ring, array, &covered)) return nullptr;
  return PyLong_FromLongLong(covered.first);
}

PyObject* reader_frame_of(PyObject* self, PyObject* array) { return frame_of(self, array, "frame_of"); }

PyObject* reader_start_frame(PyObject* self, PyObject* array) { return frame_of(self, array, "start_frame"); }

// _attach(ring: FrameRing, limit: int): what the reads read, and their bound.
PyObject* reader_attach(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_attach(ring, limit) takes 2 arguments");
    return nullptr;
  }
  ReaderObject* reader = as_reader(self);
  try {
    const PyFrameRing& ring = py::handle(args[0]).cast<const PyFrameRing&>();
    const Frame limit = py::handle(args[1]).cast<Frame>();
    if (limit < 1 || limit > ring.ring()->capacity()) throw py::value_error("limit must be 1..capacity");
    PyObject* descr = ring.dtype().inc_ref().ptr();
    Py_XDECREF(reader->descr);
    reader->descr = descr;
    reader->ring = ring.ring();
    reader->channels = ring.channels();
    reader->item = static_cast<std::int64_t>(ring.dtype().itemsize());
    reader->limit = limit;
    Py_CLEAR(reader->closed_message);
    reader->generation = ring.ring()->owner_generation();
  } catch (py::error_already_set& error) {
    error.restore();
    return nullptr;
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_TypeError, error.what());
    return nullptr;
  }
  Py_RETURN_NONE;
}

// _close(message): reads raise RecorderClosedError(message) from now on;
// each kind of reader says what to do about it in its own words.
PyObject* reader_close(PyObject* self, PyObject* message) {
  if (!PyUnicode_Check(message)) {
    PyErr_SetString(PyExc_TypeError, "_close(message): message must be a str");
    return nullptr;
  }
  ReaderObject* reader = as_reader(self);
  Py_INCREF(message);
  Py_XSETREF(reader->closed_message, message);
  Py_RETURN_NONE;
}

#define AUDIORING_IS_INTACT_DOC                                                                          \
  "is_intact($self, array, /)\n--\n\n"                                                                   \
  "Whether none of the frames a zero-copy ``array`` holds has been overwritten, in O(1).\n\n"           \
  "Any view numpy makes of a zero-copy array (slices on either axis, reversed or strided,\n"            \
  "views of views) is judged by the frames it actually covers.\n\n"                                     \
  "Raises\n------\nTypeError\n    If ``array`` is not a numpy array.\n"                                  \
  "ValueError\n    If ``array`` did not come from a zero-copy read of this object, or reaches\n"        \
  "    outside the frames it was read from.\n"

#define AUDIORING_FRAME_OF_DOC                                                                           \
  "frame_of($self, array, /)\n--\n\n"                                                                    \
  "The absolute frame number of a zero-copy ``array``'s first row (its first element).\n\n"             \
  "Not to be confused with ``first_frame``, the current recording's first frame.\n\n"                   \
  "Raises\n------\nTypeError\n    If ``array`` is not a numpy array.\n"                                  \
  "ValueError\n    If ``array`` did not come from a zero-copy read of this object, or reaches\n"        \
  "    outside the frames it was read from.\n"

#define AUDIORING_START_FRAME_DOC                                                                        \
  "start_frame($self, array, /)\n--\n\n"                                                                 \
  "The same as :meth:`frame_of` (its first name, kept): the absolute frame number of a\n"               \
  "zero-copy ``array``'s first row.\n"

PyMethodDef record_reader_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(record_read)),
     METH_FASTCALL | METH_KEYWORDS,
     "read($self, size, *, copy=False)\n--\n\n"
     "Return the latest ``size`` frames, oldest first, shape ``(size, channels)``.\n\n"
     "Frames not recorded yet read as zeros (as in the reference).\n\n"
     "Parameters\n----------\n"
     "size : int\n    Frames to return, ``1..buffer_size``.\n"
     "copy : bool, optional\n"
     "    ``False`` (default): a read-only zero-copy view, in O(1) whatever the size; it\n"
     "    stays intact for at least ``headroom`` more frames (see :meth:`is_intact`).\n"
     "    ``True``: an owned, writeable copy, validated against overwrite.\n\n"
     "Raises\n------\n"
     "ValueError\n    If ``size > buffer_size`` or ``size <= 0`` (the reference's messages).\n"
     "TypeError\n    If ``size`` is not an integer or ``copy`` not a bool.\n"
     "RecorderClosedError\n    If the recorder is closed.\n"},
    {"is_intact", reader_is_intact, METH_O, AUDIORING_IS_INTACT_DOC},
    {"frame_of", reader_frame_of, METH_O, AUDIORING_FRAME_OF_DOC},
    {"start_frame", reader_start_frame, METH_O, AUDIORING_START_FRAME_DOC},
    {"_attach", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(reader_attach)), METH_FASTCALL,
     "_attach(ring, limit): read from `ring` (a FrameRing), at most `limit` frames at a time."},
    {"_close", reader_close, METH_O, "_close(message): reads raise RecorderClosedError(message) from now on."},
    {nullptr, nullptr, 0, nullptr},
};

PyMethodDef ring_reader_methods[] = {
    {"latest", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ring_latest)),
     METH_FASTCALL | METH_KEYWORDS,
     "latest($self, frames, *, copy=False)\n--\n\n"
     "Return the latest ``frames`` frames, oldest first, shape ``(frames, channels)``.\n\n"
     "Frames never written read as zeros.\n\n"
     "Parameters\n----------\n"
     "frames : int\n    How many frames, ``1..capacity``.\n"
     "copy : bool, optional\n"
     "    ``False`` (default): a read-only zero-copy view, made in O(1); check\n"
     "    :meth:`is_intact` after using it if the producer may have lapped it.\n"
     "    ``True``: an owned, writeable copy, validated against overwrite.\n\n"
     "Raises\n------\n"
     "TypeError, ValueError\n"
     "    If ``frames`` is not an integer in ``1..capacity``, or ``copy`` not a bool.\n"},
    {"is_intact", reader_is_intact, METH_O, AUDIORING_IS_INTACT_DOC},
    {"frame_of", reader_frame_of, METH_O, AUDIORING_FRAME_OF_DOC},
    {"start_frame", reader_start_frame, METH_O, AUDIORING_START_FRAME_DOC},
    {"_attach", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(reader_attach)), METH_FASTCALL,
     "_attach(ring, limit): read from `ring` (a FrameRing), at most `limit` frames at a time."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot record_reader_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(reader_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(reader_dealloc)},
    {Py_tp_methods, record_reader_methods},
    {Py_tp_doc, const_cast<char*>("Native base of audioring.AudioRecord: the zero-copy reads.")},
    {0, nullptr},
};

PyType_Slot ring_reader_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(reader_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(reader_dealloc)},
    {Py_tp_methods, ring_reader_methods},
    {Py_tp_doc, const_cast<char*>("Native base of audioring.Ring: the zero-copy reads.")},
    {0, nullptr},
};

PyType_Spec record_reader_spec = {"audioring._core.RecordReader", sizeof(ReaderObject), 0,
                                  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, record_reader_slots};
PyType_Spec ring_reader_spec = {"audioring._core.RingReader", sizeof(ReaderObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, ring_reader_slots};

py::object make_type(PyType_Spec& spec) {
  PyObject* type = PyType_FromSpec(&spec);
  if (type == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(type);
}

}  // namespace

py::array make_view(const std::shared_ptr<const FrameRing>& ring, const py::dtype& dtype, std::int64_t channels,
                    Frame start, Frame frames) {
  PyObject* array = new_view(ring, dtype.ptr(), channels, static_cast<std::int64_t>(dtype.itemsize()), start, frames);
  if (array == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::array>(array);
}

// The error a lapped read(copy=True) raises, set once by audioring._errors.
void set_overrun_error(const py::object& type) {
  if (!PyType_Check(type.ptr()) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(type.ptr()),
                                                       reinterpret_cast<PyTypeObject*>(PyExc_RuntimeError))) {
    throw py::type_error("_set_overrun_error() needs a RuntimeError subclass");
  }
  Py_XDECREF(overrun_error);
  overrun_error = type.inc_ref().ptr();  // kept for the life of the process
}

void register_views(py::module_& m) {
  m.def("_set_overrun_error", &set_overrun_error,
        "_set_overrun_error(type): the error a lapped read(copy=True) raises: type(frames_lost, position, message).");
  py::module_ numpy = py::module_::import("numpy");
  numpy_integer = py::object(numpy.attr("integer")).release().ptr();
  numpy_bool = py::object(numpy.attr("bool_")).release().ptr();

  py::object window = make_type(window_spec);
  window_type = reinterpret_cast<PyTypeObject*>(window.inc_ref().ptr());  // kept for the life of the process
  m.attr("Window") = window;
  m.attr("RecordReader") = make_type(record_reader_spec);
  m.attr("RingReader") = make_type(ring_reader_spec);

  recorder_closed_error = PyErr_NewExceptionWithDoc("audioring.RecorderClosedError",
                                                    "The recorder was closed; it cannot record or be read any more.",
                                                    PyExc_RuntimeError, nullptr);
  if (recorder_closed_error == nullptr) throw py::error_already_set();
  m.attr("RecorderClosedError") = py::handle(recorder_closed_error);  // registers a second reference
}

}  // namespace audioring::bindings
