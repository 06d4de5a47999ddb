// Harness of the table-driven bad-input suite (tests/test_bad_input.cpp).
//
// A row is one call of one public entry point with one defect in its input,
// and what must happen:
//   error(entry, object, problem, call)  the call throws tcq::error whose
//                                        message contains `object` (what the
//                                        input is, e.g. "fit_grid: W") and
//                                        `problem` (e.g. "non-finite value");
//   ok(entry, input, call)               the input is legal (empty, denormal,
//                                        partial group…): the call must not
//                                        throw and checks its defined result
//                                        itself with CHECK/REQUIRE.
// `.gap("why")` marks a row the library does not meet yet: its failure is a
// WARN (listed in the output) instead of an error, so the table can record
// the requirement before the fix; once the row passes, the suite says so and
// the marker should go.
//
// Outputs should be `guarded` buffers: padding before, after and between rows
// (stride > cols) holds a canary, and `intact()` proves the call wrote
// nothing outside its output, whether it succeeded or threw.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/matrix_view.hpp"

namespace bad {

using tcq::index_t;

struct row {
    std::string entry;    ///< public entry point, e.g. "fit_grid"
    std::string input;    ///< the defect, for the log; for error rows: object + problem
    bool expect_error = true;
    std::string object;   ///< error rows: must appear in the message
    std::string problem;  ///< error rows: must appear in the message
    std::function<void()> call;
    std::string gap_reason;  ///< non-empty: known gap, failures only warn

    row&& gap(std::string why) && {
        gap_reason = std::move(why);
        return std::move(*this);
    }
};
using table = std::vector<row>;

inline row error(std::string entry, std::string object, std::string problem, std::function<void()> call) {
    row r;
    r.entry = std::move(entry);
    r.input = object + " / " + problem;
    r.object = std::move(object);
    r.problem = std::move(problem);
    r.call = std::move(call);
    return r;
}

inline row ok(std::string entry, std::string input, std::function<void()> call) {
    row r;
    r.entry = std::move(entry);
    r.input = std::move(input);
    r.expect_error = false;
    r.call = std::move(call);
    return r;
}

/// Runs every row: failures are test failures, except in known-gap rows.
inline void run(const table& t) {
    for (const row& r : t) {
        INFO("row: ", r.entry, " <- ", r.input);
        std::string failure;
        try {
            r.call();
            if (r.expect_error) failure = "did not throw";
        } catch (const tcq::error& e) {
            const std::string msg = e.what();
            if (!r.expect_error)
                failure = "threw tcq::error: " + msg;
            else if (msg.find(r.object) == std::string::npos || msg.find(r.problem) == std::string::npos)
                failure = "message \"" + msg + "\" does not name object \"" + r.object + "\" and problem \"" +
                          r.problem + "\"";
        } catch (const std::exception& e) {
            failure = std::string("threw a non-tcq exception: ") + e.what();
        } catch (...) {
            failure = "threw a non-std exception";
        }
        if (!r.gap_reason.empty()) {
            if (failure.empty())
                MESSAGE("known gap now passes, drop .gap(): ", r.entry, " <- ", r.input);
            else
                MESSAGE("known gap (", r.gap_reason, "): ", failure);
        } else if (!failure.empty()) {
            FAIL_CHECK(failure);
        }
    }
}

/// A rows × cols matrix inside canary padding: `pad` elements before and
/// after, `gap` between rows. view() is the output a kernel may write.
template <class T>
class guarded {
public:
    guarded(index_t rows, index_t cols, T fill = T{}, index_t gap = 3, index_t pad = 16)
        : rows_(rows), cols_(cols), stride_(cols + gap), pad_(pad),
          buf_(static_cast<std::size_t>(2 * pad + rows * (cols + gap)), canary()) {
        for (index_t r = 0; r < rows; ++r)
            for (index_t c = 0; c < cols; ++c) at(r, c) = fill;
    }
    [[nodiscard]] tcq::matrix_view<T> view() { return {buf_.data() + pad_, rows_, cols_, stride_}; }
    [[nodiscard]] T& at(index_t r, index_t c) { return buf_[static_cast<std::size_t>(pad_ + r * stride_ + c)]; }
    /// True if nothing outside the rows × cols elements changed.
    [[nodiscard]] bool intact() const {
        const T k = canary();
        for (std::size_t i = 0; i < buf_.size(); ++i) {
            const auto off = static_cast<index_t>(i) - pad_;
            const bool inside = off >= 0 && off < rows_ * stride_ && off % stride_ < cols_;
            if (!inside && std::memcmp(&buf_[i], &k, sizeof(T)) != 0) return false;
        }
        return true;
    }
    static T canary() {
        if constexpr (sizeof(T) == 1) return static_cast<T>(0xA5);
        else if constexpr (sizeof(T) == 2) return static_cast<T>(0xA5A5);
        else return static_cast<T>(-12345.678);
    }

private:
    index_t rows_, cols_, stride_, pad_;
    std::vector<T> buf_;
};

/// For file readers: calls `f(bytes)` on every truncation of `bytes`
/// (lengths 0, step, 2·step, … < size) — each must throw tcq::error or
/// return normally, never crash.
template <class F>
void each_truncation(const std::vector<std::uint8_t>& bytes, std::size_t step, F&& f) {
    for (std::size_t n = 0; n < bytes.size(); n += step) f(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
}

/// For file readers: calls `f(bytes')` with byte i XOR-ed by `mask`, for
/// every i in [0, size) in steps of `step`.
template <class F>
void each_byte_flip(const std::vector<std::uint8_t>& bytes, std::size_t step, std::uint8_t mask, F&& f) {
    for (std::size_t i = 0; i < bytes.size(); i += step) {
        auto b = bytes;
        b[i] ^= mask;
        f(b);
    }
}

}  // namespace bad
