#pragma once
/// @file version.hpp
/// @brief Library version. CMake parses these three macros; keep the format.
#define TCQ_VERSION_MAJOR 0  ///< Major version: incompatible API or file-format changes.
#define TCQ_VERSION_MINOR 1  ///< Minor version: additions, compatible.
#define TCQ_VERSION_PATCH 0  ///< Patch version: fixes only.

namespace tcq {
/// Version string "MAJOR.MINOR.PATCH", also written into every tcq file.
inline constexpr const char* version_string = "0.1.0";
}  // namespace tcq
