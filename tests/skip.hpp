#pragma once
// A test that cannot run here (no tool in this build, no GPU) reports SKIP to
// ctest instead of passing: every test executable has SKIP_RETURN_CODE 77
// (tests/CMakeLists.txt).
#include <cstdio>
#include <cstdlib>

namespace tcq_test {

/// The exit code ctest reads as "skipped".
inline constexpr int skip_return_code = 77;

/// Prints why and ends the process with skip_return_code.
[[noreturn]] inline void skip(const char* why) {
    std::printf("SKIP: %s\n", why);
    std::fflush(stdout);
    std::_Exit(skip_return_code);
}

}  // namespace tcq_test
