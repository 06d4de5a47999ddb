#pragma once
/// @file packed_matrix.hpp
/// @brief The packed low-bit matrix: shape/format info, exact bit accounting,
/// a validated non-owning view, the owning matrix, pack and unpack.
///
/// Arrays (docs/format.md has the byte layout):
///   codes    rows × blocks_per_row blocks of 8·bits bytes (pack/blocks.hpp);
///            a kept weight's code is its group's zero point, so the dense part
///            of any kernel contributes exactly 0 there.
///   scales   rows × groups fp16 bits, row-major; finite and > 0.
///   zeros    rows × groups u8, each ≤ 2^bits − 1.
///   g_idx    cols u16 group indices, only under act-order.
///   kept     pack/kept.hpp.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/storage_cost.hpp"
#include "tcq/pack/blocks.hpp"
#include "tcq/pack/kept.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/quantized.hpp"

namespace tcq {

/// Shape and format of a packed matrix: everything except its arrays.
struct packed_info {
    index_t rows = 0;                                ///< output features (matrix rows)
    index_t cols = 0;                                ///< input features (matrix columns)
    int bits = 0;                                    ///< 2, 3, 4 or 8
    index_t group_size = 0;                          ///< 0: one scale/zero per row
    bool act_order = false;                          ///< a g_idx array is stored
    value_format kept_format = value_format::fp16;  ///< type of the kept weights
    index_t kept = 0;                            ///< number of kept 16-bit weights

    /// Largest code, 2^bits − 1.
    [[nodiscard]] unsigned maxq() const { return (1u << bits) - 1u; }
    /// Scale/zero pairs per row (a partial last group counts).
    [[nodiscard]] index_t groups() const {
        return group_size == 0 ? 1 : (cols + group_size - 1) / group_size;
    }
    /// 64-weight code blocks per row.
    [[nodiscard]] index_t blocks_per_row() const { return (cols + block_weights - 1) / block_weights; }
    /// Bytes of one row of codes.
    [[nodiscard]] index_t row_bytes() const { return blocks_per_row() * block_bytes(bits); }

    /// Exact byte sizes of the stored arrays.
    [[nodiscard]] std::uint64_t code_bytes() const { return u(rows) * u(row_bytes()); }
    /// Bytes of the fp16 scales (rows × groups × 2).
    [[nodiscard]] std::uint64_t scale_bytes() const { return u(rows) * u(groups()) * 2; }
    /// Bytes of the u8 zero points (rows × groups).
    [[nodiscard]] std::uint64_t zero_bytes() const { return u(rows) * u(groups()); }
    /// Bytes of the u16 act-order group indices (cols × 2, or 0 without act-order).
    [[nodiscard]] std::uint64_t g_idx_bytes() const { return act_order ? u(cols) * 2 : 0; }
    /// Bytes of the 16-bit kept-weight values (kept × 2).
    [[nodiscard]] std::uint64_t value_bytes() const { return u(kept) * 2; }
    /// Bytes of the kept weights' low column bytes (one per kept weight).
    [[nodiscard]] std::uint64_t low_col_bytes() const { return u(kept); }
    /// Bytes of the kept bitmap, padded to whole 64-bit words.
    [[nodiscard]] std::uint64_t bitmap_bytes() const {
        return (kept_bitmap_bits(kept, rows, cols) + 63) / 64 * 8;
    }
    /// Bytes of the skip table (two u32 per 64 rows; 0 without kept weights).
    [[nodiscard]] std::uint64_t skip_bytes() const { return kept ? u(kept_skips(rows)) * 8 : 0; }

