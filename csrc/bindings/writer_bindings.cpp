#include "bindings/writer_bindings.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "audioring/file_format.hpp"
#include "audioring/file_writer.hpp"
#include "bindings/ring_bindings.hpp"

namespace audioring::bindings {
namespace {

py::list formats_list() {
  py::list formats;
  for (const FileFormatInfo& format : file_formats()) {
    py::dict defaults;
    for (const SampleFormatInfo& samples : kSampleFormats) {
      const std::string& subtype = format.default_subtype[static_cast<std::size_t>(samples.format)];
      defaults[samples.name] = subtype.empty() ? py::object(py::none()) : py::object(py::str(subtype));
    }
    py::dict info;
    info["name"] = format.name;
    info["description"] = format.description;
    info["streams"] = format.streams;
    info["max_data_bytes"] = format.max_data_bytes;
    info["max_channels"] = format.max_channels;
    info["broadcast"] = format.broadcast;
    info["subtypes"] = format.subtypes;
    info["default_subtypes"] = defaults;
    formats.append(info);
  }
  return formats;
}

const char* end_name(WriterEnd end) {
  switch (end) {
    case WriterEnd::running:
      return "running";
    case WriterEnd::frames_done:
      return "frames_done";
    case WriterEnd::finished:
      return "finished";
    case WriterEnd::restarted:
      return "restarted";
    case WriterEnd::producer_stopped:
      return "producer_stopped";
    case WriterEnd::producer_lost:
      return "producer_lost";
    case WriterEnd::error:
      return "error";
  }
  return "unknown";
}

// Arguments are checked in Python (_file_writer.py); what reaches here is
// only re-checked where a mistake would be undefined behaviour.
std::unique_ptr<FileWriter> make_writer(const PyFrameRing& ring, std::string path, int fd, bool close_fd,
                                        std::string format,
                                        std::string subtype, SampleFormat samples, int rate,
                                        FrameRing::Frame start, std::int64_t frames, std::int64_t split_frames,
                                        std::string part_prefix, std::string part_suffix, bool pending,
                                        std::string gap_log, double start_time) {
  check_not_forked(*ring.ring(), "this ring");
  FileWriterConfig config;
  config.file.path = std::move(path);
  config.file.fd = fd;
  config.file.close_fd = close_fd;
  config.file.format = std::move(format);
  config.file.subtype = std::move(subtype);
  config.file.channels = static_cast<int>(ring.channels());
  config.file.rate = rate;
  config.file.samples = samples;
  config.file.start_time = start_time;
  config.start = start;
  config.frames = frames;
  config.split_frames = split_frames;
  config.part_prefix = std::move(part_prefix);
  config.part_suffix = std::move(part_suffix);
  config.pending = pending;
  config.gap_log = std::move(gap_log);
  py::gil_scoped_release released;  // creating a file may block (a slow or network disk)
  return std::make_unique<FileWriter>(ring.ring(), std::move(config));
}

py::list gap_list(const FileWriter& writer) {
  py::list gaps;
  for (const FileGap& gap : writer.gaps()) gaps.append(py::make_tuple(gap.frame, gap.length, gap.file));
  return gaps;
}

std::string writer_end(const FileWriter& writer) { return end_name(writer.end()); }

}  // namespace

void register_writer(py::module_& m) {
  py::register_exception<FileError>(m, "FileError", PyExc_OSError);
  m.def("file_formats", &formats_list, "The formats a FileWriter writes: a list of dicts (file_format.hpp).");
  m.def("subtype_bytes", &subtype_bytes, py::arg("subtype"), "Bytes per sample of a file subtype.");

  // The getters take a short lock (never held while the thread writes);
  // wait() and finish() release the GIL.
  py::class_<FileWriter>(m, "FileWriter", "A native thread that drains a ring into audio files (file_writer.hpp).")
      .def(py::init(&make_writer), py::arg("ring"), py::kw_only(), py::arg("path"), py::arg("fd"), py::arg("close_fd"),
           py::arg("format"),
           py::arg("subtype"), py::arg("samples"), py::arg("rate"), py::arg("start"), py::arg("frames"),
           py::arg("split_frames"), py::arg("part_prefix"), py::arg("part_suffix"), py::arg("pending"),
           py::arg("gap_log"), py::arg("start_time"))
      .def("finish", &FileWriter::finish, py::arg("at"), "End the files at ring frame `at` (earlier ends stand).")
      .def("wait", &FileWriter::wait, py::arg("timeout"), py::call_guard<py::gil_scoped_release>(),
           "Wait until the files are closed (timeout < 0: no limit); returns whether they are.")
      .def_property_readonly("frames", &FileWriter::frames)
      .def_property_readonly("lag", &FileWriter::lag)
      .def_property_readonly("end", &writer_end)
      .def_property_readonly("files", &FileWriter::files)
      .def_property_readonly("gaps", &gap_list)
      .def_property_readonly("frames_lost", &FileWriter::frames_lost)
      .def_property_readonly("error", &FileWriter::error)
      .def_property_readonly("start", &FileWriter::start)
      .def_property_readonly("chunk", &FileWriter::chunk)
      .def_property_readonly("forked", &FileWriter::forked);
}

}  // namespace audioring::bindings
