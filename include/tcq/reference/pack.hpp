#pragma once
/// @file reference/pack.hpp
/// @brief Scalar twins of the packed kernels (pack/dequantize.hpp,
/// pack/gemv_batch.hpp, pack/gemv.hpp, pack/gemv_batch_int8.hpp, io/checksum.hpp). Plain loops over
/// block_code(), written straight from the canonical order documented in
/// pack/gemv_batch.hpp: the definition the SIMD kernels are tested against.

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/pack/int8_math.hpp"
#include "tcq/pack/packed_matrix.hpp"

namespace tcq::reference {

/// The "magic" float of code q at `Bits` bits, 1 + q·2^-Bits (exact): what
/// the SIMD block decoders (pack/decode.hpp) produce for each code.
template <int Bits>
constexpr float code_magic(unsigned q) {
    return 1.f + static_cast<float>(q) * (1.f / static_cast<float>(1u << Bits));
}

/// out = Ŵ, element by element.
inline void dequantize(const packed_view& W, matrix_view<float> out) {
    require_shape(out, W.rows(), W.cols(), "reference::dequantize: out");
    for (index_t r = 0; r < W.rows(); ++r)
        for (index_t c = 0; c < W.cols(); ++c) {
            const index_t g = W.group_of(c);
            out(r, c) = dequant_code(static_cast<float>(row_code(W.row_codes(r), W.bits(), c)), W.scale(r, g),
                                     static_cast<float>(W.zero_code(r, g)));
        }
    // The plain bit-by-bit walk (shared with CUDA), twin of kept_cursor.
    const auto& o = W.parts().kept;
    std::uint64_t k = 0, pos = 0;
    if (!o.values.empty())
        for (index_t r = 0; r < W.rows(); ++r)
            walk_kept_row(o.bitmap.data(), o.low_cols.data(), o.values.data(), kept_buckets(W.cols()), k, pos,
                             [&](index_t c, std::uint16_t v) { out(r, c) = decode_value(v, W.info().kept_format); });
}

/// y = Ŵx for one vector in the canonical order of pack/gemv_batch.hpp.
inline void gemv(const packed_view& W, std::span<const float> x, std::span<float> y) {
    const packed_info& info = W.info();
    require(static_cast<index_t>(x.size()) == info.cols && static_cast<index_t>(y.size()) == info.rows,
            "reference::gemv: size mismatch");
    const index_t nb = info.blocks_per_row();
    const index_t P = nb * 64;
    const index_t G = info.groups(), G16 = (G + 15) / 16 * 16;
    const float two_b = static_cast<float>(1u << info.bits);
    std::vector<float> xp(static_cast<std::size_t>(P), 0.f);
    std::copy(x.begin(), x.end(), xp.begin());
    auto X = [&](index_t c) { return xp[static_cast<std::size_t>(c)]; };
    const bool regular = !info.act_order && (info.group_size == 0 || info.group_size % 64 == 0);
    const index_t gcols = info.group_size ? info.group_size : P;
    std::vector<float> XS(static_cast<std::size_t>(G16), 0.f);
    if (regular)
        for (index_t g = 0; g < G; ++g) {
            float l[16] = {};
            for (index_t c = g * gcols; c < std::min(P, (g + 1) * gcols); ++c) l[c % 16] = l[c % 16] + X(c);
            XS[static_cast<std::size_t>(g)] = simd::fold_lanes(l);
        }
    kept_cursor cur(W.parts().kept, info.cols, 0);
    for (index_t r = 0; r < info.rows; ++r) {
        const std::uint8_t* codes = W.row_codes(r);
        auto q = [&](index_t c) {
            return static_cast<float>(block_code(codes + (c / 64) * block_bytes(info.bits), info.bits, static_cast<int>(c % 64)));
        };
        float acc;
        if (regular) {
            float Y[16] = {};
            for (index_t g = 0, b0 = 0; b0 < nb; ++g, b0 += gcols / 64) {
                const index_t b1 = std::min(nb, b0 + gcols / 64);
                float T[2][16] = {};
                for (index_t c = 64 * b0; c < 64 * b1; ++c) {
                    const float m = 1.f + q(c) / two_b;  // exact magic float
                    T[(c / 16) % 2][c % 16] = std::fma(m, X(c), T[(c / 16) % 2][c % 16]);
                }
                const float S = W.scale(r, g) * two_b;
                for (int l = 0; l < 16; ++l) Y[l] = std::fma(S, T[0][l] + T[1][l], Y[l]);
            }
            float C[16] = {};
            for (index_t g = 0; g < G16; ++g) {
                const float w = g < G ? W.scale(r, g) * (two_b + static_cast<float>(W.zero_code(r, g))) : 0.f;
                C[g % 16] = std::fma(w, XS[static_cast<std::size_t>(g)], C[g % 16]);
            }
            acc = simd::fold_lanes(Y) - simd::fold_lanes(C);
        } else {
            float A[4][16] = {};
            for (index_t c = 0; c < P; ++c) {
                const index_t g = W.group_of(std::min(c, info.cols - 1));
                const float w = W.scale(r, g) * (q(c) - static_cast<float>(W.zero_code(r, g)));
                A[(c / 16) % 4][c % 16] = std::fma(w, X(c), A[(c / 16) % 4][c % 16]);
            }
            float l[16];
            for (int i = 0; i < 16; ++i) l[i] = (A[0][i] + A[1][i]) + (A[2][i] + A[3][i]);
            acc = simd::fold_lanes(l);
        }
        float o[16] = {};
        cur.next_row([&](index_t j, index_t c, std::uint16_t v) {
            o[j % 16] = std::fma(decode_value(v, info.kept_format), X(c), o[j % 16]);
        });
        y[static_cast<std::size_t>(r)] = acc + simd::fold_lanes(o);
    }
}

/// Y = X·Ŵᵀ (X: n × cols, Y: n × rows), one reference::gemv per row of X.
inline void gemv_batch(const packed_view& W, matrix_view<const float> X, matrix_view<float> Y) {
    require(X.cols() == W.cols(), "reference::gemv_batch: X columns mismatch");
    require_shape(Y, X.rows(), W.rows(), "reference::gemv_batch: Y");
    std::vector<float> y(static_cast<std::size_t>(W.rows()));
    for (index_t i = 0; i < X.rows(); ++i) {
        reference::gemv(W, X.row_span(i), y);
        std::copy(y.begin(), y.end(), Y.row(i));
    }
}

/// y = Ŵx with int8 activations, in the order of pack/int8_math.hpp: x
/// quantized per x-block, exact integer lane sums over the slot order, then
/// the fixed float epilogue. Regular grouping only.
inline void gemv_int8(const packed_view& W, std::span<const float> x, std::span<float> y) {
    const packed_info& info = W.info();
    require(static_cast<index_t>(x.size()) == info.cols && static_cast<index_t>(y.size()) == info.rows,
            "reference::gemv_int8: size mismatch");
    require(!info.act_order && info.group_size % 64 == 0, "reference::gemv_int8: unsupported layout");
    const index_t nb = info.blocks_per_row(), P = nb * 64, G = info.groups(), G16 = (G + 15) / 16 * 16;
    const index_t bpg = info.group_size ? info.group_size / 64 : nb;
    const index_t kx = int8_xblock_codes(info.group_size), nx = (nb + kx - 1) / kx;
    std::vector<float> xp(static_cast<std::size_t>(P), 0.f);
    std::copy(x.begin(), x.end(), xp.begin());
    // Quantized x in column order, x-block scales, zero-point sums XZ_g.
    std::vector<int> xq(static_cast<std::size_t>(P), 0);
    std::vector<float> sx(static_cast<std::size_t>(nx)), XZ(static_cast<std::size_t>(G16), 0.f);
    for (index_t j = 0; j < nx; ++j) {
        const index_t c0 = 64 * kx * j, c1 = std::min(P, c0 + 64 * kx);
        float amax = 0.f;
        bool finite = true;
        for (index_t c = c0; c < c1; ++c) {
            amax = std::max(amax, std::fabs(xp[static_cast<std::size_t>(c)]));
            finite = finite && std::isfinite(xp[static_cast<std::size_t>(c)]);
        }
        const float s = finite ? int8_scale(amax) : std::nanf("");
        sx[static_cast<std::size_t>(j)] = s;
        int sum = 0;
        if (finite && amax > 0.f)
            for (index_t c = c0; c < c1; ++c) {
                xq[static_cast<std::size_t>(c)] = int8_quantize(xp[static_cast<std::size_t>(c)], s);
                sum += xq[static_cast<std::size_t>(c)];
            }
        float& z = XZ[static_cast<std::size_t>(j * kx / bpg)];
        z = int8_block_step(static_cast<float>(sum), s, z);
    }
    kept_cursor cur(W.parts().kept, info.cols, 0);
    for (index_t r = 0; r < info.rows; ++r) {
        const std::uint8_t* codes = W.row_codes(r);
        float Y[2][16] = {};
        for (index_t j = 0; j < nx; ++j) {
            std::int32_t D[16] = {};
            for (index_t b = j * kx; b < std::min(nb, j * kx + kx); ++b)
                for (int p = 0; p < 64; ++p) {
                    const int i = int8_slot_code(info.bits, p);
                    D[p / 4] += static_cast<std::int32_t>(block_code(codes + b * block_bytes(info.bits), info.bits, i)) *
                                xq[static_cast<std::size_t>(64 * b + i)];
                }
            const float w = int8_scale_product(W.scale(r, j * kx / bpg), sx[static_cast<std::size_t>(j)]);
            for (int l = 0; l < 16; ++l) Y[j % 2][l] = int8_xblock_step(static_cast<float>(D[l]), w, Y[j % 2][l]);
        }
        float l16[16], C[16] = {};
        for (int l = 0; l < 16; ++l) l16[l] = Y[0][l] + Y[1][l];
        for (index_t g = 0; g < G16; ++g) {
            const float w = g < G ? int8_zero_weight(W.scale(r, g), static_cast<float>(W.zero_code(r, g))) : 0.f;
            C[g % 16] = int8_zero_step(w, XZ[static_cast<std::size_t>(g)], C[g % 16]);
        }
        const float dense = simd::fold_lanes(l16) - simd::fold_lanes(C);
        float o[16] = {};
        cur.next_row([&](index_t j, index_t c, std::uint16_t v) {
            o[j % 16] = std::fma(decode_value(v, info.kept_format), xp[static_cast<std::size_t>(c)], o[j % 16]);
        });
        y[static_cast<std::size_t>(r)] = dense + simd::fold_lanes(o);
    }
}

/// Y = X·Ŵᵀ with int8 activations, one reference::gemv_int8 per row of X.
inline void gemv_batch_int8(const packed_view& W, matrix_view<const float> X, matrix_view<float> Y) {
    require(X.cols() == W.cols(), "reference::gemv_batch_int8: X columns mismatch");
    require_shape(Y, X.rows(), W.rows(), "reference::gemv_batch_int8: Y");
    std::vector<float> y(static_cast<std::size_t>(W.rows()));
    for (index_t i = 0; i < X.rows(); ++i) {
        reference::gemv_int8(W, X.row_span(i), y);
        std::copy(y.begin(), y.end(), Y.row(i));
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
/// 0xFFFFFFFF), bit by bit. `crc` continues a previous result.
inline std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) {
    crc = ~crc;
    for (std::byte b : data) {
        crc ^= static_cast<std::uint32_t>(b);
        for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

}  // namespace tcq::reference
