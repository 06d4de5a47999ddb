#pragma once
/// @file utf8.hpp
/// @brief UTF-8 decoding, encoding and validation for the tokenizer.
///
/// Tokenizer input is bytes; everything downstream (regex with PCRE2_UTF,
/// utf8proc, the BPE character split) needs well-formed UTF-8, so the
/// tokenizer validates once at the entry and the other helpers may assume it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tcq/core/error.hpp"

namespace tcq::tok {

/// Length in bytes of the well-formed UTF-8 sequence starting at `s[i]`, or 0
/// if it is malformed (bad lead byte, truncated, overlong, surrogate, > U+10FFFF).
[[nodiscard]] inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    const std::size_t left = s.size() - i;
    const auto cont = [&](std::size_t k) { return (b(i + k) & 0xC0u) == 0x80u; };
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || !cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && b(i + 1) < 0xA0) return 0;  // overlong
        if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && b(i + 1) < 0x90) return 0;  // overlong
        if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // > U+10FFFF
        return 4;
    }
    return 0;
}

/// Throws tcq::error naming `what` and the byte offset unless `s` is well-formed UTF-8.
inline void require_utf8(std::string_view s, std::string_view what) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) fail(what, ": invalid UTF-8 at byte ", i);
        i += n;
    }
}

/// Decodes the code point at `s[i]` (well-formed UTF-8) and advances `i` past it.
[[nodiscard]] inline char32_t next_code_point(std::string_view s, std::size_t& i) noexcept {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto at = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3Fu); };
    char32_t cp = 0;
    if (c < 0x80) {
        cp = c;
        i += 1;
    } else if (c < 0xE0) {
        cp = (static_cast<char32_t>(c & 0x1Fu) << 6) | at(1);
        i += 2;
    } else if (c < 0xF0) {
        cp = (static_cast<char32_t>(c & 0x0Fu) << 12) | (at(1) << 6) | at(2);
        i += 3;
    } else {
        cp = (static_cast<char32_t>(c & 0x07u) << 18) | (at(1) << 12) | (at(2) << 6) | at(3);
        i += 4;
    }
    return cp;
}

/// Appends the UTF-8 encoding of `cp` (a Unicode scalar value) to `out`.
inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

/// Start of the code point that ends at `end` (> 0) in well-formed UTF-8 `s`.
[[nodiscard]] inline std::size_t previous_code_point_start(std::string_view s, std::size_t end) noexcept {
    std::size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0u) == 0x80u) --b;
    return b;
}

/// Byte length of the (well-formed) UTF-8 sequence whose lead byte is `lead`.
[[nodiscard]] constexpr std::size_t utf8_lead_length(unsigned char lead) noexcept {
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

}  // namespace tcq::tok
