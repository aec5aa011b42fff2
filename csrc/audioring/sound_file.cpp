#include "audioring/sound_file.hpp"

#include <fcntl.h>
#include <sndfile.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <ctime>

namespace audioring {
namespace {

std::string os_reason(int error) { return std::strerror(error); }

// Local date and time of `unix_seconds`, and the samples since that day's
// midnight at `rate` (the Broadcast WAV time reference).
struct LocalTime {
  char date[11];  // yyyy-mm-dd
  char time[9];   // hh:mm:ss
  std::uint64_t samples_since_midnight;
};

LocalTime local_time(double unix_seconds, int rate) {
  LocalTime local{};
  const double whole = std::floor(unix_seconds);
  const auto seconds = static_cast<std::time_t>(whole);
  std::tm tm{};
  localtime_r(&seconds, &tm);
  // Empty if a year past 9999 would not fit (the fields are fixed-size).
  if (std::strftime(local.date, sizeof local.date, "%Y-%m-%d", &tm) == 0) local.date[0] = '\0';
  if (std::strftime(local.time, sizeof local.time, "%H:%M:%S", &tm) == 0) local.time[0] = '\0';
  const double since_midnight = tm.tm_hour * 3600.0 + tm.tm_min * 60.0 + tm.tm_sec + (unix_seconds - whole);
  local.samples_since_midnight = static_cast<std::uint64_t>(std::llround(since_midnight * rate));
  return local;
}

}  // namespace

SoundFile::SoundFile(const SoundFileSpec& spec)
    : path_(spec.path.empty() ? "fd " + std::to_string(spec.fd) : spec.path),
      samples_(spec.samples),
      channels_(spec.channels),
      max_frames_per_write_(spec.max_frames_per_write) {
  if (channels_ < 1 || max_frames_per_write_ < 1) throw std::invalid_argument("channels and max_frames_per_write must be >= 1");
  const FileFormatInfo& format = file_format(spec.format);
  streams_ = format.streams;
  SF_INFO info{};
  info.samplerate = spec.rate;
  info.channels = spec.channels;
  info.format = sndfile_format(format, spec.subtype);
  if (!sf_format_check(&info)) {
    throw std::invalid_argument("libsndfile cannot write " + spec.format + " " + spec.subtype + " with " +
                                std::to_string(spec.channels) + " channels at " + std::to_string(spec.rate) + " Hz");
  }
  // libsndfile never closes the descriptor (it may or may not when opening
  // fails): this class closes the one it made, and a given one only once
  // open, if asked to, so that a caller whose open failed still owns it.
  int fd = spec.fd;
  if (fd < 0) {
    fd = ::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) throw FileError("cannot create " + spec.path + ": " + os_reason(errno));
  }
  file_ = sf_open_fd(fd, SFM_WRITE, &info, SF_FALSE);
  if (file_ == nullptr) {
    const std::string reason = sf_strerror(nullptr);
    if (spec.fd < 0) ::close(fd);
    throw FileError("cannot write " + path_ + ": " + reason);
  }
  owned_fd_ = spec.fd < 0 || spec.close_fd ? fd : -1;
  sf_command(file_, SFC_SET_CLIPPING, nullptr, SF_TRUE);  // floats into PCM: clipped, not wrapped
  if (format.name == "wav") sf_command(file_, SFC_RF64_AUTO_DOWNGRADE, nullptr, SF_TRUE);
  if (std::isfinite(spec.start_time)) {
    if (format.broadcast) {
      describe_time(spec.start_time, spec.rate);
    } else {
      const LocalTime local = local_time(spec.start_time, spec.rate);
      const std::string date = std::string(local.date) + " " + local.time;
      sf_set_string(file_, SF_STR_DATE, date.c_str());  // where the format has tags (FLAC, CAF); else ignored
    }
  }
  sf_set_string(file_, SF_STR_SOFTWARE, "audioring");
  const std::size_t buffer = static_cast<std::size_t>(max_frames_per_write_) * static_cast<std::size_t>(channels_);
  zeros_.assign(buffer, 0.0f);
  if (samples_ == SampleFormat::int8 || samples_ == SampleFormat::uint8) widened_.resize(buffer);
}

