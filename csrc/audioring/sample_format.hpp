// The sample formats PortAudio delivers, so the only ones a ring stores.
// This table is the one definition of them: the bindings export it to Python
// (audioring._core.SampleFormat), where the public dtype checks read it.
#pragma once

#include <cstddef>

namespace audioring {

enum class SampleFormat { float32, int32, int16, int8, uint8 };

struct SampleFormatInfo {
  SampleFormat format;
  const char* name;   // as numpy spells the dtype
  std::size_t bytes;  // per sample
};

// In PortAudio's order of preference; indexed by the enum's value.
inline constexpr SampleFormatInfo kSampleFormats[] = {
    {SampleFormat::float32, "float32", 4}, {SampleFormat::int32, "int32", 4}, {SampleFormat::int16, "int16", 2},
    {SampleFormat::int8, "int8", 1},       {SampleFormat::uint8, "uint8", 1},
};

constexpr const SampleFormatInfo& format_info(SampleFormat format) noexcept {
  return kSampleFormats[static_cast<std::size_t>(format)];
}

static_assert(format_info(SampleFormat::uint8).format == SampleFormat::uint8, "kSampleFormats is in enum order");

}  // namespace audioring
