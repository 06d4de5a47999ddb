#pragma once
/// @file progress.hpp
/// @brief One progress line of a long phase: done/total, rate and ETA.

#include <cstdio>
#include <string>
#include <string_view>

#include "tcq/core/config.hpp"

namespace tcq {

/// "PHASE: DONE/TOTAL (P%, R UNIT/s, ETA Ts)" after `seconds` of the phase;
/// rate and ETA appear once something is done.
[[nodiscard]] inline std::string progress_line(std::string_view phase, index_t done, index_t total, double seconds,
                                               std::string_view unit = "stages") {
    char buf[160];
    const double pct = total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
    if (done > 0 && seconds > 0) {
        const double rate = static_cast<double>(done) / seconds;
        const double eta = static_cast<double>(total - done) / rate;
        std::snprintf(buf, sizeof buf, ": %lld/%lld (%.0f%%, %.3g %.*s/s, ETA %.0fs)", static_cast<long long>(done),
                      static_cast<long long>(total), pct, rate, static_cast<int>(unit.size()), unit.data(), eta);
    } else {
        std::snprintf(buf, sizeof buf, ": %lld/%lld (%.0f%%)", static_cast<long long>(done),
                      static_cast<long long>(total), pct);
    }
    return std::string(phase) + buf;
}

}  // namespace tcq
