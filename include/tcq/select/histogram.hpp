#pragma once
/// @file histogram.hpp
/// @brief Pass 1 of exact top-k selection: a fixed 2^16-bucket histogram over
/// the bits of the scores, bounded by k, serializable and mergeable.
///
/// Bucket of a score s ≥ 0: score_key(s) >> 15, i.e. its 8 exponent bits and
/// top 8 mantissa bits (relative width 2^-8). The top k weights lie in the
/// buckets ≥ b*, the highest bucket whose suffix count reaches k. Only those
/// buckets need exact counts, so a pass keeps a running lower bound L ≤ b*
/// (the highest bucket whose suffix among the scores seen so far already holds
/// k) and skips scores below it with one SIMD compare; after the first few k
/// scores almost every score is skipped and the pass runs at read bandwidth.
///
/// Canonical state after every add/merge: counts exact for buckets ≥ floor()
/// = b* of the scores seen so far, zero below. It depends only on the scores
/// and k, never on thread count or timing; merging shard states (same k) gives
/// exactly the state of one pass over all shards.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tcq/core/byte_io.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/select/order.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace tcq {

/// The boundary of a top-k selection found by pass 1: the k best weights are
/// the `above` weights in buckets > `bucket` plus the best `need` of the
/// `in_bucket` weights of `bucket`.
struct boundary_cut {
    index_t k = 0;             ///< weights to select
    std::uint32_t bucket = 0;  ///< b*; unused when k = 0
    index_t above = 0;         ///< weights in buckets > b*
    index_t in_bucket = 0;     ///< weights in bucket b*
    index_t need = 0;          ///< k − above, in [1, in_bucket] when k > 0
    /// Field-wise equality.
    friend bool operator==(const boundary_cut&, const boundary_cut&) = default;
};

