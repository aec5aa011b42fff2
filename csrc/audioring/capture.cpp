#include "audioring/capture.hpp"

extern "C" int audioring_capture_callback(const void* input, void* /*output*/, unsigned long frame_count,
                                          const audioring::PaTimeInfo* time_info, unsigned long status_flags,
                                          void* user_data) {
  static_cast<audioring::Capture*>(user_data)->on_block(input, frame_count, time_info, status_flags);
  return audioring::kPaContinue;
}