    /// Throws tcq::error naming `what` unless the shape and format are storable:
    /// 1 ≤ rows, cols < 2^31; bits ∈ {2,3,4,8}; 0 ≤ group_size < 2^31;
    /// 0 ≤ kept ≤ rows·cols with a bitmap below 2^32 bits; ≤ 65536 groups under act-order.
    void validate(std::string_view what) const {
        constexpr index_t lim = index_t{1} << 31;
        require(rows >= 1 && rows < lim && cols >= 1 && cols < lim, what, ": unsupported shape ", rows, "x", cols,
                " (each extent must lie in [1, 2^31))");
        require(packed_bits_supported(bits), what, ": unsupported bit width ", bits,
                " (the packed format stores 2, 3, 4 or 8 bits)");
        require(group_size >= 0 && group_size < lim, what, ": invalid group size ", group_size);
        require(kept_format == value_format::fp16 || kept_format == value_format::bf16, what,
                ": unknown kept value format ", static_cast<int>(kept_format));
        require(kept >= 0 && kept <= rows * cols, what, ": kept count ", kept, " outside [0, ",
                rows * cols, "]");
        require(kept_bitmap_bits(kept, rows, cols) < (std::uint64_t{1} << 32), what,
                ": kept bitmap exceeds the 32-bit offsets of the format");
        require(!act_order || groups() <= 65536, what, ": ", groups(),
                " groups do not fit the u16 act-order group index");
    }

private:
    static std::uint64_t u(index_t v) { return static_cast<std::uint64_t>(v); }
};

/// Exact cost of a packed matrix in bits, from tcq/core/storage_cost.hpp (the model the
/// bit-budget solver uses).
inline storage_cost packed_bits(const packed_info& i) {
    return matrix_cost(i.rows, i.cols, i.bits, i.groups(), i.kept, i.act_order);
}

/// Bits actually stored (array bytes × 8): equal to packed_bits except for the
/// kept bitmap, which is padded to whole 64-bit words.
inline storage_cost stored_bits(const packed_info& i) {
    storage_cost b;
    b.codes = i.code_bytes() * 8;
    b.stats = (i.scale_bytes() + i.zero_bytes()) * 8;
    b.kept = (i.value_bytes() + i.low_col_bytes() + i.bitmap_bytes() + i.skip_bytes()) * 8;
    b.g_idx = i.g_idx_bytes() * 8;
    b.weights = static_cast<std::uint64_t>(i.rows) * static_cast<std::uint64_t>(i.cols);
    return b;
}

/// The arrays of a packed matrix, as non-owning spans.
struct packed_parts {
    std::span<const std::uint8_t> codes;    ///< rows × row_bytes
    std::span<const std::uint16_t> scales;  ///< rows × groups fp16 bits
    std::span<const std::uint8_t> zeros;    ///< rows × groups
    std::span<const std::uint16_t> g_idx;   ///< cols, act-order only
    kept_arrays kept;                ///< empty when there are none
};

class packed_matrix;

/// Validated, non-owning view of a packed matrix: what every kernel takes.
/// Only obtainable through make() (full validation), a packed_matrix, or a
/// loaded file, so kernels may trust every index in it.
class packed_view {
public:
    packed_view() = default;

    /// Checks shape, every array size, every scale (finite fp16 > 0), zero
    /// (≤ maxq), g_idx (< groups), the padding codes (0), the kept bitmap
    /// and columns, and that each kept weight's code is its zero point.
    /// Throws tcq::error naming `what` on the first violation.
    static packed_view make(const packed_info& info, const packed_parts& parts,
                            std::string_view what = "packed matrix") {
        info.validate(what);
        require(parts.codes.size() == info.code_bytes(), what, ": code array has ", parts.codes.size(),
                " bytes, expected ", info.code_bytes());
        const auto nstat = static_cast<std::size_t>(info.rows * info.groups());
        require(parts.scales.size() == nstat, what, ": ", parts.scales.size(), " scales, expected ", nstat);
        require(parts.zeros.size() == nstat, what, ": ", parts.zeros.size(), " zeros, expected ", nstat);
        require(parts.g_idx.size() == (info.act_order ? static_cast<std::size_t>(info.cols) : 0u), what, ": ",
                parts.g_idx.size(), " g_idx entries, expected ", info.act_order ? info.cols : 0);
        for (std::size_t i = 0; i < nstat; ++i) {
            const std::uint16_t h = parts.scales[i];
            require(h != 0 && h < 0x7c00u, what, ": scale of (row ", i / static_cast<std::size_t>(info.groups()),
                    ", group ", i % static_cast<std::size_t>(info.groups()), ") has fp16 bits 0x", std::hex, h,
                    std::dec, ", not a finite positive value");
            require(parts.zeros[i] <= info.maxq(), what, ": zero ", int(parts.zeros[i]), " of (row ",
                    i / static_cast<std::size_t>(info.groups()), ", group ", i % static_cast<std::size_t>(info.groups()),
                    ") exceeds maxq ", info.maxq());
        }
        for (std::size_t c = 0; c < parts.g_idx.size(); ++c)
            require(parts.g_idx[c] < info.groups(), what, ": g_idx[", c, "] = ", parts.g_idx[c], " is not below ",
                    info.groups(), " groups");
        const index_t tail = info.cols % block_weights;
        if (tail)
            for (index_t r = 0; r < info.rows; ++r) {
                const std::uint8_t* last = parts.codes.data() + r * info.row_bytes() + (info.blocks_per_row() - 1) * block_bytes(info.bits);
                for (index_t i = tail; i < block_weights; ++i)
                    require(block_code(last, info.bits, static_cast<int>(i)) == 0, what, ": padding code of row ", r,
                            ", column ", info.cols - tail + i, " is not 0");
            }
        validate_kept(parts.kept, info.rows, info.cols, info.kept, info.kept_format, what);
        packed_view v(info, parts);
        kept_cursor cur(parts.kept, info.cols, 0);
        for (index_t r = 0; r < info.rows; ++r)
            cur.next_row([&](index_t, index_t c, std::uint16_t) {
                const unsigned z = v.zero_code(r, v.group_of(c));
                require(row_code(v.row_codes(r), info.bits, c) == z, what, ": code at kept position (", r, ", ", c,
                        ") is ", row_code(v.row_codes(r), info.bits, c), ", not the zero point ", z);
            });
        return v;
    }