namespace detail {

/// Bit i set iff lane i of `b` is true.
template <class A>
TCQ_FORCEINLINE std::uint32_t lane_bits(const xsimd::batch_bool<float, A>& b) {
#if defined(__AVX512F__)
    if constexpr (std::is_base_of_v<xsimd::avx512f, A>)
        return static_cast<std::uint32_t>(static_cast<__mmask16>(b));
    else
#endif
#if defined(__AVX__)
        if constexpr (std::is_base_of_v<xsimd::avx, A>)
        return static_cast<std::uint32_t>(_mm256_movemask_ps(static_cast<__m256>(b)));
    else
#endif
#if defined(__SSE2__) || defined(_M_X64)
        if constexpr (std::is_base_of_v<xsimd::sse2, A>)
        return static_cast<std::uint32_t>(_mm_movemask_ps(static_cast<__m128>(b)));
    else
#endif
    {
        alignas(64) bool t[xsimd::batch_bool<float, A>::size];
        b.store_aligned(t);
        std::uint32_t m = 0;
        for (std::size_t i = 0; i < xsimd::batch_bool<float, A>::size; ++i) m |= std::uint32_t{t[i]} << i;
        return m;
    }
}

/// A score is valid iff it is finite and ≥ 0 (NaN fails both compares).
TCQ_FORCEINLINE bool valid_score(float s) { return s >= 0.f && s <= FLT_MAX; }

/// First invalid score among n at p, or −1.
inline index_t first_invalid(const float* p, index_t n) {
    for (index_t i = 0; i < n; ++i)
        if (!valid_score(p[i])) return i;
    return -1;
}

/// Throws naming the first invalid score of row r.
[[noreturn]] inline void invalid_score_fail(std::string_view what, matrix_view<const float> s, index_t r) {
    for (index_t c = 0; c < s.cols(); ++c)
        if (!valid_score(s(r, c)))
            fail(what, ": score ", s(r, c), " at (", r, ", ", c, ") is ",
                 std::isnan(s(r, c)) ? "NaN" : s(r, c) < 0.f ? "negative" : "infinite",
                 "; scores must be finite and >= 0");
    fail(what, ": invalid score in row ", r);
}

/// Scans n scores at p: validates them and calls on_hit(vals, i, m) for every
/// batch holding a score ≥ lo, in order, where vals points at the batch's
/// values (a zero-padded copy for the tail), i is its offset and m its lane
/// bits (v ≥ lo, real lanes only). Returns the offset of the first invalid
/// score (NaN, Inf, negative) or −1.
///
/// Hot loop: one load, one u32 max of the raw bits (bits above FLT_MAX's flag
/// a negative, infinite or NaN score, or −0, which is valid, so a flagged
/// piece is re-checked exactly) and one compare per batch. Hits are recorded
/// as a 64-bit batch mask per block and handled after the block, so the loop
/// makes no calls and keeps its registers.
template <class OnHit>
TCQ_FORCEINLINE index_t scan_scores(const float* p, index_t n, float lo, OnHit&& on_hit) {
    using fb = simd::fbatch;
    using ub = simd::ubatch;
    constexpr index_t W = static_cast<index_t>(fb::size);
    constexpr index_t block = 64 * W;
    const fb vlo(lo);
    const index_t full = n - n % W;
    std::uint32_t worst = 0;
    for (index_t i = 0; i < full; i += block) {
        const index_t end = std::min(full, i + block);
        ub mx(0u);
        std::uint64_t hits = 0;
        for (index_t j = i, b = 0; j < end; j += W, ++b) {
            const fb v = fb::load_unaligned(p + j);
            mx = xsimd::max(mx, xsimd::bitwise_cast<ub>(v));
            hits |= static_cast<std::uint64_t>(xsimd::any(v >= vlo)) << b;
        }
        alignas(64) std::uint32_t l[ub::size];
        mx.store_aligned(l);
        worst = std::max(worst, *std::max_element(l, l + ub::size));
        for (; hits; hits &= hits - 1) {
            const index_t j = i + static_cast<index_t>(std::countr_zero(hits)) * W;
            on_hit(p + j, j, lane_bits(fb::load_unaligned(p + j) >= vlo));
        }
    }
    bool good = worst <= 0x7f7fffffu;
    if (full < n) {
        alignas(64) float t[W] = {};
        for (index_t i = full; i < n; ++i) {
            t[i - full] = p[i];
            good &= valid_score(p[i]);
        }
        const std::uint32_t m = lane_bits(fb::load_aligned(t) >= vlo) & ((std::uint32_t{1} << (n - full)) - 1u);
        if (m) on_hit(static_cast<const float*>(t), full, m);
    }
    return good ? -1 : first_invalid(p, n);
}

/// Calls seg(ptr, flat0, n) for the contiguous pieces of flat range [f0, f1)
/// of `v`: one piece when v is contiguous, else one per row.
template <class F>
TCQ_FORCEINLINE void for_pieces(matrix_view<const float> v, index_t f0, index_t f1, F&& seg) {
    const index_t cols = v.cols();
    if (v.contiguous()) {
        seg(v.data() + f0, f0, f1 - f0);
        return;
    }
    index_t r = f0 / cols, c = f0 % cols;
    for (index_t f = f0; f < f1;) {
        const index_t n = std::min(cols - c, f1 - f);
        seg(v.row(r) + c, f, n);
        f += n;
        ++r;
        c = 0;
    }
}

/// Flat elements per parallel chunk of the selection passes (a multiple of 64,
/// so chunks own whole mask words).
inline constexpr index_t select_grain = index_t{1} << 16;

/// One task of a pass: flat range [f0, f1) of matrix m; f0 is a multiple of 64.
struct pass_chunk {
    std::size_t m;
    index_t f0, f1;
};

/// The chunks of all matrices, matrix by matrix.
inline std::vector<pass_chunk> pass_chunks(std::span<const matrix_view<const float>> vs) {
    std::vector<pass_chunk> out;
    for (std::size_t m = 0; m < vs.size(); ++m)
        for (index_t f = 0; f < vs[m].size(); f += select_grain) out.push_back({m, f, std::min(vs[m].size(), f + select_grain)});
    return out;
}

/// The first invalid score in (matrix, flat) order among those reported, so
/// the error is the same whatever the thread timing.
struct first_bad {
    std::mutex mu;
    std::atomic<bool> any{false};
    std::size_t m = 0;
    index_t f = 0;
    void report(std::size_t mm, index_t ff) {
        std::lock_guard lk(mu);
        if (!any.load() || mm < m || (mm == m && ff < f)) {
            m = mm;
            f = ff;
        }
        any.store(true);
    }
    /// Throws if anything was reported.
    void check(std::span<const matrix_view<const float>> vs, std::span<const std::string> names) const {
        if (!any.load()) return;
        const std::string what = m < names.size() ? names[m] : detail::cat("scores[", m, "]");
        invalid_score_fail(what, vs[m], f / vs[m].cols());
    }
};

}  // namespace detail

