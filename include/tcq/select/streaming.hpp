#pragma once
/// @file streaming.hpp
/// @brief Exact top-k over matrices streamed one at a time: two passes, O(k)
/// memory plus a fixed histogram; also the building blocks for sharded runs.
///
/// Pass 1 (score_histogram::add) validates and counts; its cut() gives the
/// boundary bucket b*. Pass 2 (mark_above) sets the mask bits of every score
/// above b* and collects the scores inside b* as (key, matrix, flat)
/// candidates, keeping only the best `need` (compaction when the buffer
/// reaches 2·need + 4096). resolve() picks the need-th candidate in the
/// selection order: that is the exact threshold, and apply() sets the bits of
/// the candidates up to it.
///
/// Working memory: the histogram (512 KiB + 256 KiB per thread during pass 1)
/// and 16 bytes per held candidate: ≤ 2·need + 4096 shared plus 4096 per
/// thread, need ≤ k. Masks (1 bit per weight) are the output.
///
/// Sharded protocol (matrices split over machines, global matrix indices):
///  1. each shard: score_histogram h(k); h.add(...) per matrix; send h.serialize();
///  2. coordinator: merge all; cut = h.cut(); send cut to the shards;
///  3. each shard: boundary_candidates c(cut); mark_above(cut, m, ...) per
///     matrix; send c.serialize();
///  4. coordinator: merge all; t = c.resolve(); send t;
///  5. each shard: its own c.apply(t, its masks, its first matrix index).
/// The masks are bit-identical to one in-memory selection over all matrices.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "tcq/core/byte_io.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/select/budget.hpp"
#include "tcq/select/histogram.hpp"
#include "tcq/select/order.hpp"
#include "tcq/select/row_topk.hpp"
#include "tcq/select/selection.hpp"

namespace tcq {

class boundary_candidates;
void mark_above(const boundary_cut& cut, index_t matrix, matrix_view<const float> scores, mask& out,
                boundary_candidates& cands, std::string_view what = "scores", const exec_policy& pol = seq());
void mark_above(const boundary_cut& cut, std::span<const matrix_view<const float>> views, index_t first_matrix,
                std::span<mask> out, boundary_candidates& cands, std::span<const std::string> names = {},
                const exec_policy& pol = seq());

/// Pass-2 state: the best `need` weights of the boundary bucket seen so far,
/// and how many weights were seen above / inside it (checked against pass 1).
class boundary_candidates {
public:
    boundary_candidates() = default;
    /// Empty state for `cut`.
    explicit boundary_candidates(const boundary_cut& cut) : cut_(cut) {
        require(cut.k >= 0 && cut.above >= 0 && cut.need >= 0 && cut.in_bucket >= cut.need &&
                    cut.above + cut.need == cut.k && (cut.k == 0 || cut.need >= 1),
                "boundary_candidates: inconsistent cut (k ", cut.k, ", above ", cut.above, ", need ", cut.need,
                ", in bucket ", cut.in_bucket, ")");
    }

    /// The cut this state belongs to.
    [[nodiscard]] const boundary_cut& cut() const noexcept { return cut_; }
    /// Candidates currently held.
    [[nodiscard]] std::size_t held() const noexcept { return best_.size(); }
    /// Weights seen above the boundary bucket in pass 2.
    [[nodiscard]] std::uint64_t above_seen() const noexcept { return above_; }
    /// Weights seen inside the boundary bucket in pass 2.
    [[nodiscard]] std::uint64_t bucket_seen() const noexcept { return seen_; }

    /// Adds another shard's pass-2 state (same cut).
    void merge(const boundary_candidates& o) {
        require(o.cut_ == cut_, "boundary_candidates::merge: states are for different cuts");
        add(o.best_, o.above_, o.seen_);
    }

    /// The exact threshold: the need-th best candidate. Throws if pass 2 saw
    /// other counts than pass 1 (scores changed between the passes, or shards
    /// are missing).
    [[nodiscard]] threshold resolve() const {
        require(above_ == static_cast<std::uint64_t>(cut_.above) && seen_ == static_cast<std::uint64_t>(cut_.in_bucket),
                "boundary_candidates::resolve: pass 2 saw ", above_, " scores above the boundary bucket and ", seen_,
                " inside it, pass 1 counted ", cut_.above, " and ", cut_.in_bucket,
                " (scores changed between passes, or shards are missing)");
        threshold t;
        if (cut_.k == 0) return t;
        std::vector<ranked_weight> v = best_;
        const auto nth = v.begin() + (cut_.need - 1);
        std::nth_element(v.begin(), nth, v.end(), precedes);
        t.k = cut_.k;
        t.score = key_score(nth->key);
        t.matrix = nth->matrix;
        t.flat = nth->flat;
        return t;
    }

