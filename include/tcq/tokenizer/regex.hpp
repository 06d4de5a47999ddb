#pragma once
/// @file regex.hpp
/// @brief A compiled PCRE2 pattern (UTF + Unicode properties) and the
/// left-to-right list of its non-overlapping matches.
///
/// The pre-tokenizer split patterns of `tokenizer.json` use `\p{L}`, `\p{N}`,
/// `(?i:…)` and the lookahead `(?!\S)`; Hugging Face runs them with Oniguruma. PCRE2
/// with PCRE2_UTF | PCRE2_UCP gives the same classes from its own Unicode
/// tables, so tcq carries none.

#ifndef PCRE2_CODE_UNIT_WIDTH
/// tcq uses the 8-bit (UTF-8) PCRE2 library, libpcre2-8.
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pcre2.h>

#include "tcq/core/error.hpp"
#include "tcq/tokenizer/utf8.hpp"

namespace tcq::tok {

/// One match: byte offsets [begin, end) into the subject.
struct match_range {
    std::size_t begin = 0;  ///< first byte
    std::size_t end = 0;    ///< one past the last byte
};

/// A compiled pattern; cheap to copy (shared, immutable), matching is thread-safe.
class regex {
public:
    /// Compiles `pattern` (a literal string if `literal`); `where` names the
    /// JSON field for the error when the pattern does not compile.
    regex(std::string_view pattern, bool literal, std::string_view where) {
        int err = 0;
        PCRE2_SIZE off = 0;
        // PCRE2 refuses UCP with LITERAL; a literal needs no character classes anyway.
        const std::uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
        pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err,
                                      &off, nullptr);
        if (!c) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            fail(where, ": pattern does not compile at offset ", off, ": ", reinterpret_cast<const char*>(msg));
        }
        code_.reset(c, pcre2_code_free);
        // JIT is only speed; without it (unsupported CPU) the interpreter gives the same matches.
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
        pcre2_match_context* mc = pcre2_match_context_create(nullptr);
        if (!mc) fail(where, ": out of memory");
        // Hostile patterns (fuzzing) must fail, not run for hours.
        pcre2_set_match_limit(mc, 10'000'000);
        pcre2_set_depth_limit(mc, 10'000);
        context_.reset(mc, pcre2_match_context_free);
        where_ = where;
    }

    /// Non-overlapping matches in `text` (well-formed UTF-8), left to right.
    /// After an empty match the next search starts one character later.
    [[nodiscard]] std::vector<match_range> find_all(std::string_view text) const {
        std::vector<match_range> out;
        std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
            pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
        if (!md) fail(where_, ": out of memory");
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
        std::size_t start = 0;
        std::uint32_t flags = 0;
        while (start <= text.size()) {
            const int rc = pcre2_match(code_.get(), subject, text.size(), start, flags | PCRE2_NO_UTF_CHECK, md.get(),
                                       context_.get());
            if (rc == PCRE2_ERROR_NOMATCH) {
                if (flags == 0 || start >= text.size()) break;
                start += utf8_lead_length(static_cast<unsigned char>(text[start]));
                flags = 0;
                continue;
            }
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                fail(where_, ": pattern matching failed: ", reinterpret_cast<const char*>(msg));
            }
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
            // \K in a lookbehind can report end < begin; such a pattern is not a split pattern.
            if (ov[1] < ov[0] || ov[1] < start) fail(where_, ": pattern reports a match ending before it starts");
            out.push_back({ov[0], ov[1]});
            flags = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0u;
            start = ov[1];
        }
        return out;
    }

private:
    std::shared_ptr<pcre2_code> code_;
    std::shared_ptr<pcre2_match_context> context_;
    std::string where_;
};

}  // namespace tcq::tok