    /// Shape and format.
    [[nodiscard]] const packed_info& info() const noexcept { return info_; }
    /// The (validated) arrays.
    [[nodiscard]] const packed_parts& parts() const noexcept { return parts_; }
    /// Number of rows.
    [[nodiscard]] index_t rows() const noexcept { return info_.rows; }
    /// Number of columns.
    [[nodiscard]] index_t cols() const noexcept { return info_.cols; }
    /// Code width in bits (2, 3, 4 or 8).
    [[nodiscard]] int bits() const noexcept { return info_.bits; }
    /// True for a default-constructed view (no matrix).
    [[nodiscard]] bool empty() const noexcept { return info_.rows == 0; }

    /// Codes of row r (row_bytes() bytes).
    [[nodiscard]] const std::uint8_t* row_codes(index_t r) const noexcept {
        return parts_.codes.data() + r * info_.row_bytes();
    }
    /// Group of column c.
    [[nodiscard]] index_t group_of(index_t c) const noexcept {
        if (info_.act_order) return parts_.g_idx[static_cast<std::size_t>(c)];
        return info_.group_size == 0 ? 0 : c / info_.group_size;
    }
    /// Scale of (row, group) as float (exact).
    [[nodiscard]] float scale(index_t r, index_t g) const noexcept {
        return half_to_float(parts_.scales[static_cast<std::size_t>(r * info_.groups() + g)]);
    }
    /// Zero point of (row, group).
    [[nodiscard]] unsigned zero_code(index_t r, index_t g) const noexcept {
        return parts_.zeros[static_cast<std::size_t>(r * info_.groups() + g)];
    }
    /// Exact cost in bits (cost.hpp).
    [[nodiscard]] storage_cost bits_used() const { return packed_bits(info_); }
    /// Bits actually stored (bitmap padded to 64-bit words).
    [[nodiscard]] storage_cost bits_stored() const { return stored_bits(info_); }

private:
    friend class packed_matrix;
    packed_view(const packed_info& i, const packed_parts& p) : info_(i), parts_(p) {}
    packed_info info_{};
    packed_parts parts_{};
};

/// Options of pack().
struct pack_options {
    /// Storage type of the kept weights (the file field is still `kept_format`).
    value_format kept_format = value_format::fp16;
    /// Check that every non-kept value equals its dequantized code bit for bit
    /// (catches producers whose values and codes disagree).
    bool verify_values = true;
};

/// Owning packed matrix. Built by pack() or copied from a view.
class packed_matrix {
public:
    packed_matrix() = default;
    /// Deep copy of a (validated) view.
    explicit packed_matrix(const packed_view& v) : info_(v.info()) {
        const auto& p = v.parts();
        codes_.assign(p.codes.begin(), p.codes.end());
        scales_.assign(p.scales.begin(), p.scales.end());
        zeros_.assign(p.zeros.begin(), p.zeros.end());
        g_idx_.assign(p.g_idx.begin(), p.g_idx.end());
        out_.values.assign(p.kept.values.begin(), p.kept.values.end());
        out_.low_cols.assign(p.kept.low_cols.begin(), p.kept.low_cols.end());
        out_.bitmap.assign(p.kept.bitmap.begin(), p.kept.bitmap.end());
        out_.skips.assign(p.kept.skips.begin(), p.kept.skips.end());
    }

