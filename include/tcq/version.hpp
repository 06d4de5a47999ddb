#pragma once
/// @file version.hpp
/// @brief Library version. CMake parses these three macros; keep the format.
#define TCQ_VERSION_MAJOR 0
#define TCQ_VERSION_MINOR 1
#define TCQ_VERSION_PATCH 0

namespace tcq {
/// Version string "MAJOR.MINOR.PATCH", also written into every tcq file.
inline constexpr const char* version_string = "0.1.0";
}  // namespace tcq
