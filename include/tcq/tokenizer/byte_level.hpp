#pragma once
/// @file byte_level.hpp
/// @brief The GPT-2 byte-to-unicode alphabet of byte-level BPE: every byte
/// becomes one printable code point, so any byte string is a string of
/// vocabulary characters.
///
/// Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to the code point of the
/// same value; the other 68 bytes, in increasing order, to U+0100, U+0101, …

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "tcq/tokenizer/utf8.hpp"

namespace tcq::tok {

/// The byte ↔ code point tables.
class byte_alphabet {
public:
    /// Number of code points the inverse table covers (U+0000 … U+0143).
    static constexpr char32_t span = 256 + 68;

    byte_alphabet() {
        from_cp_.fill(-1);
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
            to_cp_[static_cast<std::size_t>(b)] = cp;
            std::string& u = utf8_[static_cast<std::size_t>(b)];
            append_utf8(u, cp);
            from_cp_[cp] = static_cast<std::int16_t>(b);
        }
    }

    /// The code point standing for byte `b`.
    [[nodiscard]] char32_t code_point(unsigned char b) const noexcept { return to_cp_[b]; }

    /// Appends the alphabet characters of the bytes of `bytes` to `out`.
    void encode(std::string_view bytes, std::string& out) const {
        for (char c : bytes) out += utf8_[static_cast<unsigned char>(c)];
    }

    /// The byte a code point stands for, or -1 if it is not in the alphabet.
    [[nodiscard]] int byte_of(char32_t cp) const noexcept { return cp < span ? from_cp_[cp] : -1; }

    /// The process-wide instance.
    [[nodiscard]] static const byte_alphabet& get() {
        static const byte_alphabet a;
        return a;
    }

private:
    std::array<char32_t, 256> to_cp_{};
    std::array<std::string, 256> utf8_{};
    std::array<std::int16_t, span> from_cp_{};
};

}  // namespace tcq::tok