    /// Sets the bits of the held candidates that `t` admits, for matrices
    /// [first_matrix, first_matrix + masks.size()); others are ignored.
    void apply(const threshold& t, std::span<mask> masks, index_t first_matrix = 0) const {
        if (t.k == 0) return;
        const ranked_weight tw{score_key(t.score), static_cast<std::uint32_t>(t.matrix), t.flat};
        for (const auto& w : best_) {
            const index_t m = static_cast<index_t>(w.matrix) - first_matrix;
            if (m < 0 || m >= static_cast<index_t>(masks.size()) || precedes(tw, w)) continue;
            auto& mk = masks[static_cast<std::size_t>(m)];
            require(w.flat < mk.size(), "boundary_candidates::apply: flat index ", w.flat, " outside matrix ", w.matrix);
            mk.set(w.flat);
        }
    }

    /// Little-endian bytes: "TCQC", u32 version 1, cut (5 × i64: k, bucket,
    /// above, in_bucket, need), u64 above_seen, u64 bucket_seen, u64 n, then n ×
    /// (u32 key, u32 matrix, i64 flat).
    [[nodiscard]] std::vector<std::uint8_t> serialize() const {
        byte_writer<std::uint8_t> out;
        out.put_bytes("TCQC", 4);
        out.put(std::uint32_t{1});
        for (index_t x : {cut_.k, static_cast<index_t>(cut_.bucket), cut_.above, cut_.in_bucket, cut_.need})
            out.put(static_cast<std::uint64_t>(x));
        out.put(above_);
        out.put(seen_);
        out.put(static_cast<std::uint64_t>(best_.size()));
        for (const auto& w : best_) {
            out.put(w.key);
            out.put(w.matrix);
            out.put(static_cast<std::uint64_t>(w.flat));
        }
        return std::move(out).take();
    }

    /// Inverse of serialize(); throws tcq::error on malformed bytes.
    [[nodiscard]] static boundary_candidates deserialize(std::span<const std::uint8_t> in) {
        byte_reader<std::uint8_t> rd(in, "boundary_candidates::deserialize");
        require(in.size() >= 4 && rd.take_str(4) == "TCQC", "boundary_candidates::deserialize: bad magic");
        const auto version = rd.take<std::uint32_t>();
        require(version == 1, "boundary_candidates::deserialize: unsupported version ", version);
        boundary_cut c;
        c.k = static_cast<index_t>(rd.take<std::uint64_t>());
        const auto b = rd.take<std::uint64_t>();
        require(b < score_histogram::buckets, "boundary_candidates::deserialize: bucket ", b, " out of range");
        c.bucket = static_cast<std::uint32_t>(b);
        c.above = static_cast<index_t>(rd.take<std::uint64_t>());
        c.in_bucket = static_cast<index_t>(rd.take<std::uint64_t>());
        c.need = static_cast<index_t>(rd.take<std::uint64_t>());
        boundary_candidates out(c);
        out.above_ = rd.take<std::uint64_t>();
        out.seen_ = rd.take<std::uint64_t>();
        const auto n = rd.take<std::uint64_t>();
        require(n <= rd.remaining() / 16, "boundary_candidates::deserialize: ", n, " entries do not fit");
        out.best_.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t i = 0; i < n; ++i) {
            ranked_weight w;
            w.key = rd.take<std::uint32_t>();
            w.matrix = rd.take<std::uint32_t>();
            w.flat = static_cast<std::int64_t>(rd.take<std::uint64_t>());
            require((w.key >> score_histogram::shift) == c.bucket && w.flat >= 0,
                    "boundary_candidates::deserialize: entry ", i, " is not in the boundary bucket");
            out.best_.push_back(w);
        }
        rd.expect_end();
        require(n <= out.seen_, "boundary_candidates::deserialize: more entries than seen");
        return out;
    }

private:
    friend void mark_above(const boundary_cut&, std::span<const matrix_view<const float>>, index_t, std::span<mask>,
                           boundary_candidates&, std::span<const std::string>, const exec_policy&);

    void add(std::span<const ranked_weight> ws, std::uint64_t above, std::uint64_t seen) {
        above_ += above;
        seen_ += seen;
        for (const auto& w : ws) {
            best_.push_back(w);
            if (best_.size() >= 2 * static_cast<std::size_t>(cut_.need) + 4096) compact();
        }
    }
    /// Keeps the best `need` candidates.
    void compact() {
        const auto need = static_cast<std::size_t>(cut_.need);
        if (best_.size() <= need) return;
        std::nth_element(best_.begin(), best_.begin() + static_cast<std::ptrdiff_t>(need), best_.end(), precedes);
        best_.resize(need);
    }