/// Pass-1 state of an exact top-k over one or many matrices (see file doc).
/// Memory: 2^16 u64 counts (512 KiB), plus 2^16 u32 (256 KiB) per thread during add().
class score_histogram {
public:
    static constexpr int shift = 15;                          ///< bucket = key >> shift
    static constexpr std::uint32_t buckets = 1u << 16;        ///< fixed bucket count
    static constexpr std::uint32_t top_bucket = 0x7f7fffffu >> shift;  ///< bucket of FLT_MAX

    /// Bucket of a valid score.
    [[nodiscard]] static std::uint32_t bucket_of(float s) noexcept { return score_key(s) >> shift; }
    /// Smallest score of bucket b.
    [[nodiscard]] static float bucket_floor(std::uint32_t b) noexcept { return key_score(b << shift); }

    /// Empty state for selecting the top k (k ≥ 0).
    explicit score_histogram(index_t k = 0) : k_(k), counts_(buckets, 0) {
        require(k >= 0, "score_histogram: k = ", k, " is negative");
        floor_ = k == 0 ? buckets - 1 : 0;
    }

    /// k the state selects for.
    [[nodiscard]] index_t k() const noexcept { return k_; }
    /// Scores counted so far (all of them, skipped or not).
    [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
    /// Lowest bucket with an exact count.
    [[nodiscard]] std::uint32_t floor() const noexcept { return floor_; }
    /// Count of bucket b (exact for b ≥ floor(), 0 below).
    [[nodiscard]] std::uint64_t count(std::uint32_t b) const {
        require(b < buckets, "score_histogram::count: bucket ", b, " out of range");
        return counts_[b];
    }

    /// Pass 1 over one matrix of scores: validates every score (finite, ≥ 0)
    /// and counts it. `what` names the matrix in errors. On error the state is
    /// unchanged. Result independent of the thread count.
    void add(matrix_view<const float> scores, std::string_view what = "scores", const exec_policy& pol = seq()) {
        const std::string name(what);
        add(std::span<const matrix_view<const float>>(&scores, 1), std::span<const std::string>(&name, 1), pol);
    }

    /// Pass 1 over many matrices at once, in one parallel run over all their
    /// chunks (fewer synchronizations than one add() per matrix; same state).
    /// names[m] (optional) names matrix m in errors.
    void add(std::span<const matrix_view<const float>> views, std::span<const std::string> names = {},
             const exec_policy& pol = seq()) {
        const std::vector<detail::pass_chunk> chunks = detail::pass_chunks(views);
        // Thread-local counts are u32: rounds of at most 2^31 scores.
        std::vector<std::size_t> rounds = {0};
        index_t acc = 0;
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            const index_t len = chunks[i].f1 - chunks[i].f0;
            if (acc + len > (index_t{1} << 31)) {
                rounds.push_back(i);
                acc = 0;
            }
            acc += len;
        }
        rounds.push_back(chunks.size());
        const auto round = [&](score_histogram& h, std::size_t r) {
            h.add_round(views, std::span(chunks).subspan(rounds[r], rounds[r + 1] - rounds[r]), pol, names);
        };
        if (rounds.size() == 2) return round(*this, 0);  // add_round is all-or-nothing
        score_histogram tmp = *this;
        for (std::size_t r = 0; r + 1 < rounds.size(); ++r) round(tmp, r);
        *this = std::move(tmp);
    }

    /// Adds another shard's state (same k): afterwards this equals the state of
    /// one pass over both shards' scores.
    void merge(const score_histogram& o) {
        require(o.k_ == k_, "score_histogram::merge: k differs (", k_, " vs ", o.k_, ")");
        floor_ = std::max(floor_, o.floor_);
        for (std::uint32_t b = 0; b < buckets; ++b) counts_[b] = b >= floor_ ? counts_[b] + o.counts_[b] : 0;
        total_ += o.total_;
        max_bucket_ = std::max(max_bucket_, o.max_bucket_);
        canonicalize();
    }

