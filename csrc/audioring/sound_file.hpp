// SoundFile: one audio file being written with libsndfile, by one thread.
//
// It takes frames in the ring's sample format and gives libsndfile the
// matching integer or float samples (8-bit samples go through 16-bit ones,
// which libsndfile turns back into the same 8-bit values whether the file's
// 8-bit PCM is signed or unsigned). Floats written into PCM are clipped to
// full scale, never wrapped around.
//
// Errors are kept, not thrown, once the file is open: a failed write leaves
// the file's header describing the frames written before it, and error()
// says what the operating system said (libsndfile alone says only "System
// error"). Not thread-safe: FileWriter's thread is its only user.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "audioring/file_format.hpp"
#include "audioring/sample_format.hpp"

struct sf_private_tag;  // libsndfile's SNDFILE

namespace audioring {

// Why a file could not be opened: the message names the file and the reason.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SoundFileSpec {
  std::string path;  // the file to create (replacing one that exists), when fd < 0; else how messages name fd
  int fd = -1;       // >= 0: write to this open descriptor instead (a pipe, stdout)
  bool close_fd = false;  // close `fd` once the file is closed (not if opening fails: the caller still owns it)
  std::string format;   // a name of file_formats()
  std::string subtype;  // one of that format's subtypes
  int channels = 1;
  int rate = 48000;
  SampleFormat samples = SampleFormat::float32;  // what write() takes
  std::int64_t max_frames_per_write = 4096;      // sizes the conversion buffer
  // Wall-clock time of the file's first frame, Unix seconds (local time
  // goes into the file): the `bext` chunk's origination date, time and time
  // reference, or a date tag. NaN: none.
  double start_time = 0.0;
};

class SoundFile {
 public:
  // Creates the file and writes its header. Throws FileError (named, with
  // the OS's or libsndfile's reason) or std::invalid_argument (a format or
  // subtype it does not know).
  explicit SoundFile(const SoundFileSpec& spec);
  ~SoundFile();
  SoundFile(const SoundFile&) = delete;
  SoundFile& operator=(const SoundFile&) = delete;

  // Appends `count` (<= max_frames_per_write) frames; silence when `frames`
  // is null. Returns false once writing failed (see error()).
  bool write(const void* frames, std::int64_t count) noexcept;
  // Frames in the file so far.
  std::int64_t frames() const noexcept { return frames_; }
  // Rewrites the header to describe every frame written so far (a seekable
  // file only), so that a process killed mid-recording leaves a file whose
  // header misses at most what came after the last update.
  void update_header() noexcept;
  // Completes the header and closes the file (its descriptor, unless given);
  // returns false if that failed (see error()). Idempotent.
  bool close() noexcept;
  // What went wrong, "" if nothing: "No space left on device", ...
  const std::string& error() const noexcept { return error_; }
  const std::string& path() const noexcept { return path_; }

 private:
  void describe_time(double start_time, int rate);
  void fail(const char* what, int saved_errno) noexcept;

  std::string path_;  // for messages; "fd N" for a descriptor
  sf_private_tag* file_ = nullptr;
  int owned_fd_ = -1;  // closed with the file: the one it created, or a given one with close_fd
  SampleFormat samples_;
  bool streams_ = false;  // a format written as a stream (no header to update)
  int channels_;
  std::int64_t max_frames_per_write_;
  std::int64_t frames_ = 0;
  std::vector<float> zeros_;           // max_frames_per_write_ frames of silence
  std::vector<std::int16_t> widened_;  // 8-bit samples as 16-bit ones
  std::string error_;
};

}  // namespace audioring