    /// Shape and format.
    [[nodiscard]] const packed_info& info() const noexcept { return info_; }
    /// View for the kernels (valid while this matrix lives and is not moved-from).
    [[nodiscard]] packed_view view() const {
        return packed_view(info_, packed_parts{codes_, scales_, zeros_, g_idx_, out_.view()});
    }
    /// Exact cost in bits (cost.hpp).
    [[nodiscard]] storage_cost bits_used() const { return packed_bits(info_); }

    friend packed_matrix pack(const quantized_matrix& q, const pack_options& opt, const exec_policy& pol);

private:
    packed_info info_{};
    std::vector<std::uint8_t> codes_;
    std::vector<std::uint16_t> scales_;
    std::vector<std::uint8_t> zeros_;
    std::vector<std::uint16_t> g_idx_;
    kept_storage out_;
};

/// Packs a quantized matrix (GPTQ/RTN result plus its kept mask).
/// Requires: bits ∈ {2,3,4,8}; every scale exactly fp16-representable (fit with
/// grid_spec::fp16_scale = true); every zero an integer in [0, maxq]; codes
/// ≤ maxq; kept values finite and finite in the chosen 16-bit format.
/// Throws tcq::error naming the first offending element otherwise.
inline packed_matrix pack(const quantized_matrix& q, const pack_options& opt = {}, const exec_policy& pol = seq()) {
    constexpr std::string_view what = "pack";
    const grid& g = q.grid;
    require(packed_bits_supported(g.spec.bits), what, ": unsupported bit width ", g.spec.bits,
            " (the packed format stores 2, 3, 4 or 8 bits)");
    packed_info info;
    info.rows = q.rows();
    info.cols = q.cols();
    info.bits = g.spec.bits;
    info.group_size = g.spec.group_size;
    info.act_order = !q.g_idx.empty();
    info.kept_format = opt.kept_format;
    // The mask is the one part whose shape can disagree with the grid's (it may be empty).
    require_mask_shape(q.kept, q.rows(), q.cols(), what);
    const bool has_mask = q.has_kept();
    info.kept = has_mask ? q.kept.count() : 0;
    info.validate(what);
    const index_t G = info.groups();
    require(static_cast<index_t>(g.params.size()) == q.rows() * G, what, ": grid holds ",
            g.params.size(), " parameters, expected ", q.rows() * G);
    const auto n = static_cast<std::size_t>(q.rows() * q.cols());
    require(q.codes.size() == n, what, ": ", q.codes.size(), " codes, expected ", n);
    require(q.values.size() == n, what, ": ", q.values.size(), " values, expected ", n);
    if (info.act_order) {
        require(q.g_idx.size() == static_cast<std::size_t>(q.cols()), what, ": g_idx has ", q.g_idx.size(),
                " entries, expected ", q.cols());
        for (std::size_t c = 0; c < q.g_idx.size(); ++c)
            require(q.g_idx[c] >= 0 && q.g_idx[c] < G, what, ": g_idx[", c, "] = ", q.g_idx[c], " outside [0, ", G,
                    ")");
    }
    const unsigned maxq = info.maxq();
    packed_matrix m;
    m.info_ = info;
    m.scales_.resize(static_cast<std::size_t>(q.rows() * G));
    m.zeros_.resize(m.scales_.size());
    for (index_t r = 0; r < q.rows(); ++r)
        for (index_t gi = 0; gi < G; ++gi) {
            const grid_param p = g.at(r, gi);
            require(std::isfinite(p.scale) && p.scale > 0.f && round_to_half(p.scale) == p.scale, what,
                    ": scale ", p.scale, " of (row ", r, ", group ", gi,
                    ") is not a positive fp16 value; fit the grid with grid_spec::fp16_scale = true");
            require(p.zero >= 0.f && p.zero <= static_cast<float>(maxq) && std::nearbyint(p.zero) == p.zero, what,
                    ": zero ", p.zero, " of (row ", r, ", group ", gi, ") is not an integer in [0, ", maxq, "]");
            m.scales_[static_cast<std::size_t>(r * G + gi)] = float_to_half(p.scale);
            m.zeros_[static_cast<std::size_t>(r * G + gi)] = static_cast<std::uint8_t>(p.zero);
        }
    for (auto gi : q.g_idx) m.g_idx_.push_back(static_cast<std::uint16_t>(gi));
    m.codes_.assign(static_cast<std::size_t>(info.code_bytes()), 0);
    auto group_of = [&](index_t c) { return info.act_order ? index_t{m.g_idx_[static_cast<std::size_t>(c)]} : (info.group_size ? c / info.group_size : 0); };
    auto zero_of = [&](index_t r, index_t gi) { return unsigned{m.zeros_[static_cast<std::size_t>(r * G + gi)]}; };
    parallel_for(pol, q.rows(), 64, [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) {
            std::uint8_t* row = m.codes_.data() + r * info.row_bytes();
            for (index_t c = 0; c < q.cols(); ++c) {
                const auto i = static_cast<std::size_t>(r * q.cols() + c);
                const index_t gi = group_of(c);
                unsigned code;
                if (has_mask && q.kept.test(r, c)) {
                    require(std::isfinite(q.values[i]) &&
                                std::isfinite(decode_value(encode_value(q.values[i], opt.kept_format), opt.kept_format)),
                            what, ": kept weight ", q.values[i], " at (", r, ", ", c, ") is not finite in ",
                            to_string(opt.kept_format),
                            opt.kept_format == value_format::fp16 ? "; store kept weights as bf16" : "");
                    code = zero_of(r, gi);
                } else {
                    code = q.codes[i];
                    require(code <= maxq, what, ": code ", code, " at (", r, ", ", c, ") exceeds maxq ", maxq);
                    if (opt.verify_values) {
                        const float d = dequant_code(static_cast<float>(code), g.at(r, gi).scale, g.at(r, gi).zero);
                        require(d == q.values[i], what, ": value ", q.values[i], " at (", r, ", ", c,
                                ") differs from its dequantized code ", d, " (code ", code, ")");
                    }
                }
                block_put_code(row + (c / block_weights) * block_bytes(info.bits), info.bits,
                               static_cast<int>(c % block_weights), code);
            }
        }
    });
    if (info.kept) {
        const auto flat = q.kept.indices();
        std::vector<std::uint16_t> vals(flat.size());
        for (std::size_t i = 0; i < flat.size(); ++i)
            vals[i] = encode_value(q.values[static_cast<std::size_t>(flat[i])], opt.kept_format);
        m.out_ = build_kept(q.rows(), q.cols(), flat, vals);
    }
    return m;
}

