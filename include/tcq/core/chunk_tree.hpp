#pragma once
/// @file chunk_tree.hpp
/// @brief Sums over calibration samples as a fixed tree over fixed chunks,
/// so that any split of the chunks over workers gives the same bits
/// (docs/algorithms.md, "Chunked accumulation").
///
/// The samples are cut into chunks of `chunk` samples (the last may be
/// shorter); the chunk size never depends on how many workers run. Each
/// chunk's partial is accumulated alone, in sample order. Partials are then
/// combined over a fixed binary tree on the chunk index: node [lo, hi) is
/// combine([lo, mid), [mid, hi)) with mid = lo + ceil((hi − lo)/2). A worker
/// that owns a contiguous range of chunks combines every node inside its
/// range; whoever collects those nodes finishes the tree with the same
/// combine calls in the same order, so the root is bit-identical to one
/// process pushing every chunk itself.

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "tcq/core/config.hpp"
#include "tcq/core/error.hpp"

namespace tcq {

/// Fixed partition of `samples` samples into chunks of `chunk` samples.
struct chunk_plan {
    index_t samples = 0;  ///< samples in all
    index_t chunk = 1;    ///< samples per chunk (the last chunk may hold fewer)

    /// Checks samples ≥ 0 and chunk ≥ 1.
    void validate() const {
        require(samples >= 0, "chunk_plan: negative sample count ", samples);
        require(chunk >= 1, "chunk_plan: chunk size ", chunk, " must be at least 1");
    }
    /// Number of chunks, ceil(samples / chunk).
    [[nodiscard]] index_t chunks() const { return (samples + chunk - 1) / chunk; }
    /// Chunk holding sample s.
    [[nodiscard]] index_t chunk_of(index_t s) const { return s / chunk; }
    /// First sample of chunk c (samples when c = chunks()).
    [[nodiscard]] index_t first_sample(index_t c) const { return std::min(samples, c * chunk); }
};

/// Contiguous range [begin, end) of part p of `n` items split into `parts`
/// balanced parts (the first n % parts parts get one item more).
[[nodiscard]] inline std::pair<index_t, index_t> part_range(index_t n, index_t parts, index_t p) {
    require(n >= 0 && parts >= 1 && p >= 0 && p < parts, "part_range: part ", p, " of ", parts, " over ", n,
            " items is invalid");
    const index_t q = n / parts, r = n % parts;
    const index_t b = p * q + std::min(p, r);
    return {b, b + q + (p < r ? 1 : 0)};
}

/// Split point of tree node [lo, hi) (hi − lo ≥ 2).
[[nodiscard]] constexpr index_t tree_split(index_t lo, index_t hi) noexcept { return lo + (hi - lo + 1) / 2; }

/// True if [lo, hi) is a node of the tree over [0, chunks).
[[nodiscard]] inline bool is_tree_node(index_t chunks, index_t lo, index_t hi) {
    index_t a = 0, b = chunks;
    while (true) {
        if (a == lo && b == hi) return true;
        if (b - a < 2 || lo < a || hi > b) return false;
        const index_t m = tree_split(a, b);
        if (hi <= m)
            b = m;
        else if (lo >= m)
            a = m;
        else
            return false;
    }
}

/// Combine functor of accumulators with merge() (Hessian, gradient sums):
/// left ← left ⊕ right.
struct merge_combine {
    /// a.merge(b).
    template <class P>
    void operator()(P& a, const P& b) const {
        a.merge(b);
    }
};

/// A finished tree node: the combination of the partials of chunks [lo, hi).
template <class P>
struct tree_node {
    index_t lo = 0;  ///< first chunk
    index_t hi = 0;  ///< one past the last chunk
    P value;         ///< combined partial
};

/// Builds the tree bottom-up from nodes pushed left to right: whenever the
/// two last nodes are siblings they are combined (`combine(left, right)`
/// makes left the parent). Holds at most about log2(chunks) + 1 nodes.
template <class P, class Combine>
class tree_reducer {
public:
    /// Empty reducer of the tree over [0, chunks), expecting nodes from chunk `first` on.
    tree_reducer(index_t chunks, Combine combine, index_t first = 0)
        : chunks_(chunks), next_(first), combine_(std::move(combine)) {
        require(chunks >= 1 && first >= 0 && first <= chunks, "tree_reducer: start chunk ", first, " outside [0, ",
                chunks, "]");
    }