    boundary_cut cut_{};
    std::vector<ranked_weight> best_;
    std::uint64_t above_ = 0, seen_ = 0;
};

/// Pass 2 over matrices views[i] with global indices first_matrix + i, in one
/// parallel run: ORs into out[i] the bits of the scores above the cut's bucket
/// and hands the scores inside it to `cands`. Validates the scores like pass 1;
/// names[i] (optional) names them in errors. Same result for any thread count.
inline void mark_above(const boundary_cut& cut, std::span<const matrix_view<const float>> views, index_t first_matrix,
                       std::span<mask> out, boundary_candidates& cands, std::span<const std::string> names,
                       const exec_policy& pol) {
    require(out.size() == views.size(), "mark_above: ", out.size(), " masks for ", views.size(), " matrices");
    require(cands.cut() == cut, "mark_above: candidate state is for another cut");
    require(first_matrix >= 0 && first_matrix + static_cast<index_t>(views.size()) <= index_t{0xffffffff},
            "mark_above: matrix indices from ", first_matrix, " out of range");
    for (std::size_t i = 0; i < views.size(); ++i)
        require(out[i].rows() == views[i].rows() && out[i].cols() == views[i].cols(), "mark_above: ",
                i < names.size() ? names[i] : detail::cat("scores[", i, "]"), ": mask is ", out[i].rows(), "x",
                out[i].cols(), ", scores are ", views[i].rows(), "x", views[i].cols());
    // k = 0 selects nothing: both bounds NaN, no compare passes.
    const float lo = cut.k ? score_histogram::bucket_floor(cut.bucket) : score_histogram::bucket_floor(0xffff);
    const float hi = cut.k ? score_histogram::bucket_floor(cut.bucket + 1) : lo;  // +inf for the top bucket
    const std::vector<detail::pass_chunk> chunks = detail::pass_chunks(views);
    std::mutex mu;
    detail::first_bad bad;
    run_tasks(pol, static_cast<index_t>(chunks.size()), [&](index_t t) {
        const detail::pass_chunk& ch = chunks[static_cast<std::size_t>(t)];
        using fb = simd::fbatch;
        const fb vhi(hi);
        const auto matrix = static_cast<std::uint32_t>(first_matrix + static_cast<index_t>(ch.m));
        std::uint64_t* words = out[ch.m].words().data();
        const std::size_t nwords = out[ch.m].words().size();
        std::vector<ranked_weight> local;
        std::uint64_t above = 0, seen = 0;
        auto flush = [&] {
            std::lock_guard lk(mu);
            cands.add(local, above, seen);
            local.clear();
            above = seen = 0;
        };
        // The chunk owns words [f0/64, ceil(f1/64)) of its mask: f0 is a multiple of 64.
        auto put_bits = [&](index_t f, std::uint64_t m) {
            const index_t o = f & 63;
            const auto w = static_cast<std::size_t>(f >> 6);
            words[w] |= m << o;
            if (o && (m >> (64 - o)) && w + 1 < nwords) words[w + 1] |= m >> (64 - o);
            above += static_cast<std::uint64_t>(std::popcount(m));
        };
        detail::for_pieces(views[ch.m], ch.f0, ch.f1, [&](const float* p, index_t f, index_t len) {
            const index_t e = detail::scan_scores(p, len, lo, [&](const float* vals, index_t i, std::uint32_t m) {
                const std::uint32_t gt = detail::lane_bits(fb::load_unaligned(vals) >= vhi) & m;
                if (gt) put_bits(f + i, gt);
                std::uint32_t in = m & ~gt;
                seen += static_cast<std::uint64_t>(std::popcount(in));
                for (; in; in &= in - 1) {
                    const int j = std::countr_zero(in);
                    local.push_back({score_key(vals[j]), matrix, f + i + j});
                }
                if (local.size() >= 4096) flush();
            });
            if (e >= 0) bad.report(ch.m, f + e);
        });
        if (!local.empty() || above || seen) flush();
    });
    bad.check(views, names);
}

/// Pass 2 over one matrix with global index `matrix`; see the overload above.
inline void mark_above(const boundary_cut& cut, index_t matrix, matrix_view<const float> scores, mask& out,
                       boundary_candidates& cands, std::string_view what, const exec_policy& pol) {
    const std::string name(what);
    mark_above(cut, std::span<const matrix_view<const float>>(&scores, 1), matrix, std::span<mask>(&out, 1), cands,
               std::span<const std::string>(&name, 1), pol);
}