/// Inverse of pack: codes (0 at kept positions), grid (fp16_scale set; the
/// symmetric flag is not stored), g_idx, values (dequantized codes; kept
/// weights at their 16-bit values) and the kept mask (rows × cols, possibly
/// with no bit set).
inline quantized_matrix unpack(const packed_view& p) {
    const packed_info& info = p.info();
    quantized_matrix q;
    grid_spec spec;
    spec.bits = info.bits;
    spec.group_size = info.group_size;
    spec.fp16_scale = true;
    q.grid = grid(spec, info.rows, info.cols);
    for (index_t r = 0; r < info.rows; ++r)
        for (index_t g = 0; g < info.groups(); ++g)
            q.grid.at(r, g) = grid_param{p.scale(r, g), static_cast<float>(p.zero_code(r, g))};
    for (auto gi : p.parts().g_idx) q.g_idx.push_back(gi);
    const auto n = static_cast<std::size_t>(info.rows * info.cols);
    q.codes.resize(n);
    for (index_t r = 0; r < info.rows; ++r)
        for (index_t c = 0; c < info.cols; ++c)
            q.codes[static_cast<std::size_t>(r * info.cols + c)] =
                static_cast<std::uint8_t>(row_code(p.row_codes(r), info.bits, c));
    q.values.resize(n);
    dequantize_codes(q, q.values);  // the grid and g_idx above; kept values follow
    q.kept = mask(info.rows, info.cols);
    if (info.kept) {
        kept_cursor cur(p.parts().kept, info.cols, 0);
        for (index_t r = 0; r < info.rows; ++r)
            cur.next_row([&](index_t, index_t c, std::uint16_t v) {
                const auto i = static_cast<std::size_t>(r * info.cols + c);
                q.kept.set(r, c);
                q.codes[i] = 0;
                q.values[i] = decode_value(v, info.kept_format);
            });
    }
    return q;
}

}  // namespace tcq
