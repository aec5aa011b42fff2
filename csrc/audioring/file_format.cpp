#include "audioring/file_format.hpp"

#include <sndfile.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <utility>

namespace audioring {
namespace {

// RIFF and AU sizes are 32-bit: the data must stay below 4 GiB, less room
// for the header.
constexpr std::int64_t kFourGiB = (std::int64_t{1} << 32) - (std::int64_t{1} << 16);

struct SubtypeCode {
  const char* name;
  int code;
  int bytes;
};

constexpr SubtypeCode kSubtypes[] = {
    {"PCM_S8", SF_FORMAT_PCM_S8, 1}, {"PCM_U8", SF_FORMAT_PCM_U8, 1}, {"PCM_16", SF_FORMAT_PCM_16, 2},
    {"PCM_24", SF_FORMAT_PCM_24, 3}, {"PCM_32", SF_FORMAT_PCM_32, 4}, {"FLOAT", SF_FORMAT_FLOAT, 4},
    {"DOUBLE", SF_FORMAT_DOUBLE, 8},
};

const SubtypeCode& subtype_code(const std::string& name) {
  const auto* found = std::find_if(std::begin(kSubtypes), std::end(kSubtypes),
                                   [&](const SubtypeCode& subtype) { return name == subtype.name; });
  if (found == std::end(kSubtypes)) throw std::invalid_argument("unknown subtype " + name);
  return *found;
}

// Defaults in kSampleFormats' order: float32, int32, int16, int8, uint8.
// Each keeps every sample exactly, except float32 in FLAC (24-bit PCM,
// clipped to full scale: FLAC has no float samples); int32 in FLAC has no
// default (it would lose 8 bits). 8-bit samples keep their values whether
// the file's 8-bit PCM is signed or unsigned (the writer converts).
FileFormatInfo make(std::string name, std::string description, bool streams, std::int64_t max_data_bytes,
                    int max_channels, bool broadcast, std::vector<std::string> subtypes,
                    std::vector<std::string> defaults) {
  FileFormatInfo info;
  info.name = std::move(name);
  info.description = std::move(description);
  info.streams = streams;
  info.max_data_bytes = max_data_bytes;
  info.max_channels = max_channels;
  info.broadcast = broadcast;
  info.subtypes = std::move(subtypes);
  for (std::size_t i = 0; i < defaults.size(); ++i) info.default_subtype[i] = defaults[i];
  return info;
}

int major_code(const std::string& name) {
  if (name == "wav" || name == "rf64") return SF_FORMAT_RF64;  // "wav": RF64 that stays WAV below 4 GiB
  if (name == "w64") return SF_FORMAT_W64;
  if (name == "caf") return SF_FORMAT_CAF;
  if (name == "flac") return SF_FORMAT_FLAC;
  if (name == "au") return SF_FORMAT_AU;
  return SF_FORMAT_RAW;
}

}  // namespace

const std::vector<FileFormatInfo>& file_formats() {
  static const std::vector<FileFormatInfo> formats = [] {
    const std::vector<std::string> riff = {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"};
    const std::vector<std::string> riff_defaults = {"FLOAT", "PCM_32", "PCM_16", "PCM_U8", "PCM_U8"};
    const std::vector<std::string> signed8 = {"PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"};
    const std::vector<std::string> signed8_defaults = {"FLOAT", "PCM_32", "PCM_16", "PCM_S8", "PCM_S8"};
    return std::vector<FileFormatInfo>{
        make("wav", "WAV, switching to RF64 by itself past 4 GiB", false, 0, 0, true, riff, riff_defaults),
        make("rf64", "RF64 (WAV with 64-bit sizes) from the start", false, 0, 0, true, riff, riff_defaults),
        make("w64", "Sony Wave64 (64-bit sizes)", false, 0, 0, false, riff, riff_defaults),
        make("caf", "Apple Core Audio Format (64-bit sizes)", false, 0, 0, false, signed8, signed8_defaults),
        make("flac", "FLAC, lossless compression, at most 8 channels and 24 bits", false, 0, 8, false,
             {"PCM_S8", "PCM_16", "PCM_24"}, {"PCM_24", "", "PCM_16", "PCM_S8", "PCM_S8"}),
        make("au", "Sun AU: streams through a pipe; a file holds at most 4 GiB", true, kFourGiB, 0, false, signed8,
             signed8_defaults),
        make("raw", "headerless samples, native byte order: streams through a pipe", true, 0, 0, false,
             {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"},
             {"FLOAT", "PCM_32", "PCM_16", "PCM_S8", "PCM_U8"}),
    };
  }();
  return formats;
}

const FileFormatInfo& file_format(const std::string& name) {
  std::string known;
  for (const FileFormatInfo& format : file_formats()) {
    if (format.name == name) return format;
    known += (known.empty() ? "" : ", ") + format.name;
  }
  throw std::invalid_argument("unknown file format " + name + "; known: " + known);
}

int subtype_bytes(const std::string& subtype) { return subtype_code(subtype).bytes; }

int sndfile_format(const FileFormatInfo& format, const std::string& subtype) {
  if (std::find(format.subtypes.begin(), format.subtypes.end(), subtype) == format.subtypes.end()) throw std::invalid_argument(format.name + " does not take subtype " + subtype);
  return major_code(format.name) | subtype_code(subtype).code;
}

}  // namespace audioring