SoundFile::~SoundFile() { close(); }

void SoundFile::describe_time(double start_time, int rate) {
  const LocalTime local = local_time(start_time, rate);
  SF_BROADCAST_INFO bext{};
  std::snprintf(bext.description, sizeof bext.description, "audioring recording");
  std::snprintf(bext.originator, sizeof bext.originator, "audioring");
  std::memcpy(bext.origination_date, local.date, sizeof bext.origination_date);  // 10 chars, no terminator
  std::memcpy(bext.origination_time, local.time, sizeof bext.origination_time);  // 8 chars
  bext.time_reference_low = static_cast<std::uint32_t>(local.samples_since_midnight & 0xffffffffU);
  bext.time_reference_high = static_cast<std::uint32_t>(local.samples_since_midnight >> 32);
  bext.version = 1;
  sf_command(file_, SFC_SET_BROADCAST_INFO, &bext, sizeof bext);
}

bool SoundFile::write(const void* frames, std::int64_t count) noexcept {
  if (!error_.empty() || file_ == nullptr) return false;
  if (count <= 0) return true;
  const auto samples = static_cast<std::size_t>(count) * static_cast<std::size_t>(channels_);
  sf_count_t done = 0;
  errno = 0;
  if (frames == nullptr) {
    // Silence: zero floats are silence in every subtype (and uint8's
    // silence, 128, is what 0.0 becomes in an unsigned 8-bit file).
    for (std::int64_t left = count; left > 0;) {
      const std::int64_t n = std::min(left, max_frames_per_write_);
      done = sf_writef_float(file_, zeros_.data(), n);
      if (done > 0) frames_ += done;
      if (done != n) {
        fail("write", errno);
        return false;
      }
      left -= n;
    }
    return true;
  }
  switch (samples_) {
    case SampleFormat::float32:
      done = sf_writef_float(file_, static_cast<const float*>(frames), count);
      break;
    case SampleFormat::int32:
      done = sf_writef_int(file_, static_cast<const int*>(frames), count);
      break;
    case SampleFormat::int16:
      done = sf_writef_short(file_, static_cast<const short*>(frames), count);
      break;
    case SampleFormat::int8:
    case SampleFormat::uint8: {
      const auto* bytes = static_cast<const unsigned char*>(frames);
      const int offset = samples_ == SampleFormat::uint8 ? 128 : 0;
      for (std::size_t i = 0; i < samples; ++i) {
        const int value = samples_ == SampleFormat::uint8 ? bytes[i] : static_cast<signed char>(bytes[i]);
        widened_[i] = static_cast<std::int16_t>((value - offset) * 256);
      }
      done = sf_writef_short(file_, widened_.data(), count);
      break;
    }
  }
  if (done > 0) frames_ += done;
  if (done != count) {
    fail("write", errno);
    return false;
  }
  return true;
}

void SoundFile::update_header() noexcept {
  if (file_ != nullptr && error_.empty() && !streams_) sf_command(file_, SFC_UPDATE_HEADER_NOW, nullptr, 0);
}

bool SoundFile::close() noexcept {
  if (file_ == nullptr) return error_.empty();
  errno = 0;
  const int status = sf_close(file_);
  const int close_errno = errno;
  file_ = nullptr;
  if (status != 0 && error_.empty()) {
    error_ = "cannot complete " + path_ + ": " + (close_errno != 0 ? os_reason(close_errno) : sf_error_number(status));
  }
  // A network or full disk may report a failed write only here.
  if (owned_fd_ >= 0 && ::close(owned_fd_) != 0 && error_.empty() && errno != EINTR) {
    error_ = "cannot complete " + path_ + ": " + os_reason(errno);
  }
  owned_fd_ = -1;
  return error_.empty();
}

void SoundFile::fail(const char* what, int saved_errno) noexcept {
  if (!error_.empty()) return;
  // libsndfile reports a failed write(2) as "System error"; the errno it
  // left says which (ENOSPC, EIO, EPIPE, ...).
  const std::string reason = saved_errno != 0 ? os_reason(saved_errno) : sf_strerror(file_);
  error_ = std::string("cannot ") + what + " " + path_ + ": " + reason;
}

}  // namespace audioring
