#pragma once
/// @file dequantize.hpp
/// @brief Packed matrix → fp32: Ŵ = s·(q − z) at quantized positions, the
/// 16-bit value at kept ones. Bit for bit equal to tcq::fake_quantize on the
/// same grid (same element math, quant/element.hpp). Scalar twin:
/// reference::dequantize.

#include <algorithm>
#include <vector>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/pack/decode.hpp"
#include "tcq/pack/packed_matrix.hpp"

namespace tcq {

namespace detail {
template <int Bits, class Arch>
void dequantize_rows(Arch arch, const packed_view& W, index_t r0, index_t r1, matrix_view<float> out) {
    const packed_info& info = W.info();
    const index_t nb = info.blocks_per_row(), G = info.groups();
    const bool chunk_groups = !info.act_order && info.group_size % 16 == 0;
    std::vector<float> sf(static_cast<std::size_t>(G)), zf(sf.size());
    std::vector<std::int32_t> gcol;
    if (!chunk_groups) {
        gcol.resize(static_cast<std::size_t>(nb * block_weights));
        for (index_t c = 0; c < nb * block_weights; ++c)
            gcol[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(W.group_of(std::min(c, info.cols - 1)));
    }
    alignas(64) float tmp[16];
    const std::uint8_t* end = W.parts().codes.data() + W.parts().codes.size();
    kept_cursor cur(W.parts().kept, info.cols, r0);
    for (index_t r = r0; r < r1; ++r) {
        for (index_t g = 0; g < G; ++g) {
            sf[static_cast<std::size_t>(g)] = W.scale(r, g);
            zf[static_cast<std::size_t>(g)] = static_cast<float>(W.zero_code(r, g));
        }
        const std::uint8_t* codes = W.row_codes(r);
        float* o = out.row(r);
        for (index_t b = 0; b < nb; ++b) {
            lanes16 q[4];
            decode_block<Bits>(arch, codes + b * block_bytes(Bits), q, end - (codes + b * block_bytes(Bits)) >= 32);
            for (int k = 0; k < 4; ++k) {
                const index_t c = b * block_weights + 16 * k;
                if (c >= info.cols) break;
                lanes16 s, z;
                if (chunk_groups) {
                    const index_t g = W.group_of(c);
                    s = l16_set(sf[static_cast<std::size_t>(g)]);
                    z = l16_set(zf[static_cast<std::size_t>(g)]);
                } else {
                    s = l16_gather(sf.data(), gcol.data() + c);
                    z = l16_gather(zf.data(), gcol.data() + c);
                }
                const lanes16 w = l16_dequant(magic_to_code<Bits>(q[k]), s, z);
                if (c + 16 <= info.cols) {
                    l16_store(w, o + c);
                } else {
                    l16_store(w, tmp);
                    std::copy(tmp, tmp + (info.cols - c), o + c);
                }
            }
        }
        cur.next_row([&](index_t, index_t c, std::uint16_t v) { o[c] = decode_value(v, info.kept_format); });
    }
}
}  // namespace detail

/// out = Ŵ (rows × cols fp32). Deterministic; rows in parallel chunks of 64.
/// `arch` picks the instruction set; every choice gives the same bits.
template <simd::isa::tag Arch>
void dequantize(const packed_view& W, matrix_view<float> out, Arch arch, const exec_policy& pol = seq()) {
    require(!W.empty(), "dequantize: empty packed matrix");
    require_shape(out, W.rows(), W.cols(), "dequantize: out");
    detail::dispatch_bits(W.bits(), [&]<int Bits>() {
        parallel_for(pol, W.rows(), cost::skip_rows,
                     [&](index_t r0, index_t r1) { detail::dequantize_rows<Bits>(arch, W, r0, r1, out); });
    });
}

/// dequantize with the best instruction set compiled in.
inline void dequantize(const packed_view& W, matrix_view<float> out, const exec_policy& pol = seq()) {
    dequantize(W, out, simd::isa::best{}, pol);
}

}  // namespace tcq
