#pragma once
/// @file error.hpp
/// @brief The single exception type and the validation helpers every entry point uses.

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tcq/core/config.hpp"

namespace tcq {

/// Every failure tcq reports. The message names the problem and the object.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
[[nodiscard]] std::string cat(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}
}  // namespace detail

/// Throws tcq::error with the concatenated message parts.
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
    throw error(detail::cat(args...));
}

/// Throws unless `cond`; message parts are only formatted on failure.
template <class... Args>
void require(bool cond, const Args&... args) {
    if (!cond) fail(args...);
}

/// Throws if `x` is NaN or Inf; `what` names the object, `where` the position.
inline void require_finite(double x, std::string_view what, index_t r = -1, index_t c = -1) {
    if (!std::isfinite(x)) {
        if (r >= 0)
            fail(what, ": non-finite value ", x, " at (", r, ", ", c, ")");
        fail(what, ": non-finite value ", x);
    }
}

}  // namespace tcq
