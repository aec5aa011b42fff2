#include "audioring/file_writer.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <stdexcept>
#include <utility>


namespace audioring {
namespace {

// About this much audio per copy and write: large enough that libsndfile's
// per-call cost vanishes, small enough to stay in the caches.
constexpr std::size_t kWriteBytes = std::size_t{1} << 20;
// How often an idle writer looks for finish(); the doorbell wakes it for frames.
constexpr auto kIdlePoll = std::chrono::milliseconds(20);

std::int64_t chunk_frames(const std::shared_ptr<FrameRing>& ring) {
  if (!ring) throw std::invalid_argument("a file writer needs a ring");
  const auto frames = static_cast<std::int64_t>(std::max<std::size_t>(1, kWriteBytes / ring->frame_bytes()));
  // At most half the ring: a copy must be able to come out intact while the producer writes.
  return std::max<std::int64_t>(1, std::min(frames, ring->capacity() / 2));
}

FileWriterConfig checked(FileWriterConfig config, const FrameRing& ring, std::int64_t chunk) {
  if (config.split_frames < 0) throw std::invalid_argument("split_frames must be >= 0");
  if (static_cast<std::size_t>(config.file.channels) * format_info(config.file.samples).bytes != ring.frame_bytes()) {
    throw std::invalid_argument("the file's channels and sample format do not match the ring's frames");
  }
  config.file.max_frames_per_write = chunk;
  return config;
}

}  // namespace

FileWriter::FileWriter(std::shared_ptr<FrameRing> ring, FileWriterConfig config)
    : ring_(std::move(ring)),
      chunk_(chunk_frames(ring_)),
      config_(checked(std::move(config), *ring_, chunk_)),
      shared_(SharedRing::of(ring_->storage())),
      recording_(ring_->first()) {
  start_.store(config_.pending ? recording_ : std::max(config_.start, recording_), std::memory_order_relaxed);
  pos_ = start();
  block_.resize(static_cast<std::size_t>(chunk_) * ring_->frame_bytes());
  // The first file is made here, so that a path that cannot be written is
  // refused (FileError) before anything is recorded for it.
  if (!open_part()) throw FileError(error_);
  thread_ = std::make_unique<std::thread>([this] { run(); });
}

FileWriter::~FileWriter() {
  if (owner_.forked()) {
    static_cast<void>(thread_.release());  // the parent's thread: not here, never joined
    return;
  }
  finish(ring_->written());
  if (thread_ && thread_->joinable()) thread_->join();
  if (gap_log_ != nullptr) std::fclose(gap_log_);
}

void FileWriter::finish(FrameRing::Frame at) noexcept {
  FrameRing::Frame current = finish_at_.load(std::memory_order_relaxed);
  while (at < current && !finish_at_.compare_exchange_weak(current, at, std::memory_order_release)) {
  }
}

bool FileWriter::wait(double timeout_s) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (timeout_s < 0) {
    ended_.wait(lock, [this] { return done_; });
    return true;
  }
  return ended_.wait_for(lock, std::chrono::duration<double>(timeout_s), [this] { return done_; });
}

std::int64_t FileWriter::lag() const noexcept {
  if (end() != WriterEnd::running) return 0;
  const FrameRing::Frame next = start() + frames();
  const FrameRing::Frame due = std::min(ring_->written(), end_frame());
  return std::max<std::int64_t>(0, due - next);
}

std::vector<std::string> FileWriter::files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return files_;
}

std::vector<FileGap> FileWriter::gaps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return gaps_;
}

std::string FileWriter::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

FrameRing::Frame FileWriter::end_frame() const noexcept {
  const FrameRing::Frame limit = config_.frames >= 0 ? start() + config_.frames : std::numeric_limits<FrameRing::Frame>::max();
  return std::min(limit, finish_at_.load(std::memory_order_acquire));
}

void FileWriter::run() noexcept {
  WriterEnd reason = WriterEnd::running;
  if (config_.pending && !adopt_recording()) reason = WriterEnd::finished;
  while (reason == WriterEnd::running) {
    // The interrupt count before anything else, so that a change after the
    // looks below makes the wait return at once.
    const std::uint64_t interrupts = ring_->interrupts();
    const FrameRing::Frame stop = end_frame();
    if (pos_ >= stop) {
      reason = stop == finish_at_.load(std::memory_order_acquire) ? WriterEnd::finished : WriterEnd::frames_done;
      break;
    }
    const FrameRing::Frame first = ring_->first();
    if (first != recording_) {
      // Restarted: the frames of our recording that the clear overwrote
      // (up to where it was when the clear began) are lost.
      const FrameRing::Frame recording_end = std::min(first - ring_->capacity(), stop);
      if (recording_end > pos_ && !write_gap(recording_end - pos_)) {
        reason = WriterEnd::error;
        break;
      }
      reason = WriterEnd::restarted;
      break;
    }
    const FrameRing::Frame written = ring_->written();
    const FrameRing::Frame available = std::min(written, stop) - pos_;
    if (available > 0) {
      if (!write_span(std::min(available, chunk_))) reason = error().empty() ? WriterEnd::running : WriterEnd::error;
      continue;
    }
    if (producer_done(written)) {
      reason = shared_->producer_found_dead() && shared_->state() == SharedState::recording ? WriterEnd::producer_lost
                                                                                            : WriterEnd::producer_stopped;
      break;
    }
    ring_->wait_for_frame(pos_ + 1, FrameRing::Clock::now() + kIdlePoll, interrupts);
  }
  close_part();
  stop_with(reason);
}

