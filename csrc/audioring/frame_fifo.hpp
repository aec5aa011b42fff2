// FrameFifo: a first-in first-out queue of float frames with a fixed
// capacity, allocated once (the aligner's thread queues each device's
// frames here until every device has delivered the same stretch of output).
//
// Not thread-safe: one thread owns it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace audioring {

class FrameFifo {
 public:
  FrameFifo(std::size_t channels, std::size_t capacity_frames)
      : channels_(channels), capacity_(capacity_frames), data_(channels * capacity_frames * 2) {}

  std::size_t channels() const noexcept { return channels_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t room() const noexcept { return capacity_ - size_; }
  const float* front() const noexcept { return data_.data() + head_ * channels_; }

  // Appends up to room() frames (null: silence); returns how many it took.
  std::size_t push(const float* frames, std::size_t count) noexcept {
    count = std::min(count, room());
    if (head_ + size_ + count > capacity_ * 2) compact();  // the buffer is twice the capacity: moves are rare
    float* to = data_.data() + (head_ + size_) * channels_;
    if (frames != nullptr) {
      std::memcpy(to, frames, count * channels_ * sizeof(float));
    } else {
      std::fill(to, to + count * channels_, 0.0f);
    }
    size_ += count;
    return count;
  }

  void pop(std::size_t count) noexcept {
    count = std::min(count, size_);
    head_ += count;
    size_ -= count;
    if (size_ == 0) head_ = 0;
  }

  void clear() noexcept {
    head_ = 0;
    size_ = 0;
  }

 private:
  void compact() noexcept {
    std::memmove(data_.data(), data_.data() + head_ * channels_, size_ * channels_ * sizeof(float));
    head_ = 0;
  }

  const std::size_t channels_;
  const std::size_t capacity_;
  std::vector<float> data_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace audioring