/// Supplies the scores of matrix `m` for pass `pass` (0 or 1). The view must
/// stay valid until the next call, match the declared shape, and hold the same
/// scores on both passes (checked through the pass-1 counts).
using score_provider = std::function<matrix_view<const float>(index_t m, int pass)>;

namespace detail {
inline matrix_view<const float> provide_checked(const score_provider& provide, std::span<const matrix_shape> shapes,
                                                index_t m, int pass) {
    const auto& s = shapes[static_cast<std::size_t>(m)];
    const matrix_view<const float> v = provide(m, pass);
    require_shape(v, s.rows, s.cols, detail::cat("select: scores of '", s.name, "' (matrix ", m, ", pass ", pass, ")"));
    return v;
}

/// Exact top-k of one matrix (both passes over the same view).
inline threshold select_matrix(matrix_view<const float> v, index_t k, index_t m, mask& out, std::string_view what,
                               const exec_policy& pol) {
    score_histogram h(k);
    h.add(v, what, pol);
    const boundary_cut cut = h.cut();
    if (k == 0) return {};
    boundary_candidates c(cut);
    mark_above(cut, m, v, out, c, what, pol);
    const threshold t = c.resolve();
    c.apply(t, std::span<mask>(&out, 1), m);
    return t;
}
}  // namespace detail

namespace detail {
/// select_streaming and select_topk. `all` (in memory only) holds every view:
/// the global passes then run over all matrices at once.
inline selection select_impl(std::span<const matrix_shape> shapes, const score_provider& provide, const budget& b,
                             select_scope scope, std::span<const matrix_view<const float>> all,
                             const exec_policy& pol) {
    require(shapes.size() <= 0xffffffffu, "select: too many matrices (", shapes.size(), ")");
    const std::vector<index_t> ks = resolve_budget(b, scope, shapes);
    selection out;
    out.scope = scope;
    const auto M = static_cast<index_t>(shapes.size());
    out.masks.reserve(shapes.size());
    std::vector<std::string> names;
    for (const auto& s : shapes) {
        out.masks.emplace_back(s.rows, s.cols);
        out.scored += s.size();
        names.push_back(detail::cat("select: scores of '", s.name, "'"));
    }
    const auto at = [](index_t m) { return static_cast<std::size_t>(m); };
    switch (scope) {
        case select_scope::global: {
            score_histogram h(ks[0]);
            if (!all.empty()) h.add(all, names, pol);
            else
                for (index_t m = 0; m < M; ++m) h.add(provide_checked(provide, shapes, m, 0), names[at(m)], pol);
            const boundary_cut cut = h.cut();
            threshold t;
            if (cut.k > 0) {
                boundary_candidates c(cut);
                if (!all.empty()) mark_above(cut, all, 0, out.masks, c, names, pol);
                else
                    for (index_t m = 0; m < M; ++m)
                        mark_above(cut, m, provide_checked(provide, shapes, m, 1), out.masks[at(m)], c, names[at(m)], pol);
                t = c.resolve();
                c.apply(t, out.masks);
            }
            out.thresholds = {t};
            break;
        }
        case select_scope::per_matrix:
            for (index_t m = 0; m < M; ++m)
                out.thresholds.push_back(select_matrix(provide_checked(provide, shapes, m, 0), ks[at(m)], m,
                                                       out.masks[at(m)], names[at(m)], pol));
            break;
        case select_scope::per_row:
            for (index_t m = 0; m < M; ++m) {
                const std::size_t first = out.thresholds.size();
                out.thresholds.resize(first + static_cast<std::size_t>(shapes[at(m)].rows));
                select_rows(provide_checked(provide, shapes, m, 0), ks[at(m)], m, out.masks[at(m)],
                            std::span<threshold>(out.thresholds).subspan(first), names[at(m)], pol);
            }
            break;
    }
    for (const auto& mk : out.masks) out.selected += mk.count();
    if (b.type() == budget::kind::bits_per_weight)
        out.bits = storage_bits(shapes, out.kept_per_matrix(), b.format(), b.act_order());
    return out;
}
}  // namespace detail

/// Exact top-k selection over matrices whose scores arrive one at a time from
/// `provide` (see score_provider); budget and scope as in resolve_budget.
/// global: two passes, matrix by matrix (provider called twice per matrix;
/// once when k = 0); per_matrix / per_row: one pass. Masks and thresholds are
/// bit-identical to select_topk.
inline selection select_streaming(std::span<const matrix_shape> shapes, const score_provider& provide, const budget& b,
                                  select_scope scope = select_scope::global, const exec_policy& pol = seq()) {
    require(static_cast<bool>(provide), "select_streaming: no score provider");
    return detail::select_impl(shapes, provide, b, scope, {}, pol);
}

}  // namespace tcq
