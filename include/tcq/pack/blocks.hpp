#pragma once
/// @file blocks.hpp
/// @brief Bit layouts of the packed format, shared by CPU and CUDA code.
///
/// Codes are stored per row in blocks of 64 weights (cost::code_block). Code i
/// of a block (column 64·block + i) is addressed as i = 16·k + j: chunk k ∈
/// 0..3, lane j ∈ 0..15. The block is a little-endian bit stream of 16 lane
/// fields of 4·b bits; field j holds the codes of lane j, chunk k at field bits
/// [b·k, b·k + b). So code i sits at stream bit 4b·j + b·k (stream bit t =
/// bit t % 8 of byte t / 8). Per width (docs/format.md has the byte tables):
///
///   b = 2  16 bytes: byte j, bits [2k, 2k+2)            = code 16k + j.
///   b = 3  24 bytes: bytes 3p..3p+2 hold lanes 2p (bits 0..11) and 2p+1
///          (bits 12..23) of their 24-bit little-endian word.
///   b = 4  32 bytes: u16 j (bytes 2j, 2j+1), bits [4k, 4k+4) = code 16k + j.
///   b = 8  64 bytes: byte 4j + k                           = code 16k + j.
///
/// A 16-lane SIMD register therefore decodes a chunk with one widening per
/// block and a shift + mask per chunk. Padding columns of a last partial
/// block have code 0.

#include <cstdint>

#include "tcq/core/config.hpp"
#include "tcq/core/storage_cost.hpp"

namespace tcq {

static_assert(cost::code_block == 64, "the lane-field layout above assumes 64-weight blocks");

/// Weights per code block.
inline constexpr index_t block_weights = cost::code_block;

/// True for the bit widths the packed format stores: 2, 3, 4, 8.
TCQ_HOST_DEVICE constexpr bool packed_bits_supported(int bits) {
    return bits == 2 || bits == 3 || bits == 4 || bits == 8;
}

/// Bytes of one 64-weight block at `bits` per code: 8·bits.
TCQ_HOST_DEVICE constexpr index_t block_bytes(int bits) { return 8 * static_cast<index_t>(bits); }

/// Stream bit of code i (0..63) in a block of `bits`-bit codes.
TCQ_HOST_DEVICE constexpr int block_code_bit(int bits, int i) { return 4 * bits * (i & 15) + bits * (i >> 4); }

/// Code i (0..63) of the block at `p` holding `bits`-bit codes (bits ∈ {2,3,4,8}).
TCQ_HOST_DEVICE inline unsigned block_code(const std::uint8_t* p, int bits, int i) {
    const int t = block_code_bit(bits, i);
    unsigned v = static_cast<unsigned>(p[t >> 3]) >> (t & 7);
    if ((t & 7) + bits > 8) v |= static_cast<unsigned>(p[(t >> 3) + 1]) << (8 - (t & 7));
    return v & ((1u << bits) - 1u);
}

/// ORs code q (< 2^bits) into position i of a block; the block must start zeroed.
TCQ_HOST_DEVICE inline void block_put_code(std::uint8_t* p, int bits, int i, unsigned q) {
    const int t = block_code_bit(bits, i);
    p[t >> 3] = static_cast<std::uint8_t>(p[t >> 3] | (q << (t & 7)));
    if ((t & 7) + bits > 8) p[(t >> 3) + 1] = static_cast<std::uint8_t>(p[(t >> 3) + 1] | (q >> (8 - (t & 7))));
}

/// Code of column c in a row whose blocks start at `row` (bits ∈ {2,3,4,8}).
TCQ_HOST_DEVICE inline unsigned row_code(const std::uint8_t* row, int bits, index_t c) {
    return block_code(row + (c / block_weights) * block_bytes(bits), bits,
                      static_cast<int>(c % block_weights));
}

/// Bit `pos` of a little-endian stream of 64-bit words (bit i of word w = stream bit 64w + i).
TCQ_HOST_DEVICE inline unsigned stream_bit(const std::uint64_t* words, std::uint64_t pos) {
    return static_cast<unsigned>((words[pos >> 6] >> (pos & 63)) & 1u);
}

}  // namespace tcq