    /// The boundary of the top k. Throws if fewer than k scores were counted.
    [[nodiscard]] boundary_cut cut() const {
        require(static_cast<std::uint64_t>(k_) <= total_, "score_histogram::cut: k = ", k_, " exceeds the ",
                total_, " scores counted");
        boundary_cut c;
        c.k = k_;
        if (k_ == 0) return c;
        std::uint64_t above = 0;
        for (std::uint32_t b = max_bucket_;; --b) {
            if (above + counts_[b] >= static_cast<std::uint64_t>(k_)) {
                c.bucket = b;
                c.above = static_cast<index_t>(above);
                c.in_bucket = static_cast<index_t>(counts_[b]);
                c.need = k_ - c.above;
                return c;
            }
            above += counts_[b];
            require(b > floor_, "score_histogram::cut: inconsistent state");
        }
    }

    /// Little-endian bytes: "TCQH", u32 version 1, i64 k, u64 total, u32 floor,
    /// u32 n, then n × (u32 bucket, u64 count) for the non-zero buckets, ascending.
    [[nodiscard]] std::vector<std::uint8_t> serialize() const {
        byte_writer<std::uint8_t> out;
        std::uint32_t nnz = 0;
        for (auto c : counts_) nnz += c != 0;
        out.put_bytes("TCQH", 4);
        out.put(std::uint32_t{1});
        out.put(static_cast<std::uint64_t>(k_));
        out.put(total_);
        out.put(floor_);
        out.put(nnz);
        for (std::uint32_t b = 0; b < buckets; ++b)
            if (counts_[b]) {
                out.put(b);
                out.put(counts_[b]);
            }
        return std::move(out).take();
    }

    /// Inverse of serialize(); throws tcq::error on malformed or inconsistent bytes.
    [[nodiscard]] static score_histogram deserialize(std::span<const std::uint8_t> in) {
        byte_reader<std::uint8_t> rd(in, "score_histogram::deserialize");
        require(in.size() >= 4 && rd.take_str(4) == "TCQH", "score_histogram::deserialize: bad magic");
        const auto version = rd.take<std::uint32_t>();
        require(version == 1, "score_histogram::deserialize: unsupported version ", version);
        const auto k = static_cast<std::int64_t>(rd.take<std::uint64_t>());
        require(k >= 0, "score_histogram::deserialize: negative k ", k);
        score_histogram h(static_cast<index_t>(k));
        h.total_ = rd.take<std::uint64_t>();
        const auto fl = rd.take<std::uint32_t>();
        require(fl < buckets, "score_histogram::deserialize: floor ", fl, " out of range");
        h.floor_ = fl;
        const auto nnz = rd.take<std::uint32_t>();
        require(nnz <= buckets, "score_histogram::deserialize: ", nnz, " buckets");
        std::uint64_t sum = 0;
        std::int64_t prev = -1;
        for (std::uint64_t i = 0; i < nnz; ++i) {
            const auto b = rd.take<std::uint32_t>();
            const auto c = rd.take<std::uint64_t>();
            require(static_cast<std::int64_t>(b) > prev && b <= top_bucket && b >= h.floor_ && c > 0,
                    "score_histogram::deserialize: bad bucket entry ", i, " (bucket ", b, ", count ", c, ")");
            h.counts_[b] = c;
            h.max_bucket_ = b;
            sum += c;
            prev = static_cast<std::int64_t>(b);
        }
        rd.expect_end();
        require(sum <= h.total_, "score_histogram::deserialize: counts exceed the total ", h.total_);
        score_histogram check = h;
        check.canonicalize();
        require(check.floor_ == h.floor_ && check.counts_ == h.counts_,
                "score_histogram::deserialize: state is not canonical");
        return h;
    }

    /// Same k, total, floor and counts.
    friend bool operator==(const score_histogram& a, const score_histogram& b) {
        return a.k_ == b.k_ && a.total_ == b.total_ && a.floor_ == b.floor_ && a.counts_ == b.counts_;
    }

private:
    struct local {
        explicit local(std::thread::id i) : id(i), c(buckets, 0) {}
        std::thread::id id;
        std::vector<std::uint32_t> c;  ///< counts of this thread in this round
        std::uint32_t hi = 0;          ///< highest bucket touched
        std::uint64_t inserted = 0, next_check = 0;
    };