bool FileWriter::adopt_recording() noexcept {
  while (ring_->first() == recording_) {
    const std::uint64_t interrupts = ring_->interrupts();
    if (finish_at_.load(std::memory_order_acquire) != std::numeric_limits<FrameRing::Frame>::max()) return false;
    if (shared_ != nullptr && (shared_->state() == SharedState::closed || shared_->producer_found_dead())) return false;
    ring_->wait_for_frame(ring_->written() + 1, FrameRing::Clock::now() + kIdlePoll, interrupts);
  }
  recording_ = ring_->first();
  pos_ = recording_;
  start_.store(recording_, std::memory_order_release);
  return true;
}

bool FileWriter::producer_done(FrameRing::Frame written) const noexcept {
  if (shared_ == nullptr || pos_ < written) return false;
  const SharedState state = shared_->state();
  // A producer sets its state before it lets go of the recording: one gone
  // while the state still says recording died.
  if (state == SharedState::stopped || state == SharedState::closed) return ring_->written() <= pos_;
  return state == SharedState::recording && shared_->producer_found_dead() && ring_->written() <= pos_;
}

bool FileWriter::write_span(FrameRing::Frame count) noexcept {
  const bool copied = ring_->copy(pos_, count, block_.data());
  // After the intact check (inside copy): a restart's zeros are never taken
  // for our recording's frames (see FrameRing::clear()).
  if (ring_->first() != recording_) return true;  // run() ends the recording
  if (copied) {
    if (!put(block_.data(), count)) return false;
    pos_ += count;
    return true;
  }
  // Lapped: resume half a ring behind the producer (room before it laps us
  // again), and write what was lost as silence of its exact length.
  FrameRing::Frame resume = ring_->written() - ring_->capacity() / 2;
  resume = std::max(resume, pos_ + count);  // overwritten while we copied
  return write_gap(std::min(resume, end_frame()) - pos_);
}

bool FileWriter::write_gap(FrameRing::Frame count) noexcept {
  const std::int64_t at = pos_ - start();
  if (!put(nullptr, count)) return false;
  pos_ += count;
  lost_.fetch_add(count, std::memory_order_relaxed);
  std::string file;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    file = files_.empty() ? std::string() : files_.back();
    gaps_.push_back(FileGap{at, count, file});
  }
  if (!config_.gap_log.empty()) {
    if (gap_log_ == nullptr) {
      gap_log_ = std::fopen(config_.gap_log.c_str(), "we");
      if (gap_log_ != nullptr) std::fputs("frame,length,seconds,file\n", gap_log_);
    }
    if (gap_log_ != nullptr) {
      std::fprintf(gap_log_, "%" PRId64 ",%" PRId64 ",%.6f,%s\n", at, count,
                   static_cast<double>(at) / config_.file.rate, file.c_str());
      std::fflush(gap_log_);
    }
  }
  return true;
}

bool FileWriter::put(const void* frames, std::int64_t count) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(frames);
  while (count > 0) {
    std::int64_t n = count;
    if (config_.split_frames > 0) {
      if (part_frames_ == config_.split_frames) {
        close_part();
        if (!error().empty()) return false;
        ++part_;
        if (!open_part()) return false;
      }
      n = std::min(n, config_.split_frames - part_frames_);
    }
    const std::int64_t before = file_->frames();
    const bool ok = file_->write(bytes, n);
    // What reached the file, a failed write's part included: the header says as much.
    const std::int64_t put_frames = file_->frames() - before;
    part_frames_ += put_frames;
    written_.fetch_add(put_frames, std::memory_order_release);
    if (part_frames_ - header_frames_ >= config_.file.rate) {  // about once a second of audio
      file_->update_header();
      header_frames_ = part_frames_;
    }
    if (!ok) {
      set_error(file_->error());
      close_part();
      return false;
    }
    if (bytes != nullptr) bytes += static_cast<std::size_t>(n) * ring_->frame_bytes();
    count -= n;
  }
  return true;
}

bool FileWriter::open_part() noexcept {
  SoundFileSpec spec = config_.file;
  if (config_.split_frames > 0) {
    if (part_ == 0) part_ = 1;
    spec.path = part_path(part_);
  }
  // Each part's time is its own first frame's, so that parts line up.
  spec.start_time += static_cast<double>(written_.load(std::memory_order_relaxed)) / spec.rate;
  try {
    file_ = std::make_unique<SoundFile>(spec);
  } catch (const std::exception& failure) {  // FileError, std::invalid_argument, std::bad_alloc
    set_error(failure.what());
    return false;
  }
  part_frames_ = 0;
  header_frames_ = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  files_.push_back(file_->path());
  return true;
}

void FileWriter::close_part() noexcept {
  if (!file_) return;
  if (!file_->close()) set_error(file_->error());
  file_.reset();
}

std::string FileWriter::part_path(std::int64_t part) const {
  char number[24];
  std::snprintf(number, sizeof number, "%04" PRId64, part);
  return config_.part_prefix + number + config_.part_suffix;
}

void FileWriter::set_error(const std::string& message) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_.empty()) error_ = message;
}

void FileWriter::stop_with(WriterEnd reason) noexcept {
  if (!error().empty()) reason = WriterEnd::error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    end_.store(reason, std::memory_order_release);
    done_ = true;
  }
  ended_.notify_all();
}

}  // namespace audioring
