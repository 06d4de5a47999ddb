#pragma once
/// @file unicode.hpp
/// @brief Unicode normalization forms and character classes from utf8proc
/// (its tables, not hand-written ones).

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <utf8proc.h>

#include "tcq/core/error.hpp"

namespace tcq::tok {

/// The four Unicode normalization forms.
enum class unicode_form { nfc, nfd, nfkc, nfkd };

/// `s` (well-formed UTF-8) in normalization form `form`.
[[nodiscard]] inline std::string normalize_unicode(std::string_view s, unicode_form form) {
    if (s.empty()) return {};
    int opts = UTF8PROC_STABLE;
    switch (form) {
        case unicode_form::nfc: opts |= UTF8PROC_COMPOSE; break;
        case unicode_form::nfd: opts |= UTF8PROC_DECOMPOSE; break;
        case unicode_form::nfkc: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
        case unicode_form::nfkd: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                            static_cast<utf8proc_ssize_t>(s.size()), &out,
                                            static_cast<utf8proc_option_t>(opts));
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(out, &std::free);
    if (n < 0) fail("Unicode normalization failed: ", utf8proc_errmsg(n));
    return {reinterpret_cast<const char*>(out), static_cast<std::size_t>(n)};
}

/// True for the White_Space property (what Rust's char::is_whitespace and
/// regex `\s` mean): the space separators Zs, Zl, Zp plus U+0009..U+000D and U+0085.
[[nodiscard]] inline bool is_white_space(char32_t cp) noexcept {
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return true;
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

/// A word character for `single_word` added tokens: letters, marks, decimal
/// and letter numbers, connector punctuation (Rust regex `\w` up to the few
/// Other_Alphabetic symbols).
[[nodiscard]] inline bool is_word_char(char32_t cp) noexcept {
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_PC:
            return true;
        default:
            return false;
    }
}

}  // namespace tcq::tok
