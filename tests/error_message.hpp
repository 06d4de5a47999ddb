#pragma once
// The message of the tcq::error a call throws.

#include <string>

#include "tcq/core/error.hpp"

namespace test_util {

/// what() of the tcq::error `f()` throws, or "<no error>".
inline std::string message_of(auto&& f) {
    try {
        f();
    } catch (const tcq::error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace test_util
