#pragma once
/// @file checksum.hpp
/// @brief CRC-32C (Castagnoli) of byte ranges, the checksum of tcq files.
///
/// Reflected polynomial 0x82F63B78, init 0xFFFFFFFF, final xor 0xFFFFFFFF
/// (crc32c("123456789") = 0xE3069283). SSE4.2 crc32 instructions when
/// compiled for them, else a 256-entry table. Scalar twin (bit by bit):
/// reference::crc32c.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace tcq {

namespace detail {
inline constexpr std::array<std::uint32_t, 256> crc32c_table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        t[i] = c;
    }
    return t;
}();
}  // namespace detail

/// CRC-32C of `data`; pass a previous result as `crc` to continue it.
inline std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) {
    std::uint32_t c = ~crc;
    const std::byte* p = data.data();
    std::size_t n = data.size();
#if defined(__SSE4_2__) && defined(__x86_64__)
    std::uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
    }
    c = static_cast<std::uint32_t>(c64);
#endif
    for (; n > 0; --n, ++p) c = (c >> 8) ^ detail::crc32c_table[(c ^ static_cast<std::uint32_t>(*p)) & 0xffu];
    return ~c;
}

}  // namespace tcq
