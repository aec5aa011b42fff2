// FileWriter: drains a ring into audio files on a native thread of its own,
// so that writing to disk never needs the GIL, as capture never does.
//
// Data flow: producer -> ring -> writer thread -> SoundFile (libsndfile) -> disk.
// The thread sleeps on the ring's doorbell, copies each new span of frames
// out of the ring (at most `chunk` frames: a copy is checked intact before it
// is written, as every reader's is) and writes it. The ring's capacity is how
// long the disk may stall before frames are lost.
//
// One recording, like a stream: the writer writes ring frames [start, ...)
// of the recording current when it was made (the ring's first()), and ends
//   - once `frames` frames are written (frames_done);
//   - at finish(at): everything before `at` is written first (finished);
//   - at a restart (first() moves on): the frames of its recording that the
//     restart cleared before they were written are written as a gap, then
//     the files end (restarted);
//   - on a shared ring, once the producer stopped or closed and every frame
//     it recorded is written (producer_stopped), or died (producer_lost);
//   - when writing fails (error): the file is closed with a header that
//     describes the frames written before the failure.
//
// Nothing is lost silently: frames overwritten before the writer took them
// (the disk or the thread fell behind by more than the ring holds) are
// written as silence of exactly their length, so that every later frame
// keeps its position and time, and each such gap is listed (gaps(), and a
// line in the gap log next to the files, written as it happens).
//
// Splitting: with split_frames > 0, part k (1, 2, ...) holds recording frames
// [(k - 1) * split_frames, k * split_frames): the parts join into exactly the
// recording, no frame missing or repeated at a boundary.
//
// Threading: the constructor, finish(), wait() and the getters from any
// thread; the writer thread is the only user of the open file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audioring/fork_guard.hpp"
#include "audioring/frame_ring.hpp"
#include "audioring/shared_ring.hpp"
#include "audioring/sound_file.hpp"

namespace audioring {

struct FileWriterConfig {
  // The file: spec.path, or with split_frames > 0 the parts
  // part_prefix + "0001" + part_suffix, ... (spec.path is then unused).
  SoundFileSpec file;
  std::string part_prefix;
  std::string part_suffix;
  std::int64_t split_frames = 0;  // frames per part; 0: one file
  FrameRing::Frame start = 0;     // the ring frame written first
  std::int64_t frames = -1;       // frames to write in all; -1: until finish() or the recording ends
  // The ring's first recording has not begun (a shared producer not started
  // yet): the writer starts at that recording's first frame instead of `start`.
  bool pending = false;
  std::string gap_log;            // where gaps are listed as they happen ("" for none)
};

// Frames of the recording written as silence because they were lost.
struct FileGap {
  std::int64_t frame;   // position in the recording (0: the first frame written)
  std::int64_t length;  // frames
  std::string file;     // the part it begins in
};

enum class WriterEnd { running, frames_done, finished, restarted, producer_stopped, producer_lost, error };

class FileWriter {
 public:
  // Opens the first file (throws FileError or std::invalid_argument, as
  // SoundFile does) and starts the thread.
  FileWriter(std::shared_ptr<FrameRing> ring, FileWriterConfig config);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Ends the recording at ring frame `at`: frames before it are written,
  // then the files close. An earlier end stands.
  void finish(FrameRing::Frame at) noexcept;
  // Blocks until the thread has ended and the files are closed, or
  // `timeout_s` passes (< 0: no limit); returns whether it ended.
  bool wait(double timeout_s);

  // Frames written so far, gaps included.
  std::int64_t frames() const noexcept { return written_.load(std::memory_order_acquire); }
  // Frames recorded that are not written yet.
  std::int64_t lag() const noexcept;
  WriterEnd end() const noexcept { return end_.load(std::memory_order_acquire); }
  std::vector<std::string> files() const;
  std::vector<FileGap> gaps() const;
  std::int64_t frames_lost() const noexcept { return lost_.load(std::memory_order_relaxed); }
  std::string error() const;
  FrameRing::Frame start() const noexcept { return start_.load(std::memory_order_acquire); }
  std::int64_t chunk() const noexcept { return chunk_; }
  bool forked() const noexcept { return owner_.forked(); }

 private:
  void run() noexcept;
  // Waits for a pending writer's recording to begin; false if it ended first.
  bool adopt_recording() noexcept;
  // Writes up to `count` frames from pos_; false once the writer must end.
  bool write_span(FrameRing::Frame count) noexcept;
  // Writes `count` frames of silence for frames lost at pos_, and lists them.
  bool write_gap(FrameRing::Frame count) noexcept;
  // Writes into the current part (opening the next at a boundary).
  bool put(const void* frames, std::int64_t count) noexcept;
  bool open_part() noexcept;
  void close_part() noexcept;
  std::string part_path(std::int64_t part) const;
  void set_error(const std::string& message) noexcept;
  bool producer_done(FrameRing::Frame written) const noexcept;
  FrameRing::Frame end_frame() const noexcept;
  void stop_with(WriterEnd reason) noexcept;

  const std::shared_ptr<FrameRing> ring_;
  const std::int64_t chunk_;  // frames per copy and write: about 1 MiB, at most half the ring
  const FileWriterConfig config_;
  const SharedRing* const shared_;  // the ring's shared mapping (its producer's state), or null
  std::atomic<FrameRing::Frame> start_;
  FrameRing::Frame recording_;  // the ring's first() of the recording written
  std::atomic<FrameRing::Frame> finish_at_{std::numeric_limits<FrameRing::Frame>::max()};

  // Writer-thread state.
  FrameRing::Frame pos_ = 0;          // next ring frame to write
  std::int64_t part_ = 0;             // the current part's number (1-based once split)
  std::int64_t part_frames_ = 0;      // frames in the current part
  std::int64_t header_frames_ = 0;    // frames its header described at the last update
  std::unique_ptr<SoundFile> file_;   // the current part, or null once closed
  std::vector<unsigned char> block_;  // chunk_ frames copied out of the ring
  std::FILE* gap_log_ = nullptr;

  std::atomic<std::int64_t> written_{0};
  std::atomic<std::int64_t> lost_{0};
  std::atomic<WriterEnd> end_{WriterEnd::running};
  mutable std::mutex mutex_;  // guards the lists below and done_
  std::condition_variable ended_;
  bool done_ = false;
  std::vector<std::string> files_;
  std::vector<FileGap> gaps_;
  std::string error_;
  std::unique_ptr<std::thread> thread_;
  const ForkGuard owner_;
};

}  // namespace audioring