    /// Pushes the finished node [lo, hi); lo must be where the previous node ended.
    void push(index_t lo, index_t hi, P value) {
        require(lo == next_ && hi > lo && hi <= chunks_ && is_tree_node(chunks_, lo, hi), "tree_reducer: node [", lo,
                ", ", hi, ") pushed where chunk ", next_, " was expected (tree over ", chunks_, " chunks)");
        stack_.push_back({lo, hi, std::move(value)});
        next_ = hi;
        while (stack_.size() >= 2) {
            auto& l = stack_[stack_.size() - 2];
            const auto& r = stack_.back();
            if (!is_tree_node(chunks_, l.lo, r.hi) || tree_split(l.lo, r.hi) != l.hi) break;
            combine_(l.value, r.value);
            l.hi = r.hi;
            stack_.pop_back();
        }
    }
    /// Pushes the partial of the next chunk.
    void push_leaf(P value) { push(next_, next_ + 1, std::move(value)); }

    /// First chunk not yet pushed.
    [[nodiscard]] index_t next() const noexcept { return next_; }
    /// The nodes held, left to right: the maximal tree nodes inside the pushed range.
    [[nodiscard]] const std::vector<tree_node<P>>& nodes() const noexcept { return stack_; }
    /// Moves the held nodes out (the reducer is then empty).
    [[nodiscard]] std::vector<tree_node<P>> take() { return std::move(stack_); }

    /// The root; requires every chunk pushed.
    [[nodiscard]] P& root() {
        require(stack_.size() == 1 && stack_[0].lo == 0 && stack_[0].hi == chunks_, "tree_reducer::root: ",
                chunks_ - next_, " of ", chunks_, " chunks are missing");
        return stack_[0].value;
    }

private:
    index_t chunks_;
    index_t next_;
    Combine combine_;
    std::vector<tree_node<P>> stack_;
};

/// Accumulates the samples of a contiguous chunk range [c0, c1) of a plan:
/// one fresh partial (`make()`) per chunk, fed by the caller in sample order,
/// pushed into the tree when the next chunk starts.
template <class P, class Make, class Combine>
class chunked_sum {
public:
    /// Accumulation of chunks [range.first, range.second) of `plan` (plan.chunks() ≥ 1).
    chunked_sum(const chunk_plan& plan, std::pair<index_t, index_t> range, Make make, Combine combine)
        : plan_((plan.validate(), plan)), c0_(range.first), c1_(range.second), make_(std::move(make)),
          tree_(plan.chunks(), std::move(combine), range.first) {
        require(0 <= c0_ && c0_ <= c1_ && c1_ <= plan.chunks(), "chunked_sum: chunk range [", c0_, ", ", c1_,
                ") outside [0, ", plan.chunks(), ")");
    }

    /// The partial that sample s goes into; samples come in nondecreasing order
    /// and must lie in the range's samples.
    P& at(index_t s) {
        require(s >= plan_.first_sample(c0_) && s < plan_.first_sample(c1_), "chunked_sum: sample ", s,
                " outside this range's samples [", plan_.first_sample(c0_), ", ", plan_.first_sample(c1_), ")");
        const index_t c = plan_.chunk_of(s);
        if (cur_ && c == cur_chunk_) return *cur_;
        require(!cur_ || c > cur_chunk_, "chunked_sum: sample ", s, " arrives after chunk ", cur_chunk_, " started");
        if (cur_) close();
        require(c == tree_.next(), "chunked_sum: chunk ", tree_.next(), " got no samples (sample ", s,
                " is in chunk ", c, ")");
        cur_.emplace(make_());
        cur_chunk_ = c;
        return *cur_;
    }

    /// Closes the last chunk and returns the maximal tree nodes of the range
    /// (empty for an empty range). Every chunk of the range must have had samples.
    [[nodiscard]] std::vector<tree_node<P>> finish() {
        if (cur_) close();
        require(tree_.next() == c1_, "chunked_sum: chunks [", tree_.next(), ", ", c1_, ") got no samples");
        return tree_.take();
    }

private:
    void close() {
        tree_.push_leaf(std::move(*cur_));
        cur_.reset();
    }

    chunk_plan plan_;
    index_t c0_, c1_;
    Make make_;
    tree_reducer<P, Combine> tree_;
    std::optional<P> cur_;
    index_t cur_chunk_ = -1;
};

/// The whole-tree sum: pushes the nodes (which must tile [0, chunks) left to
/// right) and returns the root.
template <class P, class Combine>
[[nodiscard]] P reduce_nodes(index_t chunks, std::vector<tree_node<P>> nodes, Combine combine) {
    tree_reducer<P, Combine> t(chunks, std::move(combine));
    for (auto& n : nodes) t.push(n.lo, n.hi, std::move(n.value));
    return std::move(t.root());
}

}  // namespace tcq