    /// One round of add() over ≤ 2^31 scores; all-or-nothing.
    void add_round(std::span<const matrix_view<const float>> views, std::span<const detail::pass_chunk> chunks,
                   const exec_policy& pol, std::span<const std::string> names) {
        const index_t k = k_;
        std::atomic<std::uint32_t> bound{floor_};
        std::mutex mu;
        std::vector<std::unique_ptr<local>> locals;
        detail::first_bad bad;
        // Raise the bound every so many inserts: often enough that few scores
        // below the final b* get counted, rarely enough to amortize the scan.
        const std::uint64_t recompute_every = static_cast<std::uint64_t>(std::max<index_t>(k / 8, 65536));
        std::uint64_t main_sum = 0;
        for (std::uint32_t b = floor_; b <= max_bucket_; ++b) main_sum += counts_[b];

        auto get_local = [&]() -> local& {
            std::lock_guard lk(mu);
            const auto id = std::this_thread::get_id();
            for (auto& l : locals)
                if (l->id == id) return *l;
            locals.push_back(std::make_unique<local>(id));
            return *locals.back();
        };
        // Highest bucket whose suffix over (state + this thread's counts) reaches
        // k: a lower bound of the final b*, since both count subsets of the scores.
        auto raise_bound = [&](const local& l) {
            std::uint64_t cum = 0;
            const std::uint32_t lo = bound.load(std::memory_order_relaxed);
            for (std::uint32_t b = std::max(l.hi, max_bucket_);; --b) {
                cum += counts_[b] + l.c[b];
                if (cum >= static_cast<std::uint64_t>(k)) {
                    std::uint32_t cur = bound.load(std::memory_order_relaxed);
                    while (b > cur && !bound.compare_exchange_weak(cur, b, std::memory_order_relaxed)) {
                    }
                    return;
                }
                if (b <= lo) return;
            }
        };

        run_tasks(pol, static_cast<index_t>(chunks.size()), [&](index_t t) {
            const detail::pass_chunk& ch = chunks[static_cast<std::size_t>(t)];
            local& l = get_local();
            // Hot state in locals (registers), written back at the chunk end.
            std::uint32_t* cnt = l.c.data();
            std::uint32_t hi = l.hi;
            std::uint64_t inserted = l.inserted, next_check = l.next_check;
            float lo = bucket_floor(bound.load(std::memory_order_relaxed));  // NaN when k = 0: nothing passes
            auto insert = [&](float s) {
                const std::uint32_t b = bucket_of(s);
                ++cnt[b];
                hi = std::max(hi, b);
                if (++inserted >= next_check) {
                    next_check = inserted + recompute_every;
                    l.hi = hi;
                    if (main_sum + inserted >= static_cast<std::uint64_t>(k)) raise_bound(l);
                    lo = bucket_floor(bound.load(std::memory_order_relaxed));
                }
            };
            detail::for_pieces(views[ch.m], ch.f0, ch.f1, [&](const float* p, index_t f, index_t len) {
                // Sub-pieces pick up a raised bound soon.
                for (index_t s0 = 0; s0 < len; s0 += 16384) {
                    const index_t e = detail::scan_scores(p + s0, std::min<index_t>(16384, len - s0), lo,
                                                          [&](const float* vals, index_t, std::uint32_t m) {
                                                              for (; m; m &= m - 1) insert(vals[std::countr_zero(m)]);
                                                          });
                    if (e >= 0) {
                        bad.report(ch.m, f + s0 + e);
                        return;
                    }
                }
            });
            l.hi = hi;
            l.inserted = inserted;
            l.next_check = next_check;
        });
        bad.check(views, names);
        // Only a clean pass reaches here (invalid scores may have been counted).
        for (auto& l : locals)
            if (l->inserted) {
                for (std::uint32_t b = floor_; b <= l->hi; ++b) counts_[b] += l->c[b];
                max_bucket_ = std::max(max_bucket_, l->hi);
            }
        for (const auto& ch : chunks) total_ += static_cast<std::uint64_t>(ch.f1 - ch.f0);
        canonicalize();
    }

    /// floor ← b* of the counts (when k is reached), zeroing the buckets below.
    void canonicalize() {
        if (k_ == 0) return;
        std::uint64_t cum = 0;
        for (std::uint32_t b = max_bucket_;; --b) {
            cum += counts_[b];
            if (cum >= static_cast<std::uint64_t>(k_)) {
                floor_ = std::max(floor_, b);
                break;
            }
            if (b == 0) return;
        }
        std::fill(counts_.begin(), counts_.begin() + floor_, 0);
    }

    index_t k_ = 0;
    std::uint64_t total_ = 0;
    std::uint32_t floor_ = 0;
    std::uint32_t max_bucket_ = 0;  ///< highest non-empty bucket (0 if none)
    std::vector<std::uint64_t> counts_;
};

}  // namespace tcq
