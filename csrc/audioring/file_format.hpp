// The file formats a FileWriter writes, and what each can hold: the one
// table of them (the bindings export it to Python, whose argument checks and
// advice read it). libsndfile's codes stay inside file_format.cpp and
// sound_file.cpp, so that nothing else includes sndfile.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "audioring/sample_format.hpp"

namespace audioring {

struct FileFormatInfo {
  std::string name;         // as the user names it: "wav", "rf64", "flac", ...
  std::string description;  // a few words for messages and --help
  // Whether a pipe can take it: its header does not hold the length (the
  // others are completed by seeking back to the start when the file closes).
  bool streams = false;
  // The most audio data a file of this format can hold (0: no limit that a
  // recording reaches). "wav" has none: it becomes RF64 past 4 GiB.
  std::int64_t max_data_bytes = 0;
  int max_channels = 0;  // 0: no limit below a ring's
  // Whether a Broadcast WAV `bext` chunk (origination time, time reference)
  // goes into it; the others carry the date as a string tag where they can.
  bool broadcast = false;
  // Subtypes it takes, libsndfile's names ("PCM_16", "FLOAT", ...), and the
  // lossless default for each sample format ("" where none is lossless: the
  // user must choose a subtype, e.g. int32 in FLAC).
  std::vector<std::string> subtypes;
  std::string default_subtype[sizeof(kSampleFormats) / sizeof(kSampleFormats[0])];
};

// Every format, in the order the command line lists them.
const std::vector<FileFormatInfo>& file_formats();
// The format named `name`; throws std::invalid_argument naming the known ones.
const FileFormatInfo& file_format(const std::string& name);
// Bytes per sample of a subtype in a file (FLAC: before compression).
int subtype_bytes(const std::string& subtype);
// libsndfile's format code for (format, subtype); throws std::invalid_argument
// if the format does not take the subtype.
int sndfile_format(const FileFormatInfo& format, const std::string& subtype);

}  // namespace audioring
